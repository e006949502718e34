"""Provider types by config name. A new wire protocol is one module plus one line here."""

from __future__ import annotations

from collections.abc import Callable

from server.config import LimitsConfig, ProviderConfig
from server.providers.base import Provider


def _openai(config: ProviderConfig, limits: LimitsConfig) -> Provider:
    from server.providers.openai_compat import OpenAICompatibleProvider

    return OpenAICompatibleProvider(config, limits)


def _anthropic(config: ProviderConfig, limits: LimitsConfig) -> Provider:
    from server.providers.anthropic import AnthropicProvider

    return AnthropicProvider(config, limits)


def _gemini(config: ProviderConfig, limits: LimitsConfig) -> Provider:
    from server.providers.gemini import GeminiProvider

    return GeminiProvider(config, limits)


def _local(config: ProviderConfig, limits: LimitsConfig) -> Provider:
    from server.providers.local import LocalProvider

    return LocalProvider(config)


PROVIDER_FACTORIES: dict[str, Callable[[ProviderConfig, LimitsConfig], Provider]] = {
    "openai": _openai,
    "anthropic": _anthropic,
    "gemini": _gemini,
    "local": _local,
}


def build_provider(config: ProviderConfig, limits: LimitsConfig | None = None) -> Provider:
    """The adapter for `config`; `limits` are the gateway's budgets (media, reply sizes)."""
    return PROVIDER_FACTORIES[config.type](config, limits or LimitsConfig())
