"""Configuration loading: env interpolation, defaults, and errors that name the bad field."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from server.config import ConfigError, bundled_local_default, load_config

GOOD = """
server: {http_port: 9000}
providers:
  local-vllm:
    base_url: http://127.0.0.1:8000/v1
    api_key: ${VLLM_KEY}
    headers: {X-Team: "${TEAM:-core}"}
models:
  - {id: llama, provider: local-vllm, upstream_model: meta/llama-3, kind: chat}
  - {id: embedder, provider: local-vllm, kind: embedding}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def test_good_config_interpolates_env(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD), {"VLLM_KEY": "secret-1"})
    provider = config.providers["local-vllm"]
    assert provider.api_key == "secret-1"
    assert provider.headers == {"X-Team": "core"}
    assert config.server.http_port == 9000
    assert [m.upstream_model for m in config.models] == ["meta/llama-3", "embedder"]


@pytest.mark.parametrize(
    ("text", "env", "named"),
    [
        (GOOD, {}, "providers.local-vllm.api_key: environment variable VLLM_KEY is not set"),
        (GOOD.replace("kind: chat", "kind: music"), {"VLLM_KEY": "x"}, "models[0].kind"),
        (
            GOOD.replace("provider: local-vllm, upstream", "provider: nope, upstream"),
            {"VLLM_KEY": "x"},
            "models[0].provider",
        ),
        (GOOD.replace("http_port: 9000", "http_port: nine"), {"VLLM_KEY": "x"}, "server.http_port"),
        (
            GOOD.replace("base_url: http://", "base_url: ftp://"),
            {"VLLM_KEY": "x"},
            "providers.local-vllm.base_url",
        ),
        (GOOD + "extra: 1\n", {"VLLM_KEY": "x"}, "extra"),
        ("models: [1, 2", {}, "invalid YAML"),
    ],
)
def test_bad_config_names_the_field(tmp_path: Path, text: str, env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text), env)
    assert named in str(caught.value)


def test_embedded_defaults_enable_providers_by_env() -> None:
    # The bundled local model joins the defaults wherever the local extra is installed.
    local = {"local"} if bundled_local_default() is not None else set()
    assert set(load_config(None, {}).providers) == local
    config = load_config(None, {"OPENAI_API_KEY": "sk-x", "GROQ_API_KEY": "gsk-y"})
    assert set(config.providers) == {"openai", "groq"} | local
    assert config.providers["openai"].native_responses
    assert any(m.id == "gpt-4o-mini" for m in config.models)


def test_cli_refuses_bad_config_with_exit_2(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("kind: chat", "kind: music"))
    result = subprocess.run(
        [sys.executable, "-m", "server", "--config", str(path), "serve"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"VLLM_KEY": "x", "PATH": ""},
    )
    assert result.returncode == 2
    assert "models[0].kind" in result.stderr
    check = subprocess.run(
        [sys.executable, "-m", "server", "config", "check", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.returncode == 2


def test_native_providers_default_their_base_url(tmp_path: Path) -> None:
    text = """
providers:
  claude: {type: anthropic, api_key: k}
  google: {type: gemini, api_key: k}
  proxied: {type: gemini, api_key: k, base_url: "https://proxy.example/v1beta/"}
models:
  - {id: c, provider: claude, kind: chat}
"""
    providers = load_config(write(tmp_path, text), {}).providers
    assert providers["claude"].base_url == "https://api.anthropic.com"
    assert providers["google"].base_url == "https://generativelanguage.googleapis.com/v1beta"
    assert providers["proxied"].base_url == "https://proxy.example/v1beta"
    # An OpenAI-compatible provider has no one endpoint: its base_url stays required.
    with pytest.raises(ConfigError, match="base_url"):
        load_config(write(tmp_path, "providers: {x: {type: openai}}\nmodels: []\n"), {})


def test_config_values_compare_and_hash_by_their_fields() -> None:
    # Prices are compared and used as cache keys per request (server/accounts/accounting.py).
    from server.config import PricingConfig, RetryConfig

    price = PricingConfig(input_per_million=1.0)
    assert price == PricingConfig(input_per_million=1.0)
    assert hash(price) == hash(PricingConfig(input_per_million=1))
    assert price != PricingConfig() and PricingConfig() == PricingConfig()
    assert RetryConfig() != PricingConfig() and price != (1.0, None, None, None)
    with pytest.raises(ValueError, match="frozen"):
        price.input_per_million = 2.0  # type: ignore[misc]


def test_the_http_edge_settings_parse_and_default(tmp_path: Path) -> None:
    edge = (
        "server: {header_timeout: 2.5, body_timeout: 30, keepalive_timeout: 20, max_connections: 500,"
        " max_in_flight_per_key: 0, max_header_bytes: 16384, max_headers: 64}\n"
    )
    server = load_config(write(tmp_path, edge)).server
    assert (server.header_timeout, server.body_timeout, server.keepalive_timeout) == (2.5, 30, 20)
    assert (server.max_connections, server.max_in_flight_per_key) == (500, 0)
    assert (server.max_header_bytes, server.max_headers) == (16384, 64)
    defaults = load_config(write(tmp_path, "server: {http_port: 9000}\n")).server
    assert (defaults.header_timeout, defaults.body_timeout, defaults.keepalive_timeout) == (10.0, 60.0, 75.0)
    assert (defaults.max_connections, defaults.max_in_flight_per_key) == (0, 256)
    with pytest.raises(ConfigError, match="server.header_timeout"):
        load_config(write(tmp_path, "server: {header_timeout: 0}\n"))


def test_local_provider_defaults_and_their_overrides(tmp_path: Path) -> None:
    from server.providers.local.bundled import bundled_model_path, llama_cpp_installed

    if not llama_cpp_installed() or bundled_model_path("smollm2-135m-instruct") is None:
        pytest.skip("the local extra or the bundled model is not installed")
    from server.providers.local import LocalProvider  # noqa: F401  (the provider module must import)
    from server.providers.local.provider import default_repeat_penalty

    path = tmp_path / "siraya.yaml"
    path.write_text(
        "providers:\n  a: {type: local, bundled_model: smollm2-135m-instruct}\n"
        "  b: {type: local, bundled_model: smollm2-135m-instruct,"
        " default_max_tokens: 64, repeat_penalty: 1.25}\n"
    )
    config = load_config(path, {})
    a, b = config.providers["a"], config.providers["b"]
    assert (a.default_max_tokens, default_repeat_penalty(a)) == (512, 1.1)
    assert (b.default_max_tokens, default_repeat_penalty(b)) == (64, 1.25)


def test_a_relative_data_dir_is_relative_to_the_config_file(tmp_path: Path) -> None:
    path = tmp_path / "conf" / "siraya.yaml"
    path.parent.mkdir()
    path.write_text("server: {data_dir: ../state}\n")
    assert load_config(path, {}).server.data_dir == str(tmp_path / "state")
    path.write_text("server: {}\n")
    assert load_config(path, {}).server.data_dir == str(tmp_path / "conf" / "data")


def test_only_reads_the_fields_a_tool_uses(tmp_path: Path) -> None:
    path = tmp_path / "siraya.yaml"
    path.write_text(
        "server: {data_dir: '${DATA}', admin_key: '${ADMIN_KEY}', bogus: 1}\n"
        "providers: {x: {type: openai, base_url: '${URL}'}}\n"
        "accounts: {database_url: '${DB:-}'}\n"
    )
    only = {"server": ("data_dir",), "accounts": ("database_url",)}
    config = load_config(path, {"DATA": "/srv/siraya"}, only=only)
    assert config.server.data_dir == "/srv/siraya" and config.server.admin_key is None
    assert config.providers == {} and config.accounts.database_url is None
    with pytest.raises(ConfigError, match="server.data_dir: environment variable DATA is not set"):
        load_config(path, {}, only=only)
    with pytest.raises(ConfigError, match="ADMIN_KEY|bogus"):
        load_config(path, {"DATA": "/srv/siraya"})
