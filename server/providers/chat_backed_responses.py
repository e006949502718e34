"""Serve the Responses API on any provider through its chat completions, whole or streamed."""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator

from server.providers.base import Provider, RequestContext
from server.providers.responses_via_chat import (
    ChatStreamToResponseEvents,
    chat_completion_to_response,
    response_params_to_chat,
)
from siraya.router.v1 import responses_pb2


def new_response_id() -> str:
    return "resp_" + secrets.token_hex(24)


async def respond_via_chat(
    provider: Provider, params: responses_pb2.ResponseParams, upstream_model: str, ctx: RequestContext
) -> responses_pb2.Response:
    completion = await provider.chat(response_params_to_chat(params), upstream_model, ctx)
    return chat_completion_to_response(completion, params, new_response_id())


async def stream_response_via_chat(
    provider: Provider, params: responses_pb2.ResponseParams, upstream_model: str, ctx: RequestContext
) -> AsyncIterator[responses_pb2.ResponseStreamEvent]:
    chat_params = response_params_to_chat(params)
    chat_params.stream_options.include_usage = True
    translator = ChatStreamToResponseEvents(params, new_response_id(), int(time.time()))
    for event in translator.start():
        yield event
    async for chunk in provider.stream_chat(chat_params, upstream_model, ctx):
        for event in translator.feed(chunk):
            yield event
    for event in translator.finish():
        yield event
