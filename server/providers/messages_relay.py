"""How a provider answers an Anthropic Messages request: relayed, or translated through chat.

A provider that speaks Anthropic's protocol itself (`MessagesRelay`: the Anthropic adapter) gets the
client's body as written, with only `model` set to the upstream's model, and its reply and events
come back as it sent them, parsed only to be metered and stamped. So `cache_control`, thinking
signatures, redacted thinking, server tools, beta fields and fields the gateway has never heard of
all reach Anthropic and come back intact. Any other provider answers the translated chat request
(siraya/router/codec/messages_to_chat.py), and its reply or chunks are translated back. One
request's attempts may take either road: a fallback from Claude to another provider is translated.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol, cast

from server.errors import UpstreamError
from server.messages_usage import EstimatedUsage
from server.providers.base import Provider, RequestContext
from siraya.router.codec.fields import JsonObject
from siraya.router.codec.messages import message_dict, stream_event_dict
from siraya.router.codec.messages_from_chat import (
    MessageStreamTranslator,
    UntranslatableReply,
    message_from_chat,
)
from siraya.router.v1 import chat_pb2

__all__ = ["MessagesRelay", "message_events_json", "message_json"]


class MessagesRelay(Protocol):
    """A provider whose upstream speaks Anthropic's Messages API."""

    async def relay_message(self, body: JsonObject, ctx: RequestContext) -> JsonObject: ...

    def relay_message_stream(self, body: JsonObject, ctx: RequestContext) -> AsyncIterator[JsonObject]: ...


def _untranslatable(provider: Provider, error: UntranslatableReply) -> UpstreamError:
    return UpstreamError(
        f"Provider '{provider.name}' returned a reply that cannot be sent as a Message: {error}."
    )


async def message_json(
    provider: Provider,
    body: JsonObject,
    params: chat_pb2.ChatCompletionParams,
    upstream_model: str,
    ctx: RequestContext,
) -> JsonObject:
    """The Message JSON object for one attempt: `body` relayed, or `params` translated."""
    if getattr(provider, "relay_message", None) is not None:
        return await cast(MessagesRelay, provider).relay_message({**body, "model": upstream_model}, ctx)
    completion = await provider.chat(params, upstream_model, ctx)
    try:
        return message_dict(message_from_chat(completion))
    except UntranslatableReply as error:
        raise _untranslatable(provider, error) from None


def message_events_json(
    provider: Provider,
    body: JsonObject,
    params: chat_pb2.ChatCompletionParams,
    upstream_model: str,
    ctx: RequestContext,
    input_estimate: int,
) -> AsyncIterator[JsonObject]:
    """The stream events (JSON objects) for one attempt: relayed, or translated from chat chunks.

    A translated stream needs the upstream's usage chunk: `params` must ask for it.
    """
    if getattr(provider, "relay_message_stream", None) is not None:
        relay = cast(MessagesRelay, provider)
        return relay.relay_message_stream({**body, "model": upstream_model, "stream": True}, ctx)
    return _translated(provider.stream_chat(params, upstream_model, ctx), input_estimate)


async def _translated(
    chunks: AsyncIterator[chat_pb2.ChatCompletionChunk], input_estimate: int
) -> AsyncIterator[JsonObject]:
    translator = MessageStreamTranslator(input_estimate)
    async for chunk in chunks:
        for event in translator.feed(chunk):
            event_dict = stream_event_dict(event)
            if event_dict.get("type") == "message_start":
                # Its input_tokens is the estimate, not an upstream's count: metering counts a cut
                # stream's prompt itself (server/messages_usage.py).
                message = event_dict["message"]
                message["usage"] = EstimatedUsage(message.get("usage") or {})
            yield event_dict
    for event in translator.finish():
        yield stream_event_dict(event)
