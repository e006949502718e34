"""Per-call state: each RPC's servicer sees its own metadata, however many run at once.

The decorators read the metadata once per call and the servicer reads it back with `call_context`;
the state lives in a ContextVar, so concurrent calls on one event loop (gRPC's tasks, or the bridge's
handler tasks with in-process stubs) never see each other's key or request id, and nothing is left
behind when a call ends.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc

from server.inprocess import InProcessContext
from server.services import base
from server.services.base import call_context, streaming_rpc, unary_rpc
from siraya.router.v1 import chat_pb2


class Echo:
    """Answers with the authorization its own call carried, after yielding to the other calls."""

    @unary_rpc
    async def CreateChatCompletion(
        self, request: chat_pb2.CreateChatCompletionRequest, context: grpc.aio.ServicerContext
    ) -> str:
        await asyncio.sleep(0.001)
        authorization, _ = call_context(context)
        return authorization or ""

    @streaming_rpc
    async def StreamChatCompletion(
        self, request: chat_pb2.StreamChatCompletionRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[str]:
        for _ in range(3):
            await asyncio.sleep(0.001)
            authorization, _ = call_context(context)
            yield authorization or ""


def _context(key: str) -> InProcessContext:
    return InProcessContext((("authorization", key),), None)


async def test_concurrent_unary_calls_each_see_their_own_metadata() -> None:
    echo = Echo()
    keys = [f"Bearer key-{n}" for n in range(50)]
    replies = await asyncio.gather(
        *(echo.CreateChatCompletion(chat_pb2.CreateChatCompletionRequest(), _context(key)) for key in keys)
    )
    assert replies == keys
    assert base._CALL.get() is None


async def test_concurrent_streams_each_see_their_own_metadata_on_every_chunk() -> None:
    echo = Echo()

    async def collect(key: str) -> list[str]:
        stream = echo.StreamChatCompletion(chat_pb2.StreamChatCompletionRequest(), _context(key))
        return [chunk async for chunk in stream]

    keys = [f"Bearer stream-{n}" for n in range(20)]
    results = await asyncio.gather(*(asyncio.create_task(collect(key)) for key in keys))
    assert results == [[key] * 3 for key in keys]


async def test_a_call_nested_in_another_restores_the_outer_calls_state() -> None:
    echo = Echo()
    outer = echo.StreamChatCompletion(chat_pb2.StreamChatCompletionRequest(), _context("Bearer outer"))
    first = await outer.__anext__()
    inner = await echo.CreateChatCompletion(chat_pb2.CreateChatCompletionRequest(), _context("Bearer inner"))
    rest = [chunk async for chunk in outer]
    assert (first, inner, rest) == ("Bearer outer", "Bearer inner", ["Bearer outer"] * 2)
    assert base._CALL.get() is None
