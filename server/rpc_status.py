"""GatewayError <-> google.rpc.Status, so errors cross gRPC with their type, code, param and status."""

from __future__ import annotations

import grpc
from google.protobuf import duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from server.errors import GatewayError, InternalError, error_class, error_for_http_status

DOMAIN = "siraya.ai"
_STATUS_DETAILS_KEY = "grpc-status-details-bin"
# Metadata keys that are response headers for the HTTP client (x-ratelimit-*, retry-after).
RESPONSE_HEADER_PREFIXES = ("x-ratelimit-", "retry-after", "x-siraya-cache")

_GRPC_TO_HTTP: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.DEADLINE_EXCEEDED: 408,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.CANCELLED: 499,
}


def to_status_proto(error: GatewayError) -> status_pb2.Status:
    kind = error.kind
    info = error_details_pb2.ErrorInfo(
        reason=error.reason,
        domain=DOMAIN,
        metadata={"type": kind.type, "code": error.code, "http_status": str(kind.http_status)},
    )
    if error.param is not None:
        info.metadata["param"] = error.param
    status = status_pb2.Status(code=kind.grpc_code.value[0], message=error.message)
    status.details.add().Pack(info)
    if error.retry_after is not None:
        delay = duration_pb2.Duration()
        delay.FromMilliseconds(int(error.retry_after * 1000))
        status.details.add().Pack(error_details_pb2.RetryInfo(retry_delay=delay))
    if error.param is not None and kind.http_status == 400:
        violation = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field=error.param, description=error.message)
            ]
        )
        status.details.add().Pack(violation)
    return status


class _StatusWithHeaders(grpc.Status):
    def __init__(
        self, code: grpc.StatusCode, details: str, trailing_metadata: tuple[tuple[str, str | bytes], ...]
    ) -> None:
        self.code, self.details, self.trailing_metadata = code, details, trailing_metadata


def to_grpc_status(error: GatewayError) -> grpc.Status:
    status = rpc_status.to_status(to_status_proto(error))
    if not error.headers:
        return status
    # Response headers (x-ratelimit-*) ride along as trailing metadata; the bridge copies them back.
    return _StatusWithHeaders(
        status.code, status.details, (*status.trailing_metadata, *error.headers.items())
    )


def from_status_proto(status: status_pb2.Status) -> GatewayError:
    info: error_details_pb2.ErrorInfo | None = None
    retry_after: float | None = None
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
        elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            retry = error_details_pb2.RetryInfo()
            detail.Unpack(retry)
            retry_after = retry.retry_delay.ToMilliseconds() / 1000
    if info is None or info.domain != DOMAIN:
        return _from_bare_code(grpc_code_from_int(status.code), status.message)
    cls = error_class(int(info.metadata.get("http_status", "500")), info.reason)
    return cls(
        status.message,
        param=info.metadata.get("param"),
        code=info.metadata.get("code"),
        retry_after=retry_after,
    )


def from_rpc_error(error: grpc.aio.AioRpcError) -> GatewayError:
    """The GatewayError a failed call carried; a bare gRPC failure maps by its code."""
    found: GatewayError | None = None
    headers: dict[str, str] = {}
    for key, value in error.trailing_metadata() or ():
        if key == _STATUS_DETAILS_KEY and isinstance(value, bytes):
            found = from_status_proto(status_pb2.Status.FromString(value))
        elif key.startswith(RESPONSE_HEADER_PREFIXES) and isinstance(value, str):
            headers[key] = value
    if found is None:
        return _from_bare_code(error.code(), error.details() or "")
    if headers:
        found.headers = headers
    return found


def grpc_code_from_int(value: int) -> grpc.StatusCode:
    for code in grpc.StatusCode:
        if code.value[0] == value:
            return code
    return grpc.StatusCode.UNKNOWN


def _from_bare_code(code: grpc.StatusCode, message: str) -> GatewayError:
    http_status = _GRPC_TO_HTTP.get(code)
    if http_status is None:
        return InternalError("The gateway failed to process the request.")
    cls = error_for_http_status(http_status)
    return cls(message or code.name.lower())


__all__ = ["to_grpc_status", "to_status_proto", "from_status_proto", "from_rpc_error", "code_pb2"]
