"""A chat reply on its one way through the gateway: the upstream's own OpenAI JSON, or a proto.

An OpenAI-compatible upstream's answer is relayed as it came (the relay lane,
`server/providers/openai_relay.py`); every other adapter's answer is a proto. The gateway reads
usage, charges the cost and stamps model and provider on whichever form it holds, and the edge asks
for the form it writes: OpenAI's JSON bytes (the bridge, and gRPC callers that set `openai_json`)
or the proto (every other gRPC caller). A conversion is paid only when the two differ.

- `ChatAnswer` is a unary completion.
- A stream chunk is `bytes` (a relayed event, patched or not yet), a parsed `dict` (a relayed event
  that carried usage), or a `ChatCompletionChunk`; the `*_chunk` functions below are the gateway's
  `StreamItems` for all three. Once stamped, a relayed chunk is `bytes`, except in a stream replayed
  from the response cache, whose usage chunk is a stamped `dict` (its cost priced at zero).
- `CHAT_ANSWER_FORM` and `CHAT_CHUNK_FORM` write both forms to the response cache and read them
  back: one entry serves JSON and proto callers alike.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import orjson

from server.accounts.metering import Consumption, Demand
from server.errors import UpstreamError
from server.gateway_usage import (
    chunk_is_final,
    chunk_is_final_json,
    completion_consumption,
    completion_consumption_json,
    estimate_text,
    fold_chunk,
    fold_chunk_json,
    strip_usage,
    strip_usage_json,
    usage_chunk,
    usage_chunk_json,
)
from server.providers.openai_relay import EventStamp, relayed_text, stamp_object
from server.routing.route import Route
from siraya.router.codec.chat import decode_chat_completion, encode_chat_completion
from siraya.router.codec.chat_chunk import decode_chat_chunk, encode_chat_chunk
from siraya.router.codec.errors import CodecError
from siraya.router.codec.fields import JsonObject
from siraya.router.v1 import chat_pb2

__all__ = [
    "CHAT_ANSWER_FORM",
    "CHAT_CHUNK_FORM",
    "ChatAnswer",
    "ChatChunk",
    "charge_chunk_usage",
    "charge_usage_json",
    "chunk_as_json",
    "chunk_as_proto",
    "chunk_is_final_any",
    "chunk_stamper",
    "fold_any_chunk",
    "strip_chunk_usage",
    "usage_chunk_like",
]

ChatChunk = bytes | JsonObject | chat_pb2.ChatCompletionChunk


class ChatAnswer:
    """One chat completion: a relayed upstream's JSON object, or an adapter's proto."""

    __slots__ = ("answer", "provider")

    def __init__(self, answer: JsonObject | chat_pb2.ChatCompletion) -> None:
        # What the upstream answered, in the form it came (observability reads its usage too).
        self.answer = answer
        self.provider = ""

    def consumption(self, demand: Demand) -> Consumption:
        answer = self.answer
        if type(answer) is dict:
            return completion_consumption_json(answer, demand)
        return completion_consumption(answer, demand)  # type: ignore[arg-type]

    def stamp(self, model: str, provider: str, cost: float | None) -> None:
        """Mark what served it, and the cost in its usage (the gateway's alone: an upstream's own
        `usage.cost`, its price to us, never reaches the client)."""
        self.provider = provider
        answer = self.answer
        if type(answer) is dict:
            stamp_object(answer, model, provider, keep_usage_null=True)
            usage = answer.get("usage")
            if usage is not None:
                charge_usage_json(usage, cost)
            return
        assert isinstance(answer, chat_pb2.ChatCompletion)
        answer.model = model
        answer.provider = provider
        if cost is not None and answer.HasField("usage"):
            answer.usage.cost = cost

    def as_json(self) -> bytes:
        """The completion as OpenAI's JSON bytes: a relayed one as its upstream wrote it."""
        answer = self.answer
        if type(answer) is dict:
            return orjson.dumps(answer)
        return encode_chat_completion(answer)  # type: ignore[arg-type]

    def as_proto(self) -> chat_pb2.ChatCompletion:
        answer = self.answer
        if type(answer) is not dict:
            return answer  # type: ignore[return-value]
        try:
            completion = decode_chat_completion(answer)
        except CodecError as error:
            raise UpstreamError(
                f"Provider '{self.provider}' returned a completion the gRPC API cannot hold: {error.message}"
            ) from None
        completion.provider = self.provider
        usage = answer.get("usage")
        if usage is not None and "cost" in usage:
            completion.usage.cost = usage["cost"]
        return completion


def charge_usage_json(usage: JsonObject, cost: float | None) -> None:
    """The gateway's cost in a usage kept as JSON; an upstream's own `cost` never stays there."""
    if cost is None:
        usage.pop("cost", None)
    else:
        usage["cost"] = cost


# --- stream chunks: the gateway's StreamItems for chat -----------------------------------------


def fold_any_chunk(chunk: ChatChunk, total: Consumption) -> Any:
    """Fold a chunk into the stream's consumption; the usage it carries, else None.

    A relayed chunk still in bytes carries no usage (the adapter parses every event that does), so
    only its text is counted and kept, for a stream that ends without usage.
    """
    if type(chunk) is bytes:
        text = relayed_text(chunk)
        if text:
            estimate_text(total, text)
        return None
    if type(chunk) is dict:
        return fold_chunk_json(chunk, total)
    return fold_chunk(chunk, total)  # type: ignore[arg-type]


def chunk_is_final_any(chunk: ChatChunk) -> bool:
    if type(chunk) is dict:
        return chunk_is_final_json(chunk)
    return chunk_is_final(chunk)  # type: ignore[arg-type]


def charge_chunk_usage(usage: Any, cost: float | None) -> None:
    if type(usage) is dict:
        charge_usage_json(usage, cost)
    elif cost is not None:
        usage.cost = cost


def strip_chunk_usage(chunk: ChatChunk, shown: bool) -> Any:
    if type(chunk) is dict:
        return strip_usage_json(chunk, shown)
    return strip_usage(chunk, shown)  # type: ignore[arg-type]


def usage_chunk_like(like: ChatChunk, usage: Any) -> ChatChunk:
    if type(like) is dict:
        return usage_chunk_json(like, usage)
    return usage_chunk(like, usage)  # type: ignore[arg-type]


def chunk_stamper(route: Route, show_usage: bool, first: ChatChunk) -> Callable[[Any], ChatChunk]:
    """The stamp for every chunk of one stream, chosen by the form of its first."""
    model, provider = route.entry.id, route.deployment.provider
    if isinstance(first, chat_pb2.ChatCompletionChunk):

        def stamp(chunk: chat_pb2.ChatCompletionChunk) -> chat_pb2.ChatCompletionChunk:
            chunk.model = model
            chunk.provider = provider
            return chunk

        return stamp
    return EventStamp(model, provider, keep_usage_null=show_usage)


# --- the wire form, chosen at the edge ---------------------------------------------------------


def chunk_as_json(chunk: ChatChunk, include_usage_field: bool) -> bytes:
    """A stamped chunk as OpenAI's `data:` JSON. With `include_usage_field` (the client asked for
    usage) a proto's chunks carry `"usage": null` until the usage chunk, as OpenAI's do."""
    if type(chunk) is bytes:
        return chunk
    if type(chunk) is dict:
        return orjson.dumps(chunk)
    return encode_chat_chunk(chunk, include_usage_field)  # type: ignore[arg-type]


def chunk_as_proto(chunk: ChatChunk, provider: str) -> chat_pb2.ChatCompletionChunk:
    """A stamped chunk as the gRPC API's proto (a relayed one is decoded here, once)."""
    if isinstance(chunk, chat_pb2.ChatCompletionChunk):
        return chunk
    event: JsonObject = orjson.loads(chunk) if type(chunk) is bytes else chunk  # type: ignore[assignment]
    try:
        proto = decode_chat_chunk(event)
    except CodecError as error:
        raise UpstreamError(
            f"Provider '{provider}' sent a chunk the gRPC API cannot hold: {error.message}"
        ) from None
    proto.provider = event["provider"]
    usage = event.get("usage")
    if usage is not None and "cost" in usage:
        proto.usage.cost = usage["cost"]
    return proto


# --- the response cache's forms ----------------------------------------------------------------
#
# One tag byte says which form an item was kept in: `j` OpenAI's JSON bytes, `p` the proto.

_JSON_TAG, _PROTO_TAG = b"j", b"p"
# A relayed chunk that carries usage (not null): a replay must read it, to price it at zero.
_CARRIES_USAGE = re.compile(rb'"usage"\s*:\s*\{')


class ChatAnswerForm:
    name = "chat"
    # The semantic tier may serve it: the key is the request's proto alone.
    semantic = True

    def encode(self, answer: ChatAnswer) -> bytes:
        held = answer.answer
        if type(held) is dict:
            return _JSON_TAG + orjson.dumps(held)
        return _PROTO_TAG + held.SerializeToString()  # type: ignore[union-attr]

    def decode(self, data: bytes) -> ChatAnswer:
        if data[:1] == _JSON_TAG:
            return ChatAnswer(orjson.loads(data[1:]))
        return ChatAnswer(chat_pb2.ChatCompletion.FromString(data[1:]))


class ChatChunkForm:
    """Stamped chunks: relayed bytes come back as bytes, or parsed when they carry usage."""

    name = "chat"
    semantic = True

    def encode(self, chunk: ChatChunk) -> bytes:
        if type(chunk) is bytes:
            return _JSON_TAG + chunk
        if type(chunk) is dict:
            return _JSON_TAG + orjson.dumps(chunk)
        return _PROTO_TAG + chunk.SerializeToString()  # type: ignore[union-attr]

    def decode(self, data: bytes) -> ChatChunk:
        if data[:1] == _PROTO_TAG:
            return chat_pb2.ChatCompletionChunk.FromString(data[1:])
        event = data[1:]
        if _CARRIES_USAGE.search(event) is None:
            return event
        parsed: JsonObject = orjson.loads(event)
        return parsed


CHAT_ANSWER_FORM = ChatAnswerForm()
CHAT_CHUNK_FORM = ChatChunkForm()
