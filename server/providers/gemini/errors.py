"""Classify the Gemini API's failures into the gateway's error tree.

Google answers every failure with a google.rpc-style body, both as an HTTP error and as a
mid-stream SSE event: `{"error": {"code": 429, "message": ..., "status": "RESOURCE_EXHAUSTED",
"details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "38s"}, ...]}}`.
The typed `status` decides first, the HTTP status is the fallback (a proxy's bare 502):

    status               HTTP  gateway error
    INVALID_ARGUMENT     400   InvalidRequest (Google's message, our key redacted)
    FAILED_PRECONDITION  400   InvalidRequest
    OUT_OF_RANGE         400   InvalidRequest
    UNAUTHENTICATED      401   UpstreamError  (the gateway's credentials; Google's words, scrubbed)
    PERMISSION_DENIED    403   UpstreamError  (likewise)
    NOT_FOUND            404   UpstreamError  (the model is unknown or retired upstream)
    RESOURCE_EXHAUSTED   429   RateLimited    (delay from RetryInfo, else the Retry-After header)
    CANCELLED            499   UpstreamError
    INTERNAL             500   UpstreamError
    UNAVAILABLE          503   UpstreamOverloaded (a 502 like UpstreamError; the Messages door's 529)
    DEADLINE_EXCEEDED    504   RequestTimeout

A bad API key is a 400 INVALID_ARGUMENT whose details carry `ErrorInfo{reason: API_KEY_INVALID}`:
that is the gateway's fault, not the client's, so it is an UpstreamError like a 401.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

from server.errors import (
    GatewayError,
    InvalidRequest,
    RateLimited,
    RequestTimeout,
    UpstreamError,
    UpstreamOverloaded,
)
from server.providers.upstream_errors import MAX_RETRY_AFTER_SECONDS, parse_retry_after, redact, sentence

__all__ = ["GoogleError", "classify_error", "error_from_body", "parse_google_error", "parse_retry_delay"]

_RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"
_ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"
_CREDENTIAL_REASONS = frozenset(
    {"API_KEY_INVALID", "API_KEY_EXPIRED", "API_KEY_SERVICE_BLOCKED", "API_KEY_HTTP_REFERRER_BLOCKED"}
)
_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)s\s*$")

_KIND_BY_STATUS = {
    "INVALID_ARGUMENT": "invalid",
    "FAILED_PRECONDITION": "invalid",
    "OUT_OF_RANGE": "invalid",
    "UNAUTHENTICATED": "credentials",
    "PERMISSION_DENIED": "credentials",
    "NOT_FOUND": "not_found",
    "RESOURCE_EXHAUSTED": "rate_limited",
    "DEADLINE_EXCEEDED": "timeout",
    "UNAVAILABLE": "overloaded",
}
_KIND_BY_HTTP = {
    400: "invalid",
    401: "credentials",
    403: "credentials",
    404: "not_found",
    408: "timeout",
    413: "invalid",
    429: "rate_limited",
    503: "overloaded",
    504: "timeout",
}


@dataclass(frozen=True, slots=True)
class GoogleError:
    """The typed fields of one google.rpc error body."""

    code: int | None = None
    message: str | None = None
    status: str | None = None
    retry_delay: float | None = None
    reasons: tuple[str, ...] = ()


def parse_retry_delay(value: Any) -> float | None:
    """A google.protobuf.Duration in JSON ("38s", "0.5s") as seconds, capped like Retry-After."""
    if not isinstance(value, str):
        return None
    match = _DURATION.match(value)
    if match is None:
        return None
    return min(float(match.group(1)), MAX_RETRY_AFTER_SECONDS)


def parse_google_error(error: Any) -> GoogleError:
    """Read the `error` object of a google.rpc body; anything malformed is simply left out."""
    if not isinstance(error, dict):
        return GoogleError()
    code, message, status = error.get("code"), error.get("message"), error.get("status")
    retry_delay: float | None = None
    reasons: list[str] = []
    details = error.get("details")
    for detail in details if isinstance(details, list) else ():
        if not isinstance(detail, dict):
            continue
        kind = detail.get("@type")
        if kind == _RETRY_INFO:
            retry_delay = parse_retry_delay(detail.get("retryDelay"))
        elif kind == _ERROR_INFO and isinstance(detail.get("reason"), str):
            reasons.append(detail["reason"])
    return GoogleError(
        code=code if isinstance(code, int) and not isinstance(code, bool) else None,
        message=message if isinstance(message, str) else None,
        status=status if isinstance(status, str) else None,
        retry_delay=retry_delay,
        reasons=tuple(reasons),
    )


def _error_object(body: bytes) -> Any:
    try:
        parsed: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    # Without alt=sse a stream answers with a JSON array; an error then arrives as its one element.
    if isinstance(parsed, list) and parsed:
        parsed = parsed[0]
    return parsed.get("error") if isinstance(parsed, dict) else None


def classify_error(
    provider: str,
    error: GoogleError,
    http_status: int | None,
    retry_after: str | None,
    secrets: tuple[str, ...],
) -> GatewayError:
    """The gateway error for one upstream failure (HTTP or mid-stream)."""
    status = http_status if http_status is not None else error.code
    kind = _KIND_BY_STATUS.get(error.status or "") or _KIND_BY_HTTP.get(status or 0, "failed")
    if _CREDENTIAL_REASONS.intersection(error.reasons):
        kind = "credentials"
    message = redact(error.message, secrets) if error.message else None
    label = " ".join(str(piece) for piece in (status, error.status) if piece)
    detail = f": {message}" if message else "."
    if kind == "credentials":
        return UpstreamError(
            f"Provider '{provider}' rejected the gateway's credentials ({label or 'auth'}){detail}"
        )
    if kind == "invalid":
        return InvalidRequest(
            message or f"Provider '{provider}' rejected the request ({label}).",
            code="request_too_large" if status == 413 else None,
        )
    if kind == "rate_limited":
        delay = error.retry_delay if error.retry_delay is not None else parse_retry_after(retry_after)
        suffix = f" {message}" if message else ""
        return RateLimited(f"Provider '{provider}' is rate limiting requests.{suffix}", retry_after=delay)
    if kind == "timeout":
        return RequestTimeout(f"Provider '{provider}' timed out ({label or 'deadline exceeded'}).")
    if kind == "not_found":
        return UpstreamError(
            f"Provider '{provider}' does not serve this model or route ({label})"
            + (f": {sentence(message)}" if message else ".")
            + " Check the provider's base_url (it includes the API version, e.g. /v1beta)"
            " and the upstream model name."
        )
    if kind == "overloaded":
        wait = error.retry_delay if error.retry_delay is not None else parse_retry_after(retry_after)
        return UpstreamOverloaded(f"Provider '{provider}' is overloaded ({label}){detail}", retry_after=wait)
    return UpstreamError(f"Provider '{provider}' failed ({label or 'unknown error'}){detail}")


def error_from_body(
    provider: str, http_status: int, body: bytes, retry_after: str | None, secrets: tuple[str, ...]
) -> GatewayError:
    """Classify an HTTP error response (any body: Google's JSON, a proxy's HTML, nothing)."""
    error = classify_error(
        provider, parse_google_error(_error_object(body)), http_status, retry_after, secrets
    )
    # Routing retries on the status (429, 5xx), not on a 400 or a 403.
    error.upstream_status = http_status
    return error
