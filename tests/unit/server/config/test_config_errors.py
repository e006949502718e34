"""A bad config file: every problem reported at once, each with its path, a did-you-mean for a typo'd
key, and `${...}` references that are malformed refused instead of passed on as literal text."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from server.config import ConfigError, load_config

MANY_PROBLEMS = """
server: {http_port: nine, hots: 0.0.0.0}
providers:
  vllm: {base_url: "ftp://10.0.0.5/v1", headers: {X-Team: "${TEAM"}}
  claude: {type: anthropic, native_responses: true}
models:
  - {id: llama, provider: vllm, upstream_modle: meta/llama-3}
  - {id: llama, provider: nope}
  - id: mixed
    deployments:
      - {provider: vllm, weight: -1}
observability: {log_level: loud}
"""


def load(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> object:
    path = tmp_path / "siraya.yaml"
    path.write_text(text)
    return load_config(path, env or {})


def problems(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> tuple[str, ...]:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text, env)
    return caught.value.problems


def test_every_problem_in_the_file_is_reported_at_once_with_its_path(tmp_path: Path) -> None:
    found = problems(tmp_path, MANY_PROBLEMS)
    assert set(found) == {
        "server.http_port: expected an integer",
        "server.hots: unknown field; did you mean `host`?",
        "providers.vllm.base_url: must be an http:// or https:// URL",
        "providers.vllm.headers.X-Team: unclosed '${' (expected ${NAME} or ${NAME:-default}; "
        "write $${ for a literal ${)",
        "providers.claude.native_responses: unknown field (known: base_url, api_key, headers, "
        "connect_timeout, read_timeout, max_connections, passthrough_models, price_catalogue, proxy, type)",
        "models[0].upstream_modle: unknown field; did you mean `upstream_model`?",
        "models[1].id: duplicate model id 'llama'",
        "models[1].provider: unknown provider 'nope'",
        "models[2].deployments[0].weight: must be >= 0",
        "observability.log_level: must be one of debug, info, warning, error",
    }
    assert len(found) == 10


@pytest.mark.parametrize(
    ("text", "line"),
    [
        (
            "providers: {p: {base_url: 'http://x', api_kye: k}}\n",
            "providers.p.api_kye: unknown field; did you mean `api_key`?",
        ),
        (
            "routing: {retry: {max_atempts: 2}}\n",
            "routing.retry.max_atempts: unknown field; did you mean `max_attempts`?",
        ),
        ("modles: []\n", "modles: unknown field; did you mean `models`?"),
        (
            "providers: {g: {type: gemini, media_allow_privat_addresses: true}}\n",
            "providers.g.media_allow_privat_addresses: unknown field; "
            "did you mean `media_allow_private_addresses`?",
        ),
        ("providers: {p: {name: other, base_url: 'http://x'}}\n", "providers.p.name: unknown field"),
    ],
)
def test_an_unknown_key_names_the_field_it_probably_meant(tmp_path: Path, text: str, line: str) -> None:
    assert problems(tmp_path, text) == (line,)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("${OPENAI_KEY", "unclosed '${'"),
        ("sk-${}", "empty variable name in '${}'"),
        ("${1KEY}", "invalid reference '${1KEY}'"),
        ("${KEY:default}", "invalid reference '${KEY:default}'"),
        ("${MISSING}", "environment variable MISSING is not set"),
    ],
)
def test_a_malformed_or_unset_reference_is_an_error_naming_its_path(
    tmp_path: Path, value: str, message: str
) -> None:
    text = f'providers:\n  p: {{base_url: "http://x", api_key: "{value}"}}\n'
    (line,) = problems(tmp_path, text, {"KEY": "k"})
    assert line.startswith(f"providers.p.api_key: {message}")


def test_references_resolve_in_every_section_with_defaults_and_escapes(tmp_path: Path) -> None:
    text = """
server: {host: "${HOST:-0.0.0.0}", workers: "${WORKERS}"}
providers:
  p: {base_url: "${BASE}", api_key: "$${literal}", headers: {X-Team: "${TEAM:-}"}}
routing: {redis_url: "${REDIS_URL:-}"}
models:
  - {id: m, provider: p, upstream_model: "${MODEL}", aliases: ["${ALIAS:-m2}"]}
"""
    env = {"WORKERS": "3", "BASE": "http://10.0.0.5/v1/", "MODEL": "meta/llama-3"}
    config = load(tmp_path, text, env)
    assert (config.server.host, config.server.workers) == ("0.0.0.0", 3)  # type: ignore[attr-defined]
    provider = config.providers["p"]  # type: ignore[attr-defined]
    assert (provider.base_url, provider.api_key, provider.headers) == (
        "http://10.0.0.5/v1",
        "${literal}",
        {"X-Team": ""},
    )
    assert config.routing.redis_url is None, "an empty value leaves an optional setting unset"  # type: ignore[attr-defined]
    (model,) = config.models  # type: ignore[attr-defined]
    assert (model.upstream_model, model.aliases) == ("meta/llama-3", ("m2",))


def test_the_cli_prints_one_line_per_problem(tmp_path: Path) -> None:
    path = tmp_path / "siraya.yaml"
    path.write_text(MANY_PROBLEMS)
    result = subprocess.run(
        [sys.executable, "-m", "server", "config", "check", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": ""},
    )
    assert result.returncode == 2
    heading, *lines = result.stderr.strip().splitlines()
    assert heading == "siraya-router: invalid configuration, 10 problems:"
    assert "  models[0].upstream_modle: unknown field; did you mean `upstream_model`?" in lines
    assert len(lines) == 10 and all(line.startswith("  ") and ": " in line for line in lines)


def test_key_commands_need_only_the_variables_of_the_sections_they_read(tmp_path: Path) -> None:
    path = tmp_path / "siraya.yaml"
    path.write_text(
        f"server: {{data_dir: {tmp_path / 'data'}}}\n"
        "providers:\n  openai: {base_url: 'https://api.openai.com/v1', api_key: '${OPENAI_API_KEY}'}\n"
        "models:\n  - {id: gpt-4o-mini, provider: openai}\n"
    )

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "server", "--config", str(path), *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=60, env={"PATH": ""})

    listed = run("keys", "list")
    # No config error: the keys commands read only where the database is (which does not exist yet).
    assert listed.returncode != 2 and "OPENAI_API_KEY" not in listed.stderr, listed.stderr
    assert "no keys database" in listed.stderr
    serve = run("serve")
    assert serve.returncode == 2
    assert "providers.openai.api_key: environment variable OPENAI_API_KEY is not set" in serve.stderr
