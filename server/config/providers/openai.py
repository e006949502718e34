"""`type: openai`: any upstream that speaks the OpenAI protocol (OpenAI, vLLM, Groq, Azure, ...)."""

from __future__ import annotations

from typing import ClassVar, Literal

from server.config.models import ModelKind
from server.config.providers.http import HttpProviderConfig

__all__ = ["WELL_KNOWN_HOSTS", "OpenAIProviderConfig", "WellKnownHost"]


class OpenAIProviderConfig(HttpProviderConfig):
    adapter: ClassVar[str] = "server.providers.openai_compat:OpenAICompatibleProvider"
    # None: an OpenAI-compatible base_url may be any server, so OPENAI_API_KEY is never sent implicitly.
    api_key_env: ClassVar[str | None] = None

    type: Literal["openai"] = "openai"
    # Whether the upstream serves /responses itself; if not, the gateway translates to chat.
    native_responses: bool = False


# name: (env var holding its key, base URL, native /responses, default models as (id, kind)).
WellKnownHost = tuple[str, str, bool, tuple[tuple[str, ModelKind], ...]]

# OpenAI-protocol services the embedded defaults (no config file) enable when their key is set.
WELL_KNOWN_HOSTS: dict[str, WellKnownHost] = {
    "openai": (
        "OPENAI_API_KEY",
        "https://api.openai.com/v1",
        True,
        (
            ("gpt-4o", "chat"),
            ("gpt-4o-mini", "chat"),
            ("gpt-4.1", "chat"),
            ("gpt-4.1-mini", "chat"),
            ("text-embedding-3-small", "embedding"),
            ("text-embedding-3-large", "embedding"),
            ("gpt-image-1", "image"),
            ("sora-2", "video"),
        ),
    ),
    "groq": ("GROQ_API_KEY", "https://api.groq.com/openai/v1", False, ()),
    "mistral": ("MISTRAL_API_KEY", "https://api.mistral.ai/v1", False, ()),
    "deepseek": ("DEEPSEEK_API_KEY", "https://api.deepseek.com/v1", False, (("deepseek-chat", "chat"),)),
    "together": ("TOGETHER_API_KEY", "https://api.together.xyz/v1", False, ()),
    "xai": ("XAI_API_KEY", "https://api.x.ai/v1", False, ()),
}
