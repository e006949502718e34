"""Classify Anthropic's failures into the gateway's error tree, by the typed `error.type` first.

Anthropic answers every failure with `{"type": "error", "error": {"type": ..., "message": ...},
"request_id": ...}`, both as an HTTP error body and as a mid-stream `error` event. The HTTP status
is only the fallback, for bodies that are not Anthropic's (a proxy's HTML 413, a bare 502).

    error.type              HTTP  gateway error
    invalid_request_error   400   InvalidRequest (Anthropic's message, our key redacted)
    authentication_error    401   UpstreamError  (the gateway's credentials; Anthropic's words, scrubbed)
    billing_error           402   UpstreamError  (likewise the gateway's account)
    permission_error        403   UpstreamError  (likewise)
    not_found_error         404   UpstreamError  (the model is down or unknown upstream)
    request_too_large       413   InvalidRequest
    rate_limit_error        429   RateLimited    (retry-after header kept)
    api_error               500   UpstreamError
    timeout_error           504   RequestTimeout
    overloaded_error        529   UpstreamOverloaded (502 on the OpenAI doors, 529 on Messages;
                                                    retryable on another deployment, retry-after kept)
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
    UpstreamOverloaded,
)
from server.providers.upstream_errors import parse_retry_after, redact

__all__ = ["classify_error", "error_from_event", "error_from_response"]

_KIND_BY_TYPE = {
    "invalid_request_error": "invalid",
    "request_too_large": "too_large",
    "authentication_error": "credentials",
    "billing_error": "credentials",
    "permission_error": "credentials",
    "not_found_error": "not_found",
    "rate_limit_error": "rate_limited",
    "api_error": "failed",
    "timeout_error": "timeout",
    "overloaded_error": "overloaded",
}
_KIND_BY_STATUS = {
    400: "invalid",
    401: "credentials",
    402: "credentials",
    403: "credentials",
    404: "not_found",
    408: "timeout",
    413: "too_large",
    422: "invalid",
    429: "rate_limited",
    503: "overloaded",
    504: "timeout",
    529: "overloaded",
}


def _parse_body(body: bytes) -> tuple[str | None, str | None]:
    """(error.type, error.message) of an Anthropic error body, or Nones when it is not one."""
    try:
        parsed: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None, None
    error = parsed.get("error") if isinstance(parsed, dict) else None
    if not isinstance(error, dict):
        return None, None
    error_type, message = error.get("type"), error.get("message")
    return (error_type if isinstance(error_type, str) else None), (
        message if isinstance(message, str) else None
    )


def classify_error(
    provider: str,
    error_type: str | None,
    message: str | None,
    status: int | None,
    retry_after: str | None,
    secrets: tuple[str, ...],
) -> GatewayError:
    """The gateway error for one Anthropic failure; `status` is None for a mid-stream event."""
    kind = _KIND_BY_TYPE.get(error_type or "") or _KIND_BY_STATUS.get(status or 0)
    if kind is None:
        kind = "invalid" if status is not None and 400 <= status < 500 else "failed"
    what = (
        ", ".join(part for part in (f"HTTP {status}" if status else "", error_type or "") if part)
        or "no detail"
    )
    safe = redact(message, secrets) if message else None
    if kind == "invalid":
        return InvalidRequest(safe or f"Provider '{provider}' rejected the request ({what}).")
    if kind == "too_large":
        return InvalidRequest(
            f"The request is too large for provider '{provider}' ({what}).", code="request_too_large"
        )
    detail = f": {safe}" if safe else "."
    if kind == "credentials":
        return UpstreamError(f"Provider '{provider}' rejected the gateway's credentials ({what}){detail}")
    if kind == "not_found":
        return UpstreamError(f"Provider '{provider}' does not serve this model ({what}){detail}")
    if kind == "rate_limited":
        # Anthropic's own wording names the gateway's organisation and limits: not passed on.
        return RateLimited(
            f"Provider '{provider}' is rate limiting requests.", retry_after=parse_retry_after(retry_after)
        )
    if kind == "timeout":
        return RequestTimeout(f"Provider '{provider}' timed out ({what}).")
    if kind == "overloaded":
        return UpstreamOverloaded(
            f"Provider '{provider}' is overloaded ({what}); retry shortly.",
            retry_after=parse_retry_after(retry_after),
        )
    return UpstreamError(f"Provider '{provider}' failed ({what}){detail}")


def error_from_response(
    provider: str, status: int, body: bytes, retry_after: str | None, secrets: tuple[str, ...]
) -> GatewayError:
    """Classify an HTTP error answer from /v1/messages."""
    error_type, message = _parse_body(body)
    error = classify_error(provider, error_type, message, status, retry_after, secrets)
    # Routing retries on the status (429, 529, 5xx), not on a 401 or a 400.
    error.upstream_status = status
    return error


def error_from_event(provider: str, data: Any, secrets: tuple[str, ...]) -> GatewayError:
    """Classify the payload of a mid-stream `event: error`."""
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict):
        return UpstreamError(f"Provider '{provider}' reported an error mid-stream.")
    error_type, message = error.get("type"), error.get("message")
    return classify_error(
        provider,
        error_type if isinstance(error_type, str) else None,
        message if isinstance(message, str) else None,
        None,
        None,
        secrets,
    )
