"""The error table round-trips through google.rpc.Status without losing status, type, code or param."""

from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2

from server.errors import (
    ERROR_CLASSES,
    GatewayError,
    InvalidRequest,
    ModelNotFound,
    RateLimited,
    UpstreamError,
    UpstreamOverloaded,
)
from server.rpc_status import from_status_proto, to_status_proto

EXPECTED = {
    "InvalidRequest": (400, grpc.StatusCode.INVALID_ARGUMENT, "invalid_request_error"),
    "AuthenticationFailed": (401, grpc.StatusCode.UNAUTHENTICATED, "authentication_error"),
    "InsufficientCredits": (402, grpc.StatusCode.FAILED_PRECONDITION, "insufficient_credits"),
    "PermissionDenied": (403, grpc.StatusCode.PERMISSION_DENIED, "permission_error"),
    "NotFound": (404, grpc.StatusCode.NOT_FOUND, "invalid_request_error"),
    "RequestTimeout": (408, grpc.StatusCode.DEADLINE_EXCEEDED, "timeout_error"),
    "RateLimited": (429, grpc.StatusCode.RESOURCE_EXHAUSTED, "rate_limit_error"),
    "UpstreamError": (502, grpc.StatusCode.UNAVAILABLE, "upstream_error"),
    "NoAvailableProvider": (503, grpc.StatusCode.UNAVAILABLE, "service_unavailable_error"),
    "InternalError": (500, grpc.StatusCode.INTERNAL, "server_error"),
}


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=lambda c: c.__name__)
def test_table_row(cls: type[GatewayError]) -> None:
    status, code, type_ = EXPECTED[cls.__name__]
    assert (cls.kind.http_status, cls.kind.grpc_code, cls.kind.type) == (status, code, type_)
    error = cls("boom", param="p")
    back = from_status_proto(to_status_proto(error))
    assert type(back) is cls
    assert back.envelope() == error.envelope()


def test_retry_after_and_field_violation_travel() -> None:
    status = to_status_proto(RateLimited("slow down", retry_after=2.5))
    assert from_status_proto(status).retry_after == 2.5
    bad = to_status_proto(InvalidRequest("bad temperature", param="temperature"))
    violations = [d for d in bad.details if d.Is(error_details_pb2.BadRequest.DESCRIPTOR)]
    assert len(violations) == 1


def test_model_not_found_shape() -> None:
    error = ModelNotFound("x")
    assert error.envelope()["error"]["code"] == "model_not_found"
    assert error.kind.http_status == 404


def test_an_overloaded_upstream_keeps_the_502_row_and_crosses_grpc_as_itself() -> None:
    error = UpstreamOverloaded("busy", retry_after=3)
    assert error.envelope() == UpstreamError("busy").envelope()
    status = to_status_proto(error)
    infos = [d for d in status.details if d.Is(error_details_pb2.ErrorInfo.DESCRIPTOR)]
    info = error_details_pb2.ErrorInfo()
    infos[0].Unpack(info)
    assert (info.reason, info.metadata["http_status"], info.metadata["code"]) == (
        "PROVIDER_OVERLOADED",
        "502",
        "provider_error",
    )
    back = from_status_proto(status)
    assert type(back) is UpstreamOverloaded and back.retry_after == 3
    # The reason never moves an error to another row: a 400 that names it stays a 400.
    info.metadata["http_status"] = "400"
    status.details[0].Pack(info)
    assert type(from_status_proto(status)) is InvalidRequest
