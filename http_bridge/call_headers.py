"""Response headers a call's initial metadata carries (x-ratelimit-*), for the HTTP response."""

from __future__ import annotations

from typing import Any

from server.rpc_status import RESPONSE_HEADER_PREFIXES


async def call_headers(call: Any) -> dict[str, str]:
    """The x-ratelimit-* headers of a finished or started call (empty when it sent none)."""
    metadata = await call.initial_metadata()
    if not metadata:
        return {}
    return {
        key: value
        for key, value in metadata
        if isinstance(value, str) and key.startswith(RESPONSE_HEADER_PREFIXES)
    }


async def unary(call: Any) -> tuple[Any, dict[str, str]]:
    """Await a unary call: (the reply, its response headers)."""
    reply = await call
    return reply, await call_headers(call)
