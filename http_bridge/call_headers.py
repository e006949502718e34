"""Response headers a call's metadata carries (x-request-id, x-ratelimit-*), for the HTTP response.

A stream's come in its initial metadata; a unary call's in its trailing metadata, with the reply
(server/services/response_headers.py).
"""

from __future__ import annotations

from typing import Any

from server.rpc_status import RESPONSE_HEADER_PREFIXES


def _response_headers(metadata: Any) -> dict[str, str]:
    if not metadata:
        return {}
    return {
        key: value
        for key, value in metadata
        if isinstance(value, str) and key.startswith(RESPONSE_HEADER_PREFIXES)
    }


async def call_headers(call: Any) -> dict[str, str]:
    """The response headers of a started stream (empty when it sent none)."""
    return _response_headers(await call.initial_metadata())


async def unary(call: Any) -> tuple[Any, dict[str, str]]:
    """Await a unary call: (the reply, its response headers)."""
    reply = await call
    return reply, _response_headers(await call.trailing_metadata())
