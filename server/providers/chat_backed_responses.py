"""Serve the Responses API on any provider through its chat completions, whole or streamed."""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator
from typing import Protocol

from server.errors import GatewayError, InvalidRequest
from server.providers.base import RequestContext
from server.providers.responses_via_chat import (
    ChatStreamToResponseEvents,
    chat_completion_to_response,
    response_params_to_chat,
    responses_param,
)
from siraya.router.v1 import chat_pb2, responses_pb2


class ChatSpeaker(Protocol):
    """The part of a provider that serving Responses through chat needs."""

    async def chat(
        self, params: chat_pb2.ChatCompletionParams, upstream_model: str, ctx: RequestContext
    ) -> chat_pb2.ChatCompletion: ...

    def stream_chat(
        self, params: chat_pb2.ChatCompletionParams, upstream_model: str, ctx: RequestContext
    ) -> AsyncIterator[chat_pb2.ChatCompletionChunk]: ...


def new_response_id() -> str:
    return "resp_" + secrets.token_hex(24)


def _in_responses_terms(error: InvalidRequest, params: responses_pb2.ResponseParams) -> InvalidRequest:
    """The provider named a chat part ("messages[1].content[0].image_url"); name the Responses one."""
    param = responses_param(params, error.param)
    if param == error.param or error.param is None or param is None:
        return error
    renamed = InvalidRequest(error.message.replace(error.param, param), param=param, code=error.code)
    renamed.upstream_status = error.upstream_status
    return renamed


async def respond_via_chat(
    provider: ChatSpeaker, params: responses_pb2.ResponseParams, upstream_model: str, ctx: RequestContext
) -> responses_pb2.Response:
    try:
        completion = await provider.chat(response_params_to_chat(params), upstream_model, ctx)
    except InvalidRequest as error:
        raise _in_responses_terms(error, params) from None
    return chat_completion_to_response(completion, params, new_response_id())


async def stream_response_via_chat(
    provider: ChatSpeaker, params: responses_pb2.ResponseParams, upstream_model: str, ctx: RequestContext
) -> AsyncIterator[responses_pb2.ResponseStreamEvent]:
    """Responses events translated from a chat stream.

    Nothing is yielded until the first chat chunk is in, so a failure before it still reaches the
    router (which may fail over) and the client as an ordinary error with a real status. A failure
    after it ends the events with `response.failed` before the error itself goes on.
    """
    chat_params = response_params_to_chat(params)
    chat_params.stream_options.include_usage = True
    chunks = provider.stream_chat(chat_params, upstream_model, ctx)
    try:
        try:
            first = await anext(chunks, None)
        except InvalidRequest as error:
            raise _in_responses_terms(error, params) from None
        translator = ChatStreamToResponseEvents(params, new_response_id(), int(time.time()))
        for event in translator.start():
            yield event
        try:
            if first is not None:
                for event in translator.feed(first):
                    yield event
                async for chunk in chunks:
                    for event in translator.feed(chunk):
                        yield event
        except GatewayError as error:
            for event in translator.fail(error):
                yield event
            raise
    finally:
        # A consumer that stops early must not leave the upstream request open until GC.
        close = getattr(chunks, "aclose", None)
        if close is not None:
            await close()
    for event in translator.finish():
        yield event
