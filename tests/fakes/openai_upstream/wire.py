"""OpenAI's framing: JSON bodies, error envelopes and server-sent events."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

__all__ = [
    "DONE",
    "GARBAGE_BODY",
    "GARBAGE_EVENT",
    "error_response",
    "json_response",
    "mask_key",
    "sse_data",
    "sse_event",
]

DONE = b"data: [DONE]\n\n"
GARBAGE_BODY = b"<html><body>502 Bad Gateway</body></html> {not json"
GARBAGE_EVENT = b"data: {not json at all\n\n"


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=orjson.dumps(body), status=status, headers=headers, content_type="application/json"
    )


def error_response(
    status: int,
    message: str,
    error_type: str = "invalid_request_error",
    code: str | None = None,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    body = {"error": {"message": message, "type": error_type, "param": param, "code": code}}
    return json_response(body, status, headers)


def sse_data(payload: Any) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def sse_event(kind: str, payload: Any) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


def mask_key(key: str) -> str:
    """Mask a key the way OpenAI echoes it in a 401: a short prefix, stars, the last four."""
    if len(key) <= 8:
        return "*" * len(key)
    return key[:5] + "*" * (len(key) - 9) + key[-4:]
