"""Classify an upstream's failure into the gateway's error tree, by HTTP status and typed fields.

The upstream's own message is kept for client errors (400/404/422) with the provider key redacted;
credential failures never pass the upstream's words on, since they describe the gateway's key.
"""

from __future__ import annotations

from typing import Any

import orjson

from server.errors import (
    GatewayError,
    InvalidRequest,
    RateLimited,
    RequestTimeout,
    UpstreamError,
)

MAX_RETRY_AFTER_SECONDS = 3600.0


def parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


def upstream_message(body: bytes) -> tuple[str | None, str | None]:
    """The (message, param) of an OpenAI-shaped error body, if it is one."""
    try:
        parsed: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None, None
    error = parsed.get("error") if isinstance(parsed, dict) else None
    if isinstance(error, dict):
        message = error.get("message")
        param = error.get("param")
        return (message if isinstance(message, str) else None), (param if isinstance(param, str) else None)
    if isinstance(error, str):
        return error, None
    return None, None


def redact(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        if secret and secret in text:
            text = text.replace(secret, "***")
    return text


def classify_http_error(
    provider: str, status: int, body: bytes, retry_after: str | None, secrets: tuple[str, ...]
) -> GatewayError:
    error = _classify(provider, status, body, retry_after, secrets)
    error.upstream_status = status
    return error


def _classify(
    provider: str, status: int, body: bytes, retry_after: str | None, secrets: tuple[str, ...]
) -> GatewayError:
    message, param = upstream_message(body)
    safe_message = redact(message, secrets) if message else None
    if status in (401, 403):
        return UpstreamError(f"Provider '{provider}' rejected the gateway's credentials (HTTP {status}).")
    if status == 408:
        return RequestTimeout(f"Provider '{provider}' timed out.")
    if status == 429:
        return RateLimited(
            f"Provider '{provider}' is rate limiting requests."
            + (f" {safe_message}" if safe_message else ""),
            retry_after=parse_retry_after(retry_after),
        )
    if status in (400, 413, 422):
        return InvalidRequest(
            safe_message or f"Provider '{provider}' rejected the request (HTTP {status}).", param=param
        )
    if status == 404:
        return UpstreamError(
            f"Provider '{provider}' does not serve this model or route (HTTP 404)."
            + (f" {safe_message}" if safe_message else "")
        )
    return UpstreamError(f"Provider '{provider}' failed (HTTP {status}).")
