"""The gateway's error tree and the one table that maps it to HTTP, gRPC and OpenAI's envelope.

    GatewayError
    ├── InvalidRequest          400  INVALID_ARGUMENT     invalid_request_error
    │   ├── MethodNotAllowed    405  (HTTP only)          invalid_request_error, method_not_allowed
    │   └── HeadersTooLarge     431  (HTTP only)          invalid_request_error, request_header_...
    ├── AuthenticationFailed    401  UNAUTHENTICATED      authentication_error
    ├── InsufficientCredits     402  FAILED_PRECONDITION  insufficient_credits
    ├── PermissionDenied        403  PERMISSION_DENIED    permission_error
    ├── NotFound                404  NOT_FOUND            invalid_request_error
    ├── RequestTimeout          408  DEADLINE_EXCEEDED    timeout_error
    ├── RateLimited             429  RESOURCE_EXHAUSTED   rate_limit_error
    ├── UpstreamError           502  UNAVAILABLE          upstream_error
    │   └── UpstreamOverloaded  502  UNAVAILABLE          upstream_error, PROVIDER_OVERLOADED
    ├── NoAvailableProvider     503  UNAVAILABLE          service_unavailable_error
    └── InternalError           500  INTERNAL             server_error

Code decides which class to raise; nothing re-decides status, type or code case by case.

A subclass that keeps its parent's row (UpstreamOverloaded) differs only in its `reason`, the
`google.rpc.ErrorInfo` reason it crosses gRPC with (REASON_CLASSES brings it back): a front door
whose protocol tells it apart says so (the Messages door's 529 overloaded_error), the others answer
the parent's row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import grpc


@dataclass(frozen=True, slots=True)
class ErrorKind:
    http_status: int
    grpc_code: grpc.StatusCode
    type: str
    default_code: str


class GatewayError(Exception):
    """Any failure the gateway reports to a client."""

    kind: ClassVar[ErrorKind]
    # The HTTP status the upstream answered with, when this error classifies one (routing retries on it).
    upstream_status: int | None = None
    # The upstream call it came from, "POST http://host:port/v1/chat/completions" (never a query
    # string): for the operator's log line, not for the client, since it names the upstream's host.
    upstream_url: str | None = None
    # The usage an upstream reported with its error (OpenAI's shape: an error body that still holds a
    # `usage` object): the provider billed it although it failed, so the operator's spend counts it.
    billed_usage: dict[str, Any] | None = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        retry_after: float | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code or self.kind.default_code
        self.retry_after = retry_after
        # Extra response headers (lower-case names), e.g. a refused request's x-ratelimit-*.
        self.headers = headers

    @property
    def reason(self) -> str:
        """The machine-readable cause, as `google.rpc.ErrorInfo.reason` spells it."""
        return self.code.upper()

    def envelope(self) -> dict[str, dict[str, str | None]]:
        return {
            "error": {"message": self.message, "type": self.kind.type, "param": self.param, "code": self.code}
        }


class InvalidRequest(GatewayError):
    kind = ErrorKind(400, grpc.StatusCode.INVALID_ARGUMENT, "invalid_request_error", "invalid_request")


class MethodNotAllowed(InvalidRequest):
    """A known path asked with a method it does not serve. HTTP only: the bridge adds `Allow`, and no
    RPC ever raises it, so it is not in ERROR_CLASSES (the table a gRPC status maps back through)."""

    kind = ErrorKind(405, grpc.StatusCode.UNIMPLEMENTED, "invalid_request_error", "method_not_allowed")


class HeadersTooLarge(InvalidRequest):
    """A request head past the HTTP edge's limits (a line too long, too many fields). HTTP only."""

    kind = ErrorKind(
        431, grpc.StatusCode.INVALID_ARGUMENT, "invalid_request_error", "request_header_fields_too_large"
    )


class AuthenticationFailed(GatewayError):
    kind = ErrorKind(401, grpc.StatusCode.UNAUTHENTICATED, "authentication_error", "invalid_api_key")


class InsufficientCredits(GatewayError):
    kind = ErrorKind(402, grpc.StatusCode.FAILED_PRECONDITION, "insufficient_credits", "insufficient_credits")


class PermissionDenied(GatewayError):
    kind = ErrorKind(403, grpc.StatusCode.PERMISSION_DENIED, "permission_error", "permission_denied")


class NotFound(GatewayError):
    kind = ErrorKind(404, grpc.StatusCode.NOT_FOUND, "invalid_request_error", "not_found")


class ModelNotFound(NotFound):
    # Models named in the message before "and N more".
    NAMED = 10

    def __init__(self, model: str, available: Sequence[str] = ()) -> None:
        """`available`: models the caller may use instead (never more than the key may see)."""
        message = f"The model '{model}' does not exist or you do not have access to it."
        if available:
            named = ", ".join(available[: self.NAMED])
            more = f" and {len(available) - self.NAMED} more" if len(available) > self.NAMED else ""
            message += f" Available models: {named}{more}."
        super().__init__(message, param="model", code="model_not_found")


class RequestTimeout(GatewayError):
    kind = ErrorKind(408, grpc.StatusCode.DEADLINE_EXCEEDED, "timeout_error", "request_timeout")


class RateLimited(GatewayError):
    kind = ErrorKind(429, grpc.StatusCode.RESOURCE_EXHAUSTED, "rate_limit_error", "rate_limit_exceeded")


class UpstreamError(GatewayError):
    kind = ErrorKind(502, grpc.StatusCode.UNAVAILABLE, "upstream_error", "provider_error")


class UpstreamOverloaded(UpstreamError):
    """The upstream said it is overloaded for now (Anthropic's 529, an HTTP 503, Google's UNAVAILABLE),
    or every deployment's circuit is open: worth retrying shortly. To an OpenAI client it is the same
    502 as any upstream failure; an Anthropic client gets Anthropic's own 529 overloaded_error."""

    REASON: ClassVar[str] = "PROVIDER_OVERLOADED"

    @property
    def reason(self) -> str:
        return self.REASON


class NoAvailableProvider(GatewayError):
    kind = ErrorKind(503, grpc.StatusCode.UNAVAILABLE, "service_unavailable_error", "no_available_provider")


class InternalError(GatewayError):
    kind = ErrorKind(500, grpc.StatusCode.INTERNAL, "server_error", "internal_error")


ERROR_CLASSES: tuple[type[GatewayError], ...] = (
    InvalidRequest,
    AuthenticationFailed,
    InsufficientCredits,
    PermissionDenied,
    NotFound,
    RequestTimeout,
    RateLimited,
    UpstreamError,
    NoAvailableProvider,
    InternalError,
)
_CLASS_BY_HTTP_STATUS: dict[int, type[GatewayError]] = {cls.kind.http_status: cls for cls in ERROR_CLASSES}
# Subclasses that share their parent's row, told apart by their ErrorInfo reason.
REASON_CLASSES: dict[str, type[GatewayError]] = {UpstreamOverloaded.REASON: UpstreamOverloaded}


def error_for_http_status(http_status: int) -> type[GatewayError]:
    """The class for a status from the table (used when an error crosses the gRPC boundary)."""
    return _CLASS_BY_HTTP_STATUS.get(http_status, InternalError)


def error_class(http_status: int, reason: str) -> type[GatewayError]:
    """The class an error that crossed gRPC had: its row's, or the subclass its reason names."""
    cls = _CLASS_BY_HTTP_STATUS.get(http_status, InternalError)
    special = REASON_CLASSES.get(reason)
    return special if special is not None and issubclass(special, cls) else cls
