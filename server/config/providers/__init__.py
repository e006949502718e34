"""The provider types: one settings model per `type:`, and the tagged union of them that `providers:` holds.

Each type owns its fields and defaults (base URL, the environment variable of its key) and names its
adapter (`adapter`, imported by server/providers/registry.py). A new type is one module here plus
one member of `ProviderConfig`; PROVIDER_TYPES and the registry follow from the union.
"""

from __future__ import annotations

from typing import Annotated, Any, get_args

from pydantic import Discriminator, Tag

from server.config.providers.anthropic import AnthropicProviderConfig
from server.config.providers.gemini import GeminiProviderConfig
from server.config.providers.http import HttpProviderConfig
from server.config.providers.local import LocalProviderConfig
from server.config.providers.openai import OpenAIProviderConfig

__all__ = [
    "DEFAULT_PROVIDER_TYPE",
    "PROVIDER_TYPES",
    "AnthropicProviderConfig",
    "GeminiProviderConfig",
    "HttpProviderConfig",
    "LocalProviderConfig",
    "OpenAIProviderConfig",
    "ProviderConfig",
]

# The type of a provider entry that names none.
DEFAULT_PROVIDER_TYPE = "openai"


def _type_of(entry: Any) -> str | None:
    if isinstance(entry, dict):
        return entry.get("type", DEFAULT_PROVIDER_TYPE)  # type: ignore[no-any-return]
    return getattr(entry, "type", None)


# Each member's tag is its `type` literal.
ProviderConfig = Annotated[
    Annotated[OpenAIProviderConfig, Tag("openai")]
    | Annotated[AnthropicProviderConfig, Tag("anthropic")]
    | Annotated[GeminiProviderConfig, Tag("gemini")]
    | Annotated[LocalProviderConfig, Tag("local")],
    Discriminator(_type_of),
]

PROVIDER_TYPES: dict[str, Any] = {
    member.__metadata__[0].tag: get_args(member)[0] for member in get_args(get_args(ProviderConfig)[0])
}
