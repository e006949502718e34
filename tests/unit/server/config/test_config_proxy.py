"""The `proxy:` setting of providers and of the moderation upstream, and the environment's proxy
variables, checked when the file loads: every unusable one reported at its path, none quoted (a
proxy URL may hold a password), and the password known to the log scrubber."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.config import ConfigError, GatewayConfig, load_config
from server.providers.openai_compat import OpenAICompatibleProvider
from server.providers.registry import build_provider

PASSWORD = "pr0xy-s3cret-pass"

CONFIG = """
providers:
  corp: {{base_url: "https://api.example.com/v1", proxy: "{corp}"}}
  internal: {{base_url: "http://10.1.2.3:8000/v1", proxy: none}}
  plain: {{base_url: "https://api.other.example/v1"}}
accounts:
  moderation:
    - name: mod
      upstream: {{base_url: "https://api.example.com/v1", proxy: "{moderation}"}}
"""


def load(tmp_path: Path, env: dict[str, str], corp: str, moderation: str = "none") -> GatewayConfig:
    path = tmp_path / "siraya.yaml"
    path.write_text(CONFIG.format(corp=corp, moderation=moderation))
    return load_config(path, env)


def test_a_providers_proxy_none_and_unset_load(tmp_path: Path) -> None:
    config = load(tmp_path, {}, f"http://alice:{PASSWORD}@proxy.corp:3128")
    providers = config.providers
    assert providers["corp"].proxy == f"http://alice:{PASSWORD}@proxy.corp:3128"
    assert providers["internal"].proxy == "none"
    assert providers["plain"].proxy is None
    assert PASSWORD in providers["corp"].secrets()


def test_every_unusable_proxy_is_reported_at_its_path_without_its_value(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        load(
            tmp_path,
            {},
            f"socks5://alice:{PASSWORD}@proxy.corp:1080",
            moderation=f"http://alice:{PASSWORD}@proxy.corp:3128/some/path",
        )
    problems = raised.value.problems
    assert any(p.startswith("providers.corp.proxy: uses socks5://; only http:// proxies") for p in problems)
    assert any(p.startswith("accounts.moderation[0].upstream.proxy: has a path") for p in problems)
    assert PASSWORD not in str(raised.value)


def test_an_unusable_environment_proxy_is_reported_where_it_would_apply(tmp_path: Path) -> None:
    env = {"https_proxy": f"socks5h://alice:{PASSWORD}@proxy.corp:1080"}
    with pytest.raises(ConfigError) as raised:
        load(tmp_path, env, "http://proxy.corp:3128", moderation="http://proxy.corp:3128")
    # Only `plain` takes its proxy from the environment; the others set their own.
    (problem,) = raised.value.problems
    assert problem.startswith("providers.plain.proxy: https_proxy uses socks5h://; only http:// proxies")
    assert "set `proxy:` here" in problem
    assert PASSWORD not in problem


async def test_a_provider_built_with_an_unusable_environment_proxy_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = load(tmp_path, {}, "http://proxy.corp:3128")
    monkeypatch.setenv("HTTPS_PROXY", f"socks5://alice:{PASSWORD}@proxy.corp:1080")
    with pytest.raises(ConfigError) as raised:
        build_provider(config.providers["plain"], config.limits)
    assert str(raised.value).startswith("providers.plain: HTTPS_PROXY uses socks5://")
    assert PASSWORD not in str(raised.value)
    provider = build_provider(config.providers["internal"], config.limits)  # proxy: none ignores it
    assert isinstance(provider, OpenAICompatibleProvider)
    await provider.close()
