"""Which request parameters a deployment honours when its config does not list them."""

from __future__ import annotations

from functools import cache

from server.providers.param_policy import CHAT_FIELDS, CONTENT_PART_KINDS


@cache
def adapter_parameters(provider_type: str, kind: str) -> frozenset[str]:
    """What the provider type's adapter translates for `kind` requests: chat fields and content part
    kinds (chat only; nothing is known for other kinds)."""
    if kind != "chat":
        return frozenset()
    if provider_type == "anthropic":
        from server.providers.anthropic.request import ANTHROPIC_SUPPORT

        return ANTHROPIC_SUPPORT.supported
    if provider_type == "gemini":
        from server.providers.gemini.request import CHAT_SUPPORT

        return CHAT_SUPPORT.supported
    if provider_type == "local":
        from server.providers.local.request import LOCAL_SUPPORT

        return LOCAL_SUPPORT.supported
    # OpenAI-protocol upstreams receive the request as it is.
    return CHAT_FIELDS | CONTENT_PART_KINDS
