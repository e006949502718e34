"""Provider types by config name. A new wire protocol is one module plus one line here."""

from __future__ import annotations

from collections.abc import Callable

from server.config import ProviderConfig
from server.providers.base import Provider


def _openai(config: ProviderConfig) -> Provider:
    from server.providers.openai_compat import OpenAICompatibleProvider

    return OpenAICompatibleProvider(config)


def _anthropic(config: ProviderConfig) -> Provider:
    from server.providers.anthropic import AnthropicProvider

    return AnthropicProvider(config)


def _gemini(config: ProviderConfig) -> Provider:
    from server.providers.gemini import GeminiProvider

    return GeminiProvider(config)


def _local(config: ProviderConfig) -> Provider:
    from server.providers.local import LocalProvider

    return LocalProvider(config)


PROVIDER_FACTORIES: dict[str, Callable[[ProviderConfig], Provider]] = {
    "openai": _openai,
    "anthropic": _anthropic,
    "gemini": _gemini,
    "local": _local,
}


def build_provider(config: ProviderConfig) -> Provider:
    return PROVIDER_FACTORIES[config.type](config)
