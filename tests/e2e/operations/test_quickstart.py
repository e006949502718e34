"""The README's quick start, run as written against `make run`'s embedded defaults.

The commands are the blocks README.md marks with `<!-- quickstart:NAME -->`, read from the file at
test time, so the README and the gateway cannot drift apart; only the address changes (this test's
free ports instead of 8080 and 50051). The gateway runs as `make run` starts it (`.venv/bin/python
-m server serve`, no config file) as a newcomer would have it: no provider key in the environment,
and a directory of its own (with the venv as `.venv`), so `./data` is fresh.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from server.config.providers.openai import WELL_KNOWN_HOSTS as WELL_KNOWN_PROVIDERS
from server.providers.local.bundled import DEFAULT_BUNDLED_MODEL, bundled_model_path, llama_cpp_installed

pytestmark = [
    pytest.mark.local,
    pytest.mark.skipif(
        not llama_cpp_installed() or bundled_model_path(DEFAULT_BUNDLED_MODEL) is None,
        reason="the local extra or the bundled model is not installed (make install installs both)",
    ),
    pytest.mark.timeout(600),
]

ROOT = Path(__file__).resolve().parents[3]
MODEL = f"local/{DEFAULT_BUNDLED_MODEL}"
_BLOCK = re.compile(r"<!-- quickstart:([\w-]+) -->\n```(\w+)\n(.*?)\n```", re.S)
# The local provider's default_max_tokens: no README example sets max_tokens.
DEFAULT_MAX_TOKENS = 512


def quickstart_blocks() -> dict[str, str]:
    blocks = {name: body for name, _, body in _BLOCK.findall((ROOT / "README.md").read_text())}
    assert {"keys", "curl", "python", "js", "grpcurl", "grpc-python"} <= set(blocks), sorted(blocks)
    return blocks


BLOCKS = quickstart_blocks()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Newcomer:
    home: Path
    env: dict[str, str]
    http_port: int
    grpc_port: int
    banner: str
    key: str = ""

    def block(self, name: str) -> str:
        """The README block with this gateway's address in place of the default ports."""
        text = BLOCKS[name]
        assert "localhost:8080" in text or "localhost:50051" in text, f"block {name} names no address"
        return text.replace("localhost:8080", f"127.0.0.1:{self.http_port}").replace(
            "localhost:50051", f"127.0.0.1:{self.grpc_port}"
        )

    def run(self, command: list[str], timeout: float = 540) -> subprocess.CompletedProcess[str]:
        env = {**self.env, "SIRAYA_KEY": self.key}
        done = subprocess.run(
            command, cwd=self.home, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
        assert done.returncode == 0, f"{command[:2]} failed ({done.returncode}): {done.stderr}"
        return done


def _newcomer_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {p[0] for p in WELL_KNOWN_PROVIDERS.values()}}
    env.pop("SIRAYA_CONFIG", None)
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    # This checkout's code, also for `.venv/bin/siraya-router`, whose editable install may point elsewhere.
    env["PYTHONPATH"] = str(ROOT)
    env["PYTHONUNBUFFERED"] = "1"
    return env


@pytest.fixture(scope="module")
def newcomer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Newcomer]:
    home = tmp_path_factory.mktemp("newcomer")
    (home / ".venv").symlink_to(Path(sys.prefix))
    env = _newcomer_env()
    http_port, grpc_port = _free_port(), _free_port()
    out = home / "gateway.out"
    process = subprocess.Popen(
        # What `make run` runs, on this test's ports.
        [
            ".venv/bin/python",
            "-m",
            "server",
            "serve",
            "--port",
            str(http_port),
            "--grpc-port",
            str(grpc_port),
        ],
        cwd=home,
        env=env,
        stdout=out.open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        # Ready to serve comes a moment before the banner is printed: wait for both.
        while not _ready(http_port) or "REST on" not in out.read_text():
            assert process.poll() is None, f"the gateway exited: {out.read_text()}"
            assert time.monotonic() < deadline, f"the gateway did not become ready: {out.read_text()}"
            time.sleep(0.2)
        yield Newcomer(home, env, http_port, grpc_port, out.read_text())
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def _ready(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def with_key(newcomer: Newcomer) -> Newcomer:
    """The README's `keys` block, run in bash as written; the key it exports is kept for the rest."""
    done = newcomer.run(["bash", "-e", "-c", BLOCKS["keys"] + '\nprintf "%s" "$SIRAYA_KEY"'], timeout=60)
    newcomer.key = done.stdout.strip()
    assert newcomer.key.startswith("sk-sr-"), done.stdout
    return newcomer


def test_the_banner_names_the_model_and_the_exact_next_command(newcomer: Newcomer) -> None:
    assert f"Models (1): {MODEL}" in newcomer.banner
    assert ".venv/bin/siraya-router keys create --name my-app" in newcomer.banner
    assert f"REST on http://127.0.0.1:{newcomer.http_port}/v1" in newcomer.banner
    # The same command as the README's, which is what the newcomer runs next.
    assert ".venv/bin/siraya-router keys create --name my-app" in BLOCKS["keys"]


def test_curl(with_key: Newcomer) -> None:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    done = with_key.run(["bash", "-e", "-c", with_key.block("curl")])
    completion = json.loads(done.stdout)
    assert completion["model"] == MODEL
    assert completion["choices"][0]["message"]["content"].strip()
    assert 0 < completion["usage"]["completion_tokens"] <= DEFAULT_MAX_TOKENS


def test_python_sdk(with_key: Newcomer) -> None:
    done = with_key.run([".venv/bin/python", "-c", with_key.block("python")])
    assert len(done.stdout.strip().splitlines()) >= 2, done.stdout


def test_grpc_python_stubs(with_key: Newcomer) -> None:
    done = with_key.run([".venv/bin/python", "-c", with_key.block("grpc-python")])
    assert done.stdout.strip(), done.stderr


def test_grpcurl(with_key: Newcomer) -> None:
    block = with_key.block("grpcurl")
    if shutil.which("grpcurl") is not None:
        reply = json.loads(with_key.run(["bash", "-e", "-c", block]).stdout)
    else:
        # What grpcurl would do with the block: its JSON, by the proto JSON mapping, to the method it names.
        reply = _as_grpcurl_would(block, with_key)
    assert reply["completion"]["choices"][0]["message"]["content"].strip()


def _as_grpcurl_would(block: str, newcomer: Newcomer) -> dict[str, Any]:
    import grpc
    from google.protobuf import descriptor_pool, json_format, message_factory

    import siraya.router.v1.chat_pb2  # noqa: F401  (registers the chat services in the default pool)

    arguments = shlex.split(block.replace("\\\n", " "))
    body = arguments[arguments.index("-d") + 1]
    header = arguments[arguments.index("-H") + 1]
    target, method = arguments[-2], arguments[-1]
    assert target == f"127.0.0.1:{newcomer.grpc_port}" and header.startswith("authorization: Bearer ")
    service_name, _, method_name = method.partition("/")
    service = descriptor_pool.Default().FindServiceByName(service_name)
    rpc = service.FindMethodByName(method_name)
    request_class = message_factory.GetMessageClass(rpc.input_type)
    response_class = message_factory.GetMessageClass(rpc.output_type)
    request = json_format.Parse(body, request_class())
    with grpc.insecure_channel(target) as channel:
        call = channel.unary_unary(
            f"/{method}",
            request_serializer=request_class.SerializeToString,
            response_deserializer=response_class.FromString,
        )
        response = call(request, metadata=(("authorization", f"Bearer {newcomer.key}"),), timeout=300)
    return json_format.MessageToDict(response)


def _node_modules_with_openai() -> Path | None:
    candidates = [
        os.environ.get("SIRAYA_NODE_MODULES"),
        ROOT / "node_modules",
        ROOT / "tests/js/node_modules",
    ]
    for candidate in candidates:
        if candidate and (Path(candidate) / "openai" / "package.json").is_file():
            return Path(candidate)
    return None


def test_javascript_sdk(with_key: Newcomer) -> None:
    modules = _node_modules_with_openai()
    if shutil.which("node") is None or modules is None:
        pytest.skip(
            "node or the openai npm package is not installed (SIRAYA_NODE_MODULES=<dir>/node_modules)"
        )
    link = with_key.home / "node_modules"
    if not link.exists():
        link.symlink_to(modules)
    script = with_key.home / "quickstart.mjs"
    script.write_text(with_key.block("js"))
    done = with_key.run(["node", str(script)])
    assert done.stdout.strip()
