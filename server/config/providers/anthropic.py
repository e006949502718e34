"""`type: anthropic`: the Anthropic Messages API."""

from __future__ import annotations

from typing import ClassVar, Literal

from server.config.base import HttpUrl
from server.config.providers.http import HttpProviderConfig

__all__ = ["DEFAULT_BASE_URL", "AnthropicProviderConfig"]

DEFAULT_BASE_URL = "https://api.anthropic.com"


class AnthropicProviderConfig(HttpProviderConfig):
    adapter: ClassVar[str] = "server.providers.anthropic:AnthropicProvider"
    api_key_env: ClassVar[str | None] = "ANTHROPIC_API_KEY"

    type: Literal["anthropic"] = "anthropic"
    # The API has one public endpoint; set this only for a proxy in front of it.
    base_url: HttpUrl = DEFAULT_BASE_URL
