"""The YAML format stays backward compatible: every YAML example in the README and the shipped
deploy/siraya.yaml load, and the embedded defaults (no config file) are what they always were."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from server.config import load_config, parse_config
from server.providers.local.bundled import DEFAULT_BUNDLED_MODEL, bundled_model_path, llama_cpp_installed
from tests.paths import ROOT

README_BLOCKS = re.findall(r"```ya?ml\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
LOCAL_INSTALLED = llama_cpp_installed() and bundled_model_path(DEFAULT_BUNDLED_MODEL) is not None


def _environment(text: str) -> dict[str, str]:
    """A value for each variable the text needs (those it gives no default)."""
    return {name: f"value-of-{name}" for name in re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", text)}


def _with_referenced_providers(raw: dict[str, Any]) -> dict[str, Any]:
    """A README fragment may show models whose providers another example declares: stub those."""
    providers = dict(raw.get("providers") or {})
    for model in raw.get("models") or []:
        for deployment in [model, *(model.get("deployments") or [])]:
            name = deployment.get("provider")
            if name and name not in providers:
                providers[name] = {"base_url": "https://stub.example/v1"}
    return {**raw, "providers": providers} if providers else raw


def test_the_readme_has_yaml_examples() -> None:
    assert len(README_BLOCKS) >= 5


@pytest.mark.parametrize("block", README_BLOCKS, ids=[f"block{i}" for i in range(len(README_BLOCKS))])
def test_every_readme_yaml_example_loads(block: str) -> None:
    raw = yaml.safe_load(block)
    types = {entry.get("type") for entry in (raw.get("providers") or {}).values()}
    if "local" in types and not LOCAL_INSTALLED:
        pytest.skip("a type: local example needs the local extra and the bundled model")
    config = parse_config(_with_referenced_providers(raw), _environment(block), "README.md")
    for section in raw:
        assert getattr(config, section) is not None
    for model in raw.get("models") or []:
        assert any(m.id == model["id"] for m in config.models)


def test_the_shipped_deployment_config_loads() -> None:
    text = (ROOT / "deploy" / "siraya.yaml").read_text()
    config = load_config(ROOT / "deploy" / "siraya.yaml", _environment(text))
    assert (config.server.host, config.server.workers, config.server.admin_key) == (
        "0.0.0.0",
        2,
        "value-of-SIRAYA_ADMIN_KEY",
    )
    assert config.routing.redis_url == "redis://redis:6379/1"
    assert config.providers["openai"].api_key == "value-of-OPENAI_API_KEY"
    assert [(m.id, m.kind) for m in config.models] == [
        ("gpt-4o-mini", "chat"),
        ("text-embedding-3-small", "embedding"),
    ]


def test_the_embedded_defaults_are_unchanged() -> None:
    keys = {
        "OPENAI_API_KEY": "sk-o",
        "GROQ_API_KEY": "gsk",
        "MISTRAL_API_KEY": "m",
        "DEEPSEEK_API_KEY": "d",
        "TOGETHER_API_KEY": "t",
        "XAI_API_KEY": "x",
        "ANTHROPIC_API_KEY": "a",
    }
    config = load_config(None, keys)
    assert config.source == "embedded defaults"
    remote = {name: p for name, p in config.providers.items() if name != "local"}
    assert {name: (p.type, p.base_url, p.api_key, p.native_responses, p.passthrough_models)
            for name, p in remote.items()} == {
        "openai": ("openai", "https://api.openai.com/v1", "sk-o", True, True),
        "groq": ("openai", "https://api.groq.com/openai/v1", "gsk", False, True),
        "mistral": ("openai", "https://api.mistral.ai/v1", "m", False, True),
        "deepseek": ("openai", "https://api.deepseek.com/v1", "d", False, True),
        "together": ("openai", "https://api.together.xyz/v1", "t", False, True),
        "xai": ("openai", "https://api.x.ai/v1", "x", False, True),
    }  # fmt: skip
    remote_models = [(m.id, m.provider, m.upstream_model, m.kind, m.owned_by) for m in config.models]
    assert remote_models[:9] == [
        ("gpt-4o", "openai", "gpt-4o", "chat", "openai"),
        ("gpt-4o-mini", "openai", "gpt-4o-mini", "chat", "openai"),
        ("gpt-4.1", "openai", "gpt-4.1", "chat", "openai"),
        ("gpt-4.1-mini", "openai", "gpt-4.1-mini", "chat", "openai"),
        ("text-embedding-3-small", "openai", "text-embedding-3-small", "embedding", "openai"),
        ("text-embedding-3-large", "openai", "text-embedding-3-large", "embedding", "openai"),
        ("gpt-image-1", "openai", "gpt-image-1", "image", "openai"),
        ("sora-2", "openai", "sora-2", "video", "openai"),
        ("deepseek-chat", "deepseek", "deepseek-chat", "chat", "deepseek"),
    ]
    assert len(config.models) == 9 + (1 if LOCAL_INSTALLED else 0)
    assert config.server.model_dump() == {
        "host": "127.0.0.1",
        "http_port": 8080,
        "grpc_port": 50051,
        "data_dir": "./data",
        "max_body_bytes": 10 * 1024 * 1024,
        "in_process": True,
        "grpc_target": None,
        "admin_key": None,
        "drain_seconds": 30.0,
        "workers": 1,
        "header_timeout": 10.0,
        "body_timeout": 60.0,
        "keepalive_timeout": 75.0,
        "max_connections": 0,
        "max_in_flight_per_key": 256,
        "max_header_bytes": 8190,
        "max_headers": 128,
    }
    policy = config.models[0].resilience
    assert (policy.retry.max_attempts, policy.breaker.consecutive_failures, policy.hedging.enabled) == (
        1,
        5,
        False,
    )
    assert (config.accounts.database_url, config.observability.log_format) == (None, "json")
