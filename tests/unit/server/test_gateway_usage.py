"""A stream whose usage never comes (cut by its upstream, cancelled by its client, a hedge that lost)
has its answer counted with the real tokenizer at settlement (server/gateway_usage.py), whatever form
its items took: the per-item estimate of four bytes a token is only the running count."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from server import tokens
from server.accounts.metering import Consumption
from server.attempt_spend import spend_stream
from server.chat_reply import fold_any_chunk
from server.gateway_usage import chat_demand, count_prompt, fold_chunk, fold_chunk_json, fold_response_event
from server.messages_usage import EstimatedUsage, fold_message_event
from siraya.router.codec.chat import decode_chat_chunk
from siraya.router.codec.chat_request import decode_chat_request
from siraya.router.v1 import responses_pb2

DEMAND = chat_demand(
    decode_chat_request({"model": "m", "messages": [{"role": "user", "content": "Count what I was sent."}]})
)
# Text whose tokens are far from a quarter of its length: CJK, digits, long words, escapes.
PIECES = [
    "国际化的",
    "人工智能网关",
    " 31415926535897932384",
    " antidisestablishmentarianism",
    ' "quoted"\n',
    " 数字 1234567890 和 汉字",
]
TEXT = "".join(PIECES)


def _tokens(text: str) -> int:
    return len(tokens.encoding("cl100k_base").encode_ordinary(text))


def _prompt() -> int:
    counted = Consumption()
    count_prompt(counted, DEMAND)
    return counted.prompt_tokens


def _chunk(text: str, usage: dict[str, int] | None = None) -> dict[str, Any]:
    chunk: dict[str, Any] = {
        "id": "c1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}],
    }
    if usage is not None:
        chunk["usage"] = usage
    return chunk


def _message_delta(text: str) -> dict[str, Any]:
    return {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}}


Fold = Callable[[Any, Consumption], Any]
# Each form a stream's items take, with its fold: the same text in every one.
FORMS: dict[str, tuple[Fold, Callable[[str], Any]]] = {
    "proto": (fold_chunk, lambda text: decode_chat_chunk(_chunk(text))),
    "json": (fold_chunk_json, _chunk),
    "relayed": (fold_any_chunk, lambda text: orjson.dumps(_chunk(text))),
    "relayed-ascii": (fold_any_chunk, lambda text: json.dumps(_chunk(text)).encode()),  # \uXXXX escapes
    "responses": (
        fold_response_event,
        lambda text: responses_pb2.ResponseStreamEvent(type="response.output_text.delta", delta=text),
    ),
    "messages": (fold_message_event, _message_delta),
}


def test_the_text_is_one_the_estimate_gets_wrong() -> None:
    estimate = sum(-(-len(piece) // 4) for piece in PIECES)
    assert abs(_tokens(TEXT) - estimate) > 10


@pytest.mark.parametrize("form", FORMS)
def test_a_stream_cut_before_its_usage_counts_its_answer_with_the_tokenizer(form: str) -> None:
    fold, item = FORMS[form]
    total = Consumption()
    for piece in PIECES:
        assert fold(item(piece), total) is None
    spend_stream(None, object(), total, False, fold, DEMAND)
    assert total.completion_tokens == _tokens(TEXT)
    assert (total.prompt_tokens, total.counted) == (_prompt(), True)
    spend_stream(None, object(), total, False, fold, DEMAND)
    assert total.completion_tokens == _tokens(TEXT), "settling twice counts once"


def test_text_after_running_usage_counts_on_top_of_it() -> None:
    # Anthropic's and Gemini's prompt count come on the first chunk, text and all.
    first = decode_chat_chunk(_chunk(PIECES[0], {"prompt_tokens": 7, "completion_tokens": 2}))
    total = Consumption()
    assert fold_chunk(first, total) is not None
    for piece in PIECES[1:]:
        fold_chunk(decode_chat_chunk(_chunk(piece)), total)
    spend_stream(None, object(), total, True, fold_chunk, DEMAND)
    assert (total.prompt_tokens, total.completion_tokens) == (7, 2 + _tokens(TEXT))
    assert total.counted, "some of the tokens are the gateway's count"


def test_running_usage_covers_the_text_before_it() -> None:
    total = Consumption()
    fold_chunk_json(_chunk(PIECES[0]), total)
    fold_chunk_json(_chunk(PIECES[1], {"prompt_tokens": 7, "completion_tokens": 5}), total)
    fold_chunk_json(_chunk(PIECES[2]), total)
    spend_stream(None, object(), total, True, fold_chunk_json, DEMAND)
    assert total.completion_tokens == 5 + _tokens(PIECES[1] + PIECES[2])


def test_a_stream_whose_usage_came_keeps_no_text_and_its_count() -> None:
    total = Consumption()
    for piece in PIECES:
        fold_any_chunk(orjson.dumps(_chunk(piece)), total)
    usage = {"prompt_tokens": 9, "completion_tokens": 30}
    fold_chunk_json({**_chunk(""), "choices": [], "usage": usage}, total)
    assert total.stream_text is None, "the usage covers the text: it is not kept"
    spend_stream(None, object(), total, True, fold_chunk_json, DEMAND)
    assert (total.prompt_tokens, total.completion_tokens, total.counted) == (9, 30, False)


def test_a_messages_stream_cut_counts_its_deltas_on_top_of_message_start() -> None:
    total = Consumption()
    start = {"type": "message_start", "message": {"usage": {"input_tokens": 40, "output_tokens": 1}}}
    fold_message_event(start, total)
    for piece in PIECES:
        fold_message_event(_message_delta(piece), total)
    spend_stream(None, object(), total, False, fold_message_event, DEMAND)
    assert total.completion_tokens == 1 + _tokens(TEXT)
    final = {"type": "message_delta", "usage": {"output_tokens": 20}}
    total = Consumption()
    for piece in PIECES:
        fold_message_event(_message_delta(piece), total)
    fold_message_event(final, total)
    assert (total.completion_tokens, total.stream_text) == (20, None)


def test_a_relayed_messages_stream_cut_keeps_the_upstreams_own_prompt_count() -> None:
    # Anthropic's message_start says what the prompt was: the gateway's count must not replace it.
    total = Consumption()
    start = {"type": "message_start", "message": {"usage": {"input_tokens": 1234, "output_tokens": 1}}}
    fold_message_event(start, total)
    fold_message_event(_message_delta(TEXT), total)
    spend_stream(None, object(), total, False, fold_message_event, DEMAND)
    assert (total.prompt_tokens, total.counted) == (1234, True)


def test_a_translated_messages_stream_cut_counts_the_prompt_its_message_start_only_estimated() -> None:
    total = Consumption()
    usage = EstimatedUsage({"input_tokens": 1234, "output_tokens": 1})
    fold_message_event({"type": "message_start", "message": {"usage": usage}}, total)
    assert orjson.loads(orjson.dumps(usage)) == {"input_tokens": 1234, "output_tokens": 1}
    spend_stream(None, object(), total, False, fold_message_event, DEMAND)
    assert (total.prompt_tokens, total.counted) == (_prompt(), True)


def test_a_hedge_that_streamed_then_lost_counts_its_first_item_with_the_tokenizer() -> None:
    route = object()
    loser_chunk = _chunk(TEXT)
    rows: list[list[Any]] = [
        ["p", "m", "u", 0.0, 0.1, "cancelled", None, loser_chunk, object()],
        ["p", "m", "u", 0.0, 0.1, None, None, _chunk("x"), route],
    ]
    total = Consumption(prompt_tokens=12, completion_tokens=40)
    spend_stream(rows, route, total, True, fold_chunk_json, DEMAND)
    loser = rows[0][7]
    assert (loser.prompt_tokens, loser.completion_tokens, loser.counted) == (_prompt(), _tokens(TEXT), True)
    assert loser.stream_text is None


def test_a_long_stream_keeps_its_text_in_a_few_objects() -> None:
    total = Consumption()
    words = [f" word{i} 数{i}" for i in range(1000)]
    for position, word in enumerate(words):
        # Relayed chunks stay bytes; one now and then was parsed (a replay from the cache).
        fold_any_chunk(_chunk(word) if position % 10 == 0 else orjson.dumps(_chunk(word)), total)
    kept = total.stream_text
    assert kept is not None and len(kept.pieces) + len(kept.blocks) < 100
    spend_stream(None, object(), total, False, fold_any_chunk, DEMAND)
    assert total.completion_tokens == _tokens("".join(words))
