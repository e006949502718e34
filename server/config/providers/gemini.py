"""`type: gemini`: the Google Gemini API (AI Studio keys)."""

from __future__ import annotations

from typing import ClassVar, Literal

from server.config.base import HttpUrl
from server.config.providers.http import HttpProviderConfig

__all__ = ["DEFAULT_BASE_URL", "GeminiProviderConfig"]

DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com/v1beta"


class GeminiProviderConfig(HttpProviderConfig):
    adapter: ClassVar[str] = "server.providers.gemini:GeminiProvider"
    api_key_env: ClassVar[str | None] = "GEMINI_API_KEY"
    secret_headers: ClassVar[frozenset[str]] = HttpProviderConfig.secret_headers | {"x-goog-api-key"}

    type: Literal["gemini"] = "gemini"
    # The API root including its version; set this only for a proxy in front of it.
    base_url: HttpUrl = DEFAULT_BASE_URL
    # Client image URLs the gateway fetches to inline their bytes: only public https addresses unless
    # these allow loopback/private/link-local addresses or plain http.
    media_allow_private_addresses: bool = False
    media_allow_http: bool = False
