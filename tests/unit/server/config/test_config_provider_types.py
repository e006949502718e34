"""Provider types: each type's settings model owns its fields and defaults (base URL, the variable its key
comes from), the `providers:` union picks the model by `type`, and the adapter registry follows from it."""

from __future__ import annotations

from pathlib import Path
from typing import get_args

import pytest

from server.config import (
    PROVIDER_TYPES,
    AnthropicProviderConfig,
    ConfigError,
    GeminiProviderConfig,
    LocalProviderConfig,
    OpenAIProviderConfig,
    load_config,
)
from server.providers.anthropic import AnthropicProvider
from server.providers.gemini import GeminiProvider
from server.providers.openai_compat import OpenAICompatibleProvider
from server.providers.registry import build_provider

TYPES = """
providers:
  plain: {base_url: "http://127.0.0.1:8000/v1"}
  vllm: {type: openai, base_url: "http://127.0.0.1:8000/v1/"}
  claude: {type: anthropic}
  google: {type: gemini}
  proxied: {type: gemini, base_url: "https://proxy.example/v1beta/", api_key: from-file}
"""


def load(tmp_path: Path, text: str, env: dict[str, str]) -> object:
    path = tmp_path / "siraya.yaml"
    path.write_text(text)
    return load_config(path, env)


def test_each_type_is_read_by_its_own_settings_model_with_its_own_defaults(tmp_path: Path) -> None:
    providers = load(tmp_path, TYPES, {}).providers  # type: ignore[attr-defined]
    assert [type(providers[name]) for name in ("plain", "vllm", "claude", "google")] == [
        OpenAIProviderConfig,
        OpenAIProviderConfig,
        AnthropicProviderConfig,
        GeminiProviderConfig,
    ]
    assert providers["claude"].base_url == AnthropicProviderConfig.model_fields["base_url"].default
    assert providers["google"].base_url == GeminiProviderConfig.model_fields["base_url"].default
    assert providers["proxied"].base_url == "https://proxy.example/v1beta"
    assert providers["vllm"].base_url == "http://127.0.0.1:8000/v1"
    assert "base_url" not in LocalProviderConfig.model_fields


def test_a_native_type_reads_its_key_from_its_own_variable_when_the_file_gives_none(tmp_path: Path) -> None:
    env = {"ANTHROPIC_API_KEY": "sk-ant-env", "GEMINI_API_KEY": "g-env", "OPENAI_API_KEY": "sk-env"}
    providers = load(tmp_path, TYPES, env).providers  # type: ignore[attr-defined]
    assert (providers["claude"].api_key, providers["google"].api_key) == ("sk-ant-env", "g-env")
    assert providers["proxied"].api_key == "from-file", "a key in the file wins"
    # An OpenAI-compatible base_url may be any server: OPENAI_API_KEY is never sent to it implicitly.
    assert providers["plain"].api_key is None and providers["vllm"].api_key is None


def test_a_field_of_another_type_is_an_unknown_key(tmp_path: Path) -> None:
    text = """
providers:
  claude: {type: anthropic, media_allow_http: true}
  o: {base_url: "http://x", queue_size: 2}
"""
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text, {})
    assert [line.split(":")[0] for line in caught.value.problems] == [
        "providers.claude.media_allow_http",
        "providers.o.queue_size",
    ]


def test_the_type_list_and_the_registry_follow_from_the_union() -> None:
    for name, settings in PROVIDER_TYPES.items():
        assert get_args(settings.model_fields["type"].annotation) == (name,)
    assert set(PROVIDER_TYPES) == {"openai", "anthropic", "gemini", "local"}
    built = [
        build_provider(OpenAIProviderConfig(name="o", base_url="http://127.0.0.1:1/v1")),
        build_provider(AnthropicProviderConfig(name="a")),
        build_provider(GeminiProviderConfig(name="g")),
    ]
    assert [type(provider) for provider in built] == [
        OpenAICompatibleProvider,
        AnthropicProvider,
        GeminiProvider,
    ]
    assert [provider.name for provider in built] == ["o", "a", "g"]


def test_gemini_redacts_its_own_key_header_too() -> None:
    config = GeminiProviderConfig(name="g", api_key="k1", headers={"X-Goog-Api-Key": "k2", "X-Team": "t"})
    assert config.secrets() == ("k1", "k2")
