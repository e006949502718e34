"""The gateway's chat endpoints: OpenAI chat completions, and Anthropic Messages, relayed to
Anthropic upstreams and translated through chat to the others. Both take the one chat path."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable

from server.accounts.keys import KeyRecord
from server.accounts.metering import Consumption, Demand
from server.chat_reply import CHAT_ANSWER_FORM, ChatAnswer, ChatChunk, charge_usage_json
from server.gateway_pipeline import Pipeline
from server.gateway_usage import chat_demand
from server.messages_usage import message_consumption, stamp_message
from server.providers import messages_relay
from server.providers.base import RelayChatProvider, RequestContext
from server.response_cache.stage import Form, MessagesForm
from server.routing.route import Route
from server.stream_items import CHAT_CHUNKS, MESSAGE_EVENTS, Result, StreamItems
from siraya.router.codec.bounds import check_chat
from siraya.router.codec.fields import JsonObject
from siraya.router.v1 import chat_pb2


class ChatEndpoints(Pipeline):
    def _chat_unary(
        self,
        params: chat_pb2.ChatCompletionParams,
        key: KeyRecord,
        ctx: RequestContext,
        call: Callable[[Route], Awaitable[Result]],
        consumed: Callable[[Result, Demand], Consumption],
        form: Form[Result] | None,
    ) -> Awaitable[tuple[Result, Route, float | None]]:
        # A plain function handing back `_unary`'s coroutine: no extra frame on the hot path.
        check_chat(params)
        demand = chat_demand(params)
        return self._unary("chat", params.model, params.routing, demand, key, ctx, call, consumed, form)

    def _chat_stream(
        self,
        params: chat_pb2.ChatCompletionParams,
        key: KeyRecord,
        ctx: RequestContext,
        call: Callable[[Route], AsyncIterator[Result]],
        items: StreamItems[Result],
    ) -> AsyncIterator[Result]:
        check_chat(params)
        return self._stream(
            "chat",
            params.model,
            params.routing,
            chat_demand(params),
            key,
            ctx,
            call,
            items,
            params.stream_options.include_usage,
        )

    async def chat(
        self,
        params: chat_pb2.ChatCompletionParams,
        key: KeyRecord,
        ctx: RequestContext,
        openai_body: bytes = b"",
    ) -> ChatAnswer:
        """One chat completion, in whichever form its provider gave it (see `ChatAnswer`).

        `openai_body` is the client's own OpenAI JSON (what `params` was decoded from): an
        OpenAI-compatible upstream receives it as written, with only the gateway's fields changed.
        """
        answer, route, cost = await self._chat_unary(
            params,
            key,
            ctx,
            lambda route: _chat_answer(route, params, openai_body, ctx),
            ChatAnswer.consumption,
            CHAT_ANSWER_FORM,
        )
        answer.stamp(route.entry.id, route.deployment.provider, cost)
        return answer

    def stream_chat(
        self,
        params: chat_pb2.ChatCompletionParams,
        key: KeyRecord,
        ctx: RequestContext,
        openai_body: bytes = b"",
    ) -> AsyncIterator[ChatChunk]:
        """The chunks of one chat stream, stamped: relayed bytes or protos (see `server/chat_reply.py`)."""
        return self._chat_stream(
            params, key, ctx, lambda route: _chat_chunks(route, params, openai_body, ctx), CHAT_CHUNKS
        )

    # Anthropic messages: relayed to Anthropic upstreams, translated through chat to the others

    async def message_json(
        self, params: chat_pb2.ChatCompletionParams, body: JsonObject, key: KeyRecord, ctx: RequestContext
    ) -> JsonObject:
        """A Messages request answered as Anthropic's JSON. `params` is its translation into chat: what
        admission and routing read, and what every attempt on a non-Anthropic upstream sends."""
        answer, route, cost = await self._chat_unary(
            params,
            key,
            ctx,
            lambda route: messages_relay.message_json(
                route.provider, body, params, route.deployment.upstream_model, ctx
            ),
            lambda answer, _demand: message_consumption(answer),
            MessagesForm(body, ctx.forward_headers),
        )
        usage = answer.get("usage")
        if isinstance(usage, dict):
            charge_usage_json(usage, cost)
        stamp_message(answer, route)
        return answer

    def stream_message_json(
        self,
        params: chat_pb2.ChatCompletionParams,
        body: JsonObject,
        key: KeyRecord,
        ctx: RequestContext,
        input_estimate: int,
    ) -> AsyncIterator[JsonObject]:
        """`message_json` as Anthropic's stream events (JSON objects)."""
        return self._chat_stream(
            params,
            key,
            ctx,
            lambda route: messages_relay.message_events_json(
                route.provider, body, params, route.deployment.upstream_model, ctx, input_estimate
            ),
            dataclasses.replace(MESSAGE_EVENTS, form=MessagesForm(body, ctx.forward_headers)),
        )


async def _chat_answer(
    route: Route, params: chat_pb2.ChatCompletionParams, openai_body: bytes, ctx: RequestContext
) -> ChatAnswer:
    """One attempt's completion: relayed from an OpenAI-protocol upstream, else the adapter's proto."""
    provider = route.provider
    upstream_model = route.deployment.upstream_model
    relay = getattr(provider, "relay_chat", None)
    if relay is not None:
        return ChatAnswer(await relay(params, openai_body, upstream_model, ctx))
    return ChatAnswer(await provider.chat(params, upstream_model, ctx))


def _chat_chunks(
    route: Route, params: chat_pb2.ChatCompletionParams, openai_body: bytes, ctx: RequestContext
) -> AsyncIterator[ChatChunk]:
    provider = route.provider
    upstream_model = route.deployment.upstream_model
    if getattr(provider, "relay_stream_chat", None) is not None:
        relay: RelayChatProvider = provider  # type: ignore[assignment]
        return relay.relay_stream_chat(params, openai_body, upstream_model, ctx)
    return provider.stream_chat(params, upstream_model, ctx)
