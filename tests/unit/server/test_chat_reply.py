"""A chat reply's two forms (server/chat_reply.py): through the response cache and out at the edge.

One cache entry serves JSON and proto callers alike, so an entry written from either form must come
back in a form both edges can write, and a replayed stream's usage must be priced at zero (a hit
costs nothing) whichever form its chunks were kept in.
"""

from __future__ import annotations

import orjson

from server.accounts.metering import Consumption
from server.chat_reply import (
    CHAT_ANSWER_FORM,
    CHAT_CHUNK_FORM,
    ChatAnswer,
    chunk_as_json,
    chunk_as_proto,
    fold_any_chunk,
)
from server.providers.base import RequestContext
from server.response_cache.stage import replay
from siraya.router.codec.chat import decode_chat_chunk
from siraya.router.v1 import chat_pb2

USAGE = {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12, "cost": 0.25}
# Stamped relayed chunks as the gateway sends them: a text delta (bytes, never parsed) and the usage
# chunk, with a vendor's key in each.
TEXT_CHUNK = (
    b'{"id":"c1","object":"chat.completion.chunk","created":1,"model":"public","choices":[{"index":0,'
    b'"delta":{"content":"hi"},"finish_reason":null}],"x_vendor":[1,2],"provider":"fake"}'
)
USAGE_CHUNK = orjson.dumps(
    {
        "id": "c1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "public",
        "choices": [],
        "usage": USAGE,
        "x_vendor": [1, 2],
        "provider": "fake",
    }
)
COMPLETION = {
    "id": "c1",
    "object": "chat.completion",
    "created": 1,
    "model": "upstream-model",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi", "x_sig": "s"}}],
    "usage": USAGE,
    "x_vendor": True,
}


CTX = RequestContext(request_id="req-test")


def test_a_relayed_answer_comes_back_from_the_cache_as_its_json() -> None:
    kept = CHAT_ANSWER_FORM.encode(ChatAnswer(orjson.loads(orjson.dumps(COMPLETION))))
    answer = CHAT_ANSWER_FORM.decode(kept)
    assert answer.answer == COMPLETION
    answer.stamp("public", "fake", 0.0)
    sent = orjson.loads(answer.as_json())
    assert sent["usage"]["cost"] == 0.0 and sent["x_vendor"] is True and sent["provider"] == "fake"
    as_proto = answer.as_proto()
    assert as_proto.model == "public" and as_proto.provider == "fake" and as_proto.usage.cost == 0.0


def test_a_proto_answer_comes_back_from_the_cache_as_the_proto() -> None:
    completion = chat_pb2.ChatCompletion(id="c2", model="claude")
    completion.choices.add().message.content = "hi"
    answer = CHAT_ANSWER_FORM.decode(CHAT_ANSWER_FORM.encode(ChatAnswer(completion)))
    assert answer.answer == completion
    answer.stamp("public", "anthropic", 0.0)
    assert orjson.loads(answer.as_json())["provider"] == "anthropic"


def test_a_replayed_relayed_stream_keeps_its_bytes_and_prices_its_usage_at_zero() -> None:
    kept = [CHAT_CHUNK_FORM.encode(chunk) for chunk in (TEXT_CHUNK, USAGE_CHUNK)]
    chunks = list(replay([CHAT_CHUNK_FORM.decode(blob) for blob in kept], fold_any_chunk, CTX))
    # The text delta goes out as the bytes it was sent as; the usage chunk is read, to be repriced.
    assert chunks[0] == TEXT_CHUNK
    usage_chunk = orjson.loads(chunk_as_json(chunks[1], True))
    assert usage_chunk["usage"] == {**USAGE, "cost": 0.0} and usage_chunk["x_vendor"] == [1, 2]
    # A gRPC caller served the same entry gets protos.
    protos = [chunk_as_proto(chunk, "fake") for chunk in chunks]
    assert protos[0] == _stamped_proto(TEXT_CHUNK)
    assert protos[1].usage.cost == 0.0 and protos[1].usage.prompt_tokens == 9
    assert {proto.provider for proto in protos} == {"fake"}


def test_a_replayed_proto_stream_is_priced_at_zero_and_written_as_openai_json() -> None:
    chunk = chat_pb2.ChatCompletionChunk(id="c3", model="public", provider="anthropic")
    chunk.usage.prompt_tokens = 4
    chunk.usage.cost = 0.5
    (replayed,) = replay([CHAT_CHUNK_FORM.decode(CHAT_CHUNK_FORM.encode(chunk))], fold_any_chunk, CTX)
    assert isinstance(replayed, chat_pb2.ChatCompletionChunk) and replayed.usage.cost == 0.0
    assert orjson.loads(chunk_as_json(replayed, True))["usage"]["cost"] == 0.0


def test_text_of_a_relayed_chunk_counts_towards_the_estimate() -> None:
    total = Consumption()
    assert fold_any_chunk(TEXT_CHUNK, total) is None
    assert total.completion_tokens == 1


def _stamped_proto(data: bytes) -> chat_pb2.ChatCompletionChunk:
    proto = decode_chat_chunk(orjson.loads(data))
    proto.provider = "fake"
    return proto
