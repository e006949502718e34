"""The gateway's error table in Anthropic's shape: every row's status and error.type on /v1/messages."""

from __future__ import annotations

import orjson
import pytest

from http_bridge.messages_errors import anthropic_error, anthropic_error_event, anthropic_error_response
from server.errors import (
    AuthenticationFailed,
    GatewayError,
    InsufficientCredits,
    InternalError,
    InvalidRequest,
    ModelNotFound,
    NoAvailableProvider,
    PermissionDenied,
    RateLimited,
    RequestTimeout,
    UpstreamError,
    UpstreamOverloaded,
)


@pytest.mark.parametrize(
    ("error", "status", "error_type"),
    [
        (InvalidRequest("bad"), 400, "invalid_request_error"),
        (InvalidRequest("big", code="request_too_large"), 413, "request_too_large"),
        (AuthenticationFailed("who"), 401, "authentication_error"),
        (InsufficientCredits("poor"), 402, "billing_error"),
        (PermissionDenied("no"), 403, "permission_error"),
        (ModelNotFound("nope"), 404, "not_found_error"),
        (RequestTimeout("slow"), 504, "timeout_error"),
        (RateLimited("wait"), 429, "rate_limit_error"),
        (UpstreamError("broke"), 500, "api_error"),
        (UpstreamOverloaded("busy"), 529, "overloaded_error"),
        (NoAvailableProvider("none"), 529, "overloaded_error"),
        (InternalError("bug"), 500, "api_error"),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, GatewayError) else str(value),
)
def test_every_row_has_anthropics_status_and_type(error: GatewayError, status: int, error_type: str) -> None:
    assert anthropic_error(error) == (status, error_type)
    response = anthropic_error_response(error, "req_1")
    assert response.status == status
    assert response.body is not None
    assert orjson.loads(response.body) == {  # type: ignore[arg-type]
        "type": "error",
        "error": {"type": error_type, "message": error.message},
        "request_id": "req_1",
    }
    name, data = anthropic_error_event(error).decode().strip().split("\n")
    assert name == "event: error" and orjson.loads(data.removeprefix("data: "))["error"]["type"] == error_type


def test_an_overloaded_upstreams_wait_becomes_retry_after() -> None:
    response = anthropic_error_response(UpstreamOverloaded("busy", retry_after=2.2))
    assert (response.status, response.headers["Retry-After"]) == (529, "3")
