"""CompletionsService: OpenAI's legacy completions, unary and server-streaming, for every model.

Not a second pipeline: each prompt is translated into the internal chat request
(`siraya/router/codec/completions_to_chat.py`) and goes through the gateway's own chat path, so keys,
credits, limits, routing, fallbacks, the response cache, metering and the ledger all apply as they
do on /v1/chat/completions. The chat replies are translated back (`completions_from_chat.py`).

Several prompts are several chat requests, run one after another (a batch never holds more than one
of the key's in-flight slots). Each is admitted, settled and written to the ledger on its own: the
first under the call's request id, prompt i under `<request id>-i`. The call's own record (access
line, metrics) adds them up.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import grpc

from server.accounts.keys import KeyRecord
from server.chat_reply import chunk_as_proto
from server.completion_prompts import prompt_texts
from server.gateway import Gateway
from server.providers.base import Outcome, RequestContext
from server.services.base import call_context, streaming_rpc, unary_rpc
from server.services.response_headers import send_response_headers
from siraya.router.codec.bounds import check_completion
from siraya.router.codec.completions_from_chat import CompletionAssembler, CompletionStreamTranslator
from siraya.router.codec.completions_to_chat import check_completion_params, to_chat_params, with_prompt
from siraya.router.codec.validate import check_chat_params
from siraya.router.v1 import chat_pb2, completions_pb2, completions_pb2_grpc

__all__ = ["CompletionsServicer"]


async def _admitted(
    gateway: Gateway,
    params: completions_pb2.CompletionParams,
    context: grpc.aio.ServicerContext,
    streaming: bool,
) -> tuple[KeyRecord, RequestContext, chat_pb2.ChatCompletionParams, list[str]]:
    """(the key, the call's context, the chat request without its message, the prompts)."""
    authorization, ctx = call_context(context)
    key = await gateway.authenticate(authorization, ctx)
    check_completion_params(params)
    check_completion(params)
    prompts = await prompt_texts(params)
    base = to_chat_params(params, streaming)
    check_chat_params(with_prompt(base, prompts[0]))
    return key, ctx, base, prompts


def _prompt_context(ctx: RequestContext, position: int) -> RequestContext:
    """The context prompt `position` runs under: the call's own for the first, a sibling for the rest
    (its own ledger identity and outcome; the caller's deadline, headers and cache directive)."""
    if position == 0:
        return ctx
    request_id = f"{ctx.request_id}-{position}"
    return dataclasses.replace(
        ctx,
        request_id=request_id,
        outcome=Outcome(),
        forward_headers={**ctx.forward_headers, "X-Request-Id": request_id},
        response_headers=None,
        reservation_id=None,
    )


def _fold(total: Outcome, part: Outcome) -> None:
    """Count a sibling prompt's tokens and cost in the call's own outcome."""
    total.prompt_tokens += part.prompt_tokens
    total.completion_tokens += part.completion_tokens
    total.cached_tokens += part.cached_tokens
    total.reasoning_tokens += part.reasoning_tokens
    if part.cost is not None:
        total.cost = part.cost + (total.cost or 0.0)


class CompletionsServicer(completions_pb2_grpc.CompletionsServiceServicer):
    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway

    @unary_rpc
    async def CreateCompletion(
        self, request: completions_pb2.CreateCompletionRequest, context: grpc.aio.ServicerContext
    ) -> completions_pb2.CreateCompletionResponse:
        params = request.params
        key, ctx, base, prompts = await _admitted(self._gateway, params, context, streaming=False)
        answer = CompletionAssembler(_choices_per_prompt(params), params.echo, ctx.request_id)
        for position, prompt in enumerate(prompts):
            prompt_ctx = _prompt_context(ctx, position)
            chat = (await self._gateway.chat(with_prompt(base, prompt), key, prompt_ctx)).as_proto()
            if prompt_ctx is not ctx:
                _fold(ctx.outcome, prompt_ctx.outcome)
            answer.add(position, prompt, chat)
        return completions_pb2.CreateCompletionResponse(completion=answer.completion)

    @streaming_rpc
    async def StreamCompletion(
        self, request: completions_pb2.StreamCompletionRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[completions_pb2.StreamCompletionResponse]:
        params = request.params
        key, ctx, base, prompts = await _admitted(self._gateway, params, context, streaming=True)
        translator = CompletionStreamTranslator(_choices_per_prompt(params), params.echo, ctx.request_id)
        for position, prompt in enumerate(prompts):
            prompt_ctx = _prompt_context(ctx, position)
            async for reply in self._gateway.stream_chat(with_prompt(base, prompt), key, prompt_ctx):
                if not translator.started:
                    await send_response_headers(context, ctx)
                chunk = chunk_as_proto(reply, prompt_ctx.outcome.provider or "")
                translated = translator.feed(position, prompt, chunk)
                if translated is not None:
                    yield completions_pb2.StreamCompletionResponse(chunk=translated)
            if prompt_ctx is not ctx:
                _fold(ctx.outcome, prompt_ctx.outcome)
        usage = translator.usage_chunk()
        if usage is not None:
            yield completions_pb2.StreamCompletionResponse(chunk=usage)


def _choices_per_prompt(params: completions_pb2.CompletionParams) -> int:
    return params.n if params.HasField("n") else 1
