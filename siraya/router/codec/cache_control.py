"""`cache_control` on a chat request: OpenRouter / LiteLLM prompt-cache breakpoints.

Decoded for the Anthropic adapter and never written to an OpenAI-compatible upstream: strict
servers answer 400 to it, and dropping it changes only what the request costs.
"""

from __future__ import annotations

from siraya.router.codec.fields import JsonObject, opt_object, opt_str, require_str
from siraya.router.v1 import common_pb2

__all__ = ["decode_cache_control"]


def decode_cache_control(container: JsonObject, target: common_pb2.CacheControl, param: str) -> None:
    """`cache_control` as Anthropic defines it ({"type": "ephemeral", "ttl": "5m" | "1h"}), where
    OpenRouter and LiteLLM accept it: on the request, a message, a content part or a tool."""
    raw = opt_object(container, "cache_control", param)
    if raw is None:
        return
    target.type = require_str(raw, "type", f"{param}.type")
    ttl = opt_str(raw, "ttl", f"{param}.ttl")
    if ttl is not None:
        target.ttl = ttl
