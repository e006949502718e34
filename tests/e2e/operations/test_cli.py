"""The `siraya-router` command line's one convention, each rule through real subprocess runs.

- global options (`--config`, `--data-dir`, `--json`) before or after the command, for every command;
- `serve` and `keys` find the same data: a relative `data_dir` is relative to the config file, and
  the command `serve` prints creates a key the running gateway accepts, from any directory;
- `keys` needs only the config variables it uses;
- ISO dates as well as unix time; tables for people, `--json` for scripts;
- a directory with no database is said so, never silently replaced by a new one.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[3]
# 2099-01-01T00:00:00Z and 2099-01-01T12:00:00Z.
NEW_YEAR_2099 = 4070908800
NOON_2099 = 4070952000


def _env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1", **extra}
    for name in ("SIRAYA_CONFIG", "PROMETHEUS_MULTIPROC_DIR", "UNSET_ADMIN_KEY", "UNSET_URL", "UNSET_DB"):
        env.pop(name, None)
    return env


def cli(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "server", *args],
        cwd=cwd,
        env=env or _env(),
        capture_output=True,
        text=True,
        timeout=60,
    )


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, (done.returncode, done.stdout, done.stderr)
    return done.stdout


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# A provider that is never called, so that the gateway is ready with no upstream running.
PROVIDERS = """
providers:
  idle:
    type: openai
    base_url: http://127.0.0.1:9/v1
models:
  - {id: idle-model, provider: idle}
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """`conf/siraya.yaml` with a relative data_dir, and two other directories to run commands from."""
    _write(
        tmp_path / "conf" / "siraya.yaml",
        "server: {host: 127.0.0.1, http_port: 0, grpc_port: 0, data_dir: ./data}\n" + PROVIDERS,
    )
    (tmp_path / "here").mkdir()
    (tmp_path / "there").mkdir()
    return tmp_path


class Served:
    def __init__(self, process: subprocess.Popen[bytes], out: Path) -> None:
        self.process, self.out = process, out
        self.http_port = 0

    def banner(self) -> str:
        return self.out.read_text(errors="replace")


@pytest.fixture
def serve(project: Path) -> Iterator[Served]:
    """`serve --config ../conf/siraya.yaml` from `here/`: the option after the command, a relative path."""
    out = project / "serve.out"
    process = subprocess.Popen(
        [sys.executable, "-m", "server", "serve", "--config", "../conf/siraya.yaml"],
        cwd=project / "here",
        env=_env(),
        stdout=out.open("wb"),
        stderr=subprocess.STDOUT,
    )
    served = Served(process, out)
    try:
        deadline = time.monotonic() + 60
        while not (found := re.search(r"REST on http://127\.0\.0\.1:(\d+)/v1", served.banner())):
            assert process.poll() is None, served.banner()
            assert time.monotonic() < deadline, served.banner()
            time.sleep(0.1)
        served.http_port = int(found.group(1))
        yield served
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def test_the_command_serve_prints_makes_a_key_the_gateway_accepts_from_any_directory(
    project: Path, serve: Served
) -> None:
    banner = serve.banner()
    data_dir = project / "conf" / "data"
    assert f"data: {data_dir}" in banner
    printed = next(line.strip() for line in banner.splitlines() if "keys create" in line)
    assert f"--config {project / 'conf' / 'siraya.yaml'}" in printed
    # Run exactly as printed, from another directory than the gateway's.
    done = subprocess.run(
        shlex.split(printed), cwd=project / "there", env=_env(), capture_output=True, text=True, timeout=60
    )
    secret = ok(done).strip().splitlines()[-1]
    assert str(data_dir / "siraya.db") in done.stderr
    assert not (project / "there" / "data").exists()
    answer = httpx.get(
        f"http://127.0.0.1:{serve.http_port}/v1/key",
        headers={"Authorization": f"Bearer {secret}"},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text


def test_keys_finds_the_data_relative_to_the_config_file(project: Path) -> None:
    config = project / "conf" / "siraya.yaml"
    created = json.loads(
        ok(cli(project / "here", "keys", "create", "--name", "a", "--config", str(config), "--json"))
    )
    # Another directory, the file named by another relative path, the option before the command.
    listed = json.loads(
        ok(cli(project / "there", "--config", "../conf/siraya.yaml", "keys", "list", "--json"))
    )
    assert [key["id"] for key in listed] == [created["key"]["id"]]
    assert (project / "conf" / "data" / "siraya.db").is_file()
    assert not (project / "here" / "data").exists() and not (project / "there" / "data").exists()


def test_data_dir_option_overrides_the_config(project: Path) -> None:
    ok(cli(project / "here", "keys", "create", "--data-dir", "elsewhere", "--config", "../conf/siraya.yaml"))
    assert (project / "here" / "elsewhere" / "siraya.db").is_file()
    assert not (project / "conf" / "data").exists()


def test_keys_needs_only_the_variables_it_uses(tmp_path: Path) -> None:
    config = _write(
        tmp_path / "siraya.yaml",
        f"server: {{data_dir: {tmp_path / 'data'}, admin_key: '${{UNSET_ADMIN_KEY}}'}}\n"
        "providers:\n  vllm: {type: openai, base_url: '${UNSET_URL}', api_key: '${UNSET_PROVIDER_KEY}'}\n"
        "models:\n  - {id: m, provider: vllm}\n",
    )
    # The options where every version of the CLI takes them: this is about the variables.
    secret = ok(cli(tmp_path, "--config", str(config), "keys", "create")).strip().splitlines()[-1]
    assert secret.startswith("sk-sr-")
    assert "key_" in ok(cli(tmp_path, "--config", str(config), "keys", "list"))
    # serve still needs every one of them.
    refused = cli(tmp_path, "config", "check", str(config))
    assert refused.returncode == 2 and "UNSET_ADMIN_KEY" in refused.stderr


def test_keys_says_which_variable_it_needs(tmp_path: Path) -> None:
    config = _write(tmp_path / "siraya.yaml", "accounts: {database_url: '${UNSET_DB}'}\n")
    done = cli(tmp_path, "keys", "list", "--config", str(config))
    assert done.returncode == 2
    assert "accounts.database_url: environment variable UNSET_DB is not set" in done.stderr


@pytest.mark.parametrize(
    ("given", "stored"),
    [("2099-01-01", NEW_YEAR_2099), ("2099-01-01T12:00:00Z", NOON_2099), (str(NOON_2099), NOON_2099)],
)
def test_expires_at_takes_iso_dates_and_unix_time(tmp_path: Path, given: str, stored: int) -> None:
    data = str(tmp_path / "data")
    created = json.loads(
        ok(cli(tmp_path, "keys", "create", "--expires-at", given, "--json", "--data-dir", data))
    )
    assert created["key"]["expires_at"] == stored
    shown = ok(cli(tmp_path, "keys", "get", created["key"]["id"], "--data-dir", data))
    assert ("2099-01-01 12:00Z" if stored == NOON_2099 else "2099-01-01 00:00Z") in shown
    assert str(stored) not in shown


def test_expires_at_refuses_what_is_not_a_time(tmp_path: Path) -> None:
    done = cli(tmp_path, "keys", "create", "--expires-at", "next tuesday", "--data-dir", str(tmp_path))
    assert done.returncode == 2
    assert "2027-01-01T12:00:00Z" in done.stderr  # the message shows the forms it takes


def test_keys_list_is_a_table_for_people_and_json_for_scripts(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    for name in ("alpha", "beta"):
        ok(cli(tmp_path, "--data-dir", data, "keys", "create", "--name", name, "--expires-at", "2099-01-01"))
    table = ok(cli(tmp_path, "keys", "list", "--data-dir", data))
    header, *rows = [line for line in table.splitlines() if line.strip() and not set(line.strip()) <= {"─"}]
    assert header.split()[:4] == ["ID", "NAME", "PREFIX", "STATE"]
    assert [row.split()[1] for row in rows] == ["alpha", "beta"]
    assert all("2099-01-01 00:00Z" in row for row in rows)
    assert str(NEW_YEAR_2099) not in table
    listed = json.loads(ok(cli(tmp_path, "keys", "list", "--json", "--data-dir", data)))
    assert [(key["name"], key["expires_at"]) for key in listed] == [
        ("alpha", NEW_YEAR_2099),
        ("beta", NEW_YEAR_2099),
    ]


def test_a_keys_cache_namespace_is_set_on_create_and_changed_by_update(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    created = json.loads(
        ok(cli(tmp_path, "keys", "create", "--cache-namespace", "team-a", "--json", "--data-dir", data))
    )
    key_id = created["key"]["id"]
    assert created["key"]["cache_namespace"] == "team-a"
    plain = json.loads(ok(cli(tmp_path, "keys", "create", "--json", "--data-dir", data)))
    assert plain["key"]["cache_namespace"] == plain["key"]["id"]
    moved = json.loads(
        ok(
            cli(
                tmp_path,
                "keys",
                "update",
                key_id,
                "--cache-namespace",
                "team-b",
                "--json",
                "--data-dir",
                data,
            )
        )
    )
    assert moved["cache_namespace"] == "team-b"
    assert "team-b" in ok(cli(tmp_path, "keys", "get", key_id, "--data-dir", data))
    back = json.loads(
        ok(cli(tmp_path, "keys", "update", key_id, "--cache-namespace", "", "--json", "--data-dir", data))
    )
    assert back["cache_namespace"] == key_id
    refused = cli(tmp_path, "keys", "update", key_id, "--cache-namespace", "two words", "--data-dir", data)
    assert refused.returncode == 2 and "--cache-namespace" in refused.stderr
    assert cli(tmp_path, "keys", "update", key_id, "--data-dir", data).returncode == 2
    assert (
        cli(
            tmp_path, "keys", "update", "key_missing", "--cache-namespace", "x", "--data-dir", data
        ).returncode
        == 1
    )


def test_teams_own_keys_and_budgets_are_set_from_the_command_line(tmp_path: Path) -> None:
    data = ["--data-dir", str(tmp_path / "data"), "--json"]
    team = json.loads(
        ok(
            cli(
                tmp_path,
                "teams",
                "create",
                "--name",
                "Research",
                "--credit-limit",
                "10",
                "--budget",
                "2",
                "--period",
                "day",
                "--rpm",
                "60",
                *data,
            )
        )
    )
    assert (team["name"], team["credit_limit"], team["rpm_limit"]) == ("Research", 10, 60)
    assert team["budget"]["limit"] == 2 and team["budget"]["period"] == "day" and team["budget"]["spent"] == 0
    key = json.loads(
        ok(
            cli(
                tmp_path,
                "keys",
                "create",
                "--team",
                team["id"],
                "--budget",
                "1",
                "--period",
                "week",
                "--reset",
                "rolling",
                *data,
            )
        )
    )["key"]
    assert key["team_id"] == team["id"]
    assert key["budget"]["reset"] == "rolling" and key["budget"]["resets_at"] is None
    assert "$0 of $1/week (rolling)" in ok(
        cli(tmp_path, "keys", "list", "--data-dir", str(tmp_path / "data"))
    )

    changed = json.loads(
        ok(cli(tmp_path, "teams", "update", team["id"], "--budget", "none", "--rpm", "none", *data))
    )
    assert (changed["budget"], changed["rpm_limit"], changed["credit_limit"]) == (None, None, 10)
    assert [found["id"] for found in json.loads(ok(cli(tmp_path, "teams", "list", *data)))] == [team["id"]]
    refused = cli(tmp_path, "teams", "delete", team["id"], *data)
    assert refused.returncode == 1 and "still owns keys" in refused.stderr
    moved = json.loads(
        ok(cli(tmp_path, "keys", "update", key["id"], "--team", "", "--budget", "none", *data))
    )
    assert (moved["team_id"], moved["budget"]) == (None, None)
    assert json.loads(ok(cli(tmp_path, "teams", "delete", team["id"], *data)))["deleted"] is True
    assert cli(tmp_path, "teams", "get", team["id"], *data).returncode == 1
    assert cli(tmp_path, "keys", "create", "--team", "team_nope", *data).returncode == 1
    assert cli(tmp_path, "keys", "create", "--period", "day", *data).returncode == 2  # no --budget
    assert cli(tmp_path, "teams", "create", "--name", "x", "--budget", "ten", *data).returncode == 2


def test_keys_in_a_directory_without_a_database(tmp_path: Path) -> None:
    listed = cli(tmp_path, "keys", "list")
    assert listed.returncode == 1
    assert f"no keys database at {tmp_path / 'data' / 'siraya.db'}" in listed.stderr
    assert not (tmp_path / "data").exists()
    created = cli(tmp_path, "keys", "create", "--name", "first")
    ok(created)
    assert f"{tmp_path / 'data' / 'siraya.db'} did not exist and is created now" in created.stderr


def test_config_check_honours_the_global_config_option(project: Path) -> None:
    assert "OK" in ok(cli(project, "config", "check", "--config", "conf/siraya.yaml"))
    assert "OK" in ok(cli(project, "--config", "conf/siraya.yaml", "config", "check"))
    checked = json.loads(ok(cli(project, "config", "check", "conf/siraya.yaml", "--json")))
    assert checked == {"file": str(project / "conf" / "siraya.yaml"), "providers": 1, "models": 1}
