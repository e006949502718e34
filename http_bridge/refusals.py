"""A refusal decided before any front door's handler runs, in the shape of the door it was meant for.

The router (unknown path, wrong method), aiohttp's parser and the HTTP edge refuse requests that no
handler sees. Their answer takes the shape of the door the path names: Anthropic's on the Messages
paths, OpenAI's everywhere else. A parser refusal has no parsed request to read the path from, so
the edge keeps the first bytes of each request head and reads the path from those (`head_path`).
"""

from __future__ import annotations

from aiohttp import web

from http_bridge.errors import error_response
from http_bridge.messages_errors import anthropic_error_response, is_messages_path
from server.errors import GatewayError

__all__ = ["HEAD_PREFIX_BYTES", "head_path", "refusal_response"]

# Enough of a request line for its method and the start of its path: the door is known by then.
HEAD_PREFIX_BYTES = 64


def head_path(head: bytes) -> str:
    """The path in a request head's first bytes (`POST /v1/messages?x HTTP/1.1...`), or "" if none."""
    parts = head.split(b" ", 2)
    if len(parts) < 2:
        return ""
    target = parts[1].split(b"?", 1)[0].split(b"\r", 1)[0].split(b"\n", 1)[0]
    return target.decode("latin-1")


def refusal_response(path: str, error: GatewayError, request_id: str | None = None) -> web.Response:
    """`error` answered in the shape of the door `path` belongs to."""
    if is_messages_path(path):
        return anthropic_error_response(error, request_id)
    return error_response(error, request_id)
