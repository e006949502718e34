"""What a servicer's unexpected exception becomes: INTERNAL with a generic message and the request id.

The `unary_rpc` / `streaming_rpc` decorators are the one place every RPC passes through, so they are
driven here directly, with the in-process context the bridge uses (its abort raises the
grpc.aio.AioRpcError a client would see). The exception's own text must never reach the caller: it
can quote the request, a path, or an upstream's reply.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from server.inprocess import InProcessContext
from server.rpc_decoding import UNDECODABLE
from server.services.base import streaming_rpc, unary_rpc
from siraya.router.v1 import chat_pb2

SECRET_TEXT = "boom: sk-upstream-secret at /srv/siraya/keys.db"


class Broken:
    """A servicer whose methods fail the way a bug would."""

    @unary_rpc
    async def CreateChatCompletion(
        self, request: chat_pb2.CreateChatCompletionRequest, context: grpc.aio.ServicerContext
    ) -> chat_pb2.CreateChatCompletionResponse:
        raise RuntimeError(SECRET_TEXT)

    @streaming_rpc
    async def StreamChatCompletion(
        self, request: chat_pb2.StreamChatCompletionRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[chat_pb2.StreamChatCompletionResponse]:
        yield chat_pb2.StreamChatCompletionResponse()
        raise KeyError(SECRET_TEXT)


def _context() -> InProcessContext:
    return InProcessContext((("x-request-id", "req-failure-42"),), None)


def _info(error: grpc.aio.AioRpcError) -> error_details_pb2.ErrorInfo:
    details = dict(error.trailing_metadata())["grpc-status-details-bin"]
    info = error_details_pb2.ErrorInfo()
    status_pb2.Status.FromString(details).details[0].Unpack(info)
    return info


def _assert_generic_internal(error: grpc.aio.AioRpcError) -> None:
    assert error.code() == grpc.StatusCode.INTERNAL
    message = error.details() or ""
    assert "internal error" in message and "request id req_" in message, message
    assert "boom" not in message and "sk-upstream" not in message and "KeyError" not in message
    assert _info(error).metadata["code"] == "internal_error"


async def test_an_unexpected_exception_is_internal_with_a_generic_message() -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await Broken().CreateChatCompletion(chat_pb2.CreateChatCompletionRequest(), _context())
    _assert_generic_internal(caught.value)


async def test_an_unexpected_exception_mid_stream_is_internal_with_a_generic_message() -> None:
    replies = Broken().StreamChatCompletion(chat_pb2.StreamChatCompletionRequest(), _context())
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in replies:
            pass
    _assert_generic_internal(caught.value)


async def test_undecodable_bytes_never_reach_the_method() -> None:
    """Unreadable bytes arrive as UNDECODABLE (server/rpc_decoding.py); the decorator refuses it with a
    400 that names no decoder internals, before the method runs."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await Broken().CreateChatCompletion(UNDECODABLE, _context())  # type: ignore[arg-type]
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _info(caught.value).metadata["code"] == "invalid_protobuf"
    assert "not a valid protobuf" in caught.value.details()
