"""A gateway that cannot start says why in one line on stderr, exits 2, and leaves nothing running.

Each case is a real `python -m server serve` process: a busy HTTP port, a busy gRPC port, a config
file that cannot be read or is invalid, and a database that cannot be reached. Afterwards the process
is gone and the port it did not fail on can be bound again (a half-started gateway held it).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
# A start-up failure must not take longer than this (the model is never loaded for one).
EXIT_WITHIN = 60


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port another process (here: a plain socket) listens on."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield int(holder.getsockname()[1])


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "siraya.yaml"
    path.write_text(text)
    return path


def _serve(tmp_path: Path, config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m server --config CONFIG serve ARGS` (the order every version of the CLI accepts)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("SIRAYA_CONFIG", None)
    try:
        return subprocess.run(
            [sys.executable, "-m", "server", "--config", str(config), "serve", *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=EXIT_WITHIN,
        )
    except subprocess.TimeoutExpired as stuck:
        # subprocess.run killed it; before the fix a busy port left it running, holding its other port.
        pytest.fail(f"the gateway did not exit within {EXIT_WITHIN} s: {stuck.stderr!r}")


def _assert_one_line(done: subprocess.CompletedProcess[str], *fragments: str) -> str:
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert len(lines) == 1, done.stderr
    line = lines[0]
    assert line.startswith("siraya-router: "), line
    assert "Traceback" not in done.stderr
    for fragment in fragments:
        assert fragment in line, line
    return line


def _assert_free(port: int) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", port))


def _data_dir_yaml(tmp_path: Path) -> str:
    return f"server: {{host: 127.0.0.1, data_dir: {tmp_path / 'data'}}}\n"


def test_a_busy_http_port(tmp_path: Path, busy_port: int) -> None:
    grpc_port = _free_port()
    config = _config(tmp_path, _data_dir_yaml(tmp_path))
    done = _serve(tmp_path, config, "--port", str(busy_port), "--grpc-port", str(grpc_port))
    _assert_one_line(done, "cannot start", f"HTTP port 127.0.0.1:{busy_port}", "already in use", "--port")
    _assert_free(grpc_port)


def test_a_busy_grpc_port(tmp_path: Path, busy_port: int) -> None:
    http_port = _free_port()
    config = _config(tmp_path, _data_dir_yaml(tmp_path))
    done = _serve(tmp_path, config, "--port", str(http_port), "--grpc-port", str(busy_port))
    _assert_one_line(
        done, "cannot start", f"gRPC port 127.0.0.1:{busy_port}", "already in use", "--grpc-port"
    )
    assert "CreditsOwnedElsewhere" not in done.stderr
    _assert_free(http_port)


def test_a_busy_port_with_workers(tmp_path: Path, busy_port: int) -> None:
    config = _config(tmp_path, _data_dir_yaml(tmp_path))
    done = _serve(tmp_path, config, "--workers", "2", "--port", str(busy_port), "--grpc-port", "0")
    _assert_one_line(done, "cannot start", f"HTTP port 127.0.0.1:{busy_port}", "already in use")


def test_a_config_file_that_does_not_exist(tmp_path: Path) -> None:
    done = _serve(tmp_path, tmp_path / "missing.yaml")
    _assert_one_line(done, "invalid configuration", "cannot read config file", "missing.yaml")


def test_a_config_file_that_cannot_be_read(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root reads any file; a directory stands in for an unreadable file below")
    config = _config(tmp_path, _data_dir_yaml(tmp_path))
    config.chmod(0)
    done = _serve(tmp_path, config)
    _assert_one_line(done, "cannot read config file", "Permission denied")


def test_a_config_path_that_is_a_directory(tmp_path: Path) -> None:
    done = _serve(tmp_path, tmp_path)
    _assert_one_line(done, "invalid configuration", "cannot read config file")


def test_a_config_file_that_is_not_yaml(tmp_path: Path) -> None:
    config = _config(tmp_path, "server: [\n")
    done = _serve(tmp_path, config)
    _assert_one_line(done, "invalid configuration", "invalid YAML", "line 2, column 1")


def test_a_config_file_with_a_bad_field(tmp_path: Path) -> None:
    config = _config(tmp_path, "server: {http_port: eighty}\n")
    done = _serve(tmp_path, config)
    _assert_one_line(done, "invalid configuration", "server.http_port: expected an integer")


def test_a_database_that_cannot_be_reached(tmp_path: Path) -> None:
    http_port, closed = _free_port(), _free_port()
    config = _config(
        tmp_path,
        _data_dir_yaml(tmp_path)
        + f"accounts: {{database_url: 'postgresql://gateway:hunter2@127.0.0.1:{closed}/siraya'}}\n",
    )
    done = _serve(tmp_path, config, "--port", str(http_port), "--grpc-port", "0")
    line = _assert_one_line(done, "cannot start", "cannot open the accounts database", f"127.0.0.1:{closed}")
    assert "hunter2" not in done.stderr and "hunter2" not in done.stdout, line
    _assert_free(http_port)


def test_a_data_dir_that_cannot_be_written(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    config = _config(tmp_path, f"server: {{host: 127.0.0.1, data_dir: {blocker / 'data'}}}\n")
    done = _serve(tmp_path, config, "--port", "0", "--grpc-port", "0")
    _assert_one_line(done, "cannot start", "cannot open the accounts database", str(blocker / "data"))
