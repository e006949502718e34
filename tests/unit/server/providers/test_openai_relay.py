"""The relay lane's pure edits (server/providers/openai_relay.py) on recorded and random bodies.

The byte patch of a stream event must write exactly what parsing the event, stamping the object and
serializing it writes, for every JSON object; where it cannot be sure, it must take that way itself.
"""

from __future__ import annotations

import copy
import json
import random
from typing import Any

import orjson
import pytest

from server.accounts.metering import Consumption
from server.errors import UpstreamError
from server.gateway_usage import (
    answer_texts,
    chunk_is_final,
    chunk_is_final_json,
    fold_chunk,
    fold_chunk_json,
)
from server.providers.openai_relay import (
    EventStamp,
    chunk_problem,
    completion_problem,
    relay_event,
    relay_request,
    relayed_text,
    without_cache_control,
)
from siraya.router.codec.chat import decode_chat_chunk

# Chunks shaped as api.openai.com writes them (key order, `usage: null` once usage is asked for,
# `obfuscation` last): the shapes the byte patch is written for.
OPENAI_STREAM = [
    b'{"id":"chatcmpl-C1","object":"chat.completion.chunk","created":1765000000,"model":"gpt-4o-mini-2024-07-18",'
    b'"service_tier":"default","system_fingerprint":"fp_51db84afab","choices":[{"index":0,"delta":{"role":'
    b'"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],"usage":null,'
    b'"obfuscation":"ZtL1"}',
    b'{"id":"chatcmpl-C1","object":"chat.completion.chunk","created":1765000000,"model":"gpt-4o-mini-2024-07-18",'
    b'"service_tier":"default","system_fingerprint":"fp_51db84afab","choices":[{"index":0,"delta":{"content":'
    b'"Hello \\"world\\" {x}"},"logprobs":null,"finish_reason":null}],"usage":null,"obfuscation":"k"}',
    b'{"id":"chatcmpl-C1","object":"chat.completion.chunk","created":1765000000,"model":"gpt-4o-mini-2024-07-18",'
    b'"service_tier":"default","system_fingerprint":"fp_51db84afab","choices":[{"index":0,"delta":{},'
    b'"logprobs":null,"finish_reason":"stop"}],"usage":null,"obfuscation":"Qx"}',
]
USAGE_CHUNK = (
    b'{"id":"chatcmpl-C1","object":"chat.completion.chunk","created":1765000000,"model":"gpt-4o-mini-2024-07-18",'
    b'"service_tier":"default","system_fingerprint":"fp_51db84afab","choices":[],"usage":{"prompt_tokens":9,'
    b'"completion_tokens":3,"total_tokens":12,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},'
    b'"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,'
    b'"rejected_prediction_tokens":0}},"obfuscation":"a"}'
)


def relay_ready(data: bytes) -> bool:
    """Whether `relay_event` passes the bytes on unparsed."""
    return relay_event(lambda event, data: {}, None, data) is data


def _by_parsing(stamp: EventStamp, data: bytes) -> bytes:
    return stamp.stamped(orjson.loads(data))


@pytest.mark.parametrize("keep_usage_null", [False, True], ids=["plain", "include_usage"])
def test_a_recorded_openai_stream_is_patched_as_bytes(
    keep_usage_null: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    stamp = EventStamp("gpt-test", "fake", keep_usage_null)
    expected = [_by_parsing(stamp, data) for data in OPENAI_STREAM]
    monkeypatch.setattr(EventStamp, "parse", None)  # the patch alone, or this test fails
    for data, by_parsing in zip(OPENAI_STREAM, expected, strict=True):
        patched = stamp(data)
        assert patched == by_parsing
        event = orjson.loads(patched)
        assert event["model"] == "gpt-test" and list(event)[-1] == "provider" and event["provider"] == "fake"
        assert ("usage" in event) is keep_usage_null
        # Everything else, byte for byte: the obfuscation padding, the refusal, the escapes.
        upstream = orjson.loads(data)
        for key in ("usage", "model", "provider"):
            upstream.pop(key, None)
            event.pop(key, None)
        assert event == upstream
    assert b'"content":"Hello \\"world\\" {x}"' in stamp(OPENAI_STREAM[1])


# A vLLM-shaped stream (no obfuscation): after the first event, each is patched by its known head.
HEADED_STREAM = [
    b'{"id":"chatcmpl-v","object":"chat.completion.chunk","created":1,"model":"llama","choices":[{"index":0,'
    b'"delta":{"content":"' + word + b'"},"logprobs":null,"finish_reason":null}],"usage":null}'
    for word in (b"", b"Hi", b" there", b' \\"quoted\\"', b"!")
]


@pytest.mark.parametrize("keep_usage_null", [False, True], ids=["plain", "include_usage"])
def test_events_that_share_a_head_are_patched_without_a_search(
    keep_usage_null: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    stamp = EventStamp("public", "fake", keep_usage_null)
    expected = [_by_parsing(stamp, data) for data in HEADED_STREAM]
    searched = 0
    learn_head = EventStamp._learn_head

    def counted(self: EventStamp, data: bytes) -> bool:
        nonlocal searched
        searched += 1
        return learn_head(self, data)

    monkeypatch.setattr(EventStamp, "_learn_head", counted)
    assert [stamp(data) for data in HEADED_STREAM] == expected
    assert searched == 1
    # Another head (a new id) is searched for once more, then known again.
    other = [data.replace(b"chatcmpl-v", b"chatcmpl-w") for data in HEADED_STREAM[:2]]
    assert [stamp(data) for data in other] == [_by_parsing(stamp, data) for data in other]
    assert searched == 2


def test_the_upstreams_own_provider_is_replaced_where_it_stands() -> None:
    data = b'{"id":"x","created":1,"model":"m","provider":"OpenAI","choices":[]}'
    assert not relay_ready(data)
    stamped = EventStamp("public", "fake", False)(orjson.loads(data))
    assert stamped == b'{"id":"x","created":1,"model":"public","provider":"fake","choices":[]}'


def test_only_the_events_own_usage_null_is_taken_out() -> None:
    data = b'{"id":"x","model":"m","choices":[],"x_vendor":{"usage":null,"model":"inner"},"usage":null}'
    event = orjson.loads(EventStamp("public", "fake", False)(data))
    assert event == {
        "id": "x",
        "model": "public",
        "choices": [],
        "x_vendor": {"usage": None, "model": "inner"},
        "provider": "fake",
    }


def test_a_model_written_after_a_nested_object_is_still_the_events_own() -> None:
    data = b'{"choices":[{"delta":{"model":"not this one"}}],"id":"x","model":"m","usage":null}'
    event = orjson.loads(EventStamp("public", "fake", False)(data))
    assert event == {
        "choices": [{"delta": {"model": "not this one"}}],
        "id": "x",
        "model": "public",
        "provider": "fake",
    }


@pytest.mark.parametrize("data", [b"{not json}", b"[1,2]", b'"text"', b"{"])
def test_an_event_that_is_not_an_object_is_refused(data: bytes) -> None:
    with pytest.raises(UpstreamError, match="malformed stream event"):
        EventStamp("public", "fake", False)(data)


_STRINGS = [
    "",
    "a",
    "model",
    '"model":"x"',
    "usage",
    '"usage":null',
    ',"usage":null}',
    "{[",
    "back\\slash",
    "é",
    "}",
]
_VALUES: list[Any] = [None, 0, 1.5, True, [], {}, "s", {"usage": None}, {"model": "n"}, [{"provider": "p"}]]
_KEYS = [
    "id",
    "object",
    "created",
    "model",
    "choices",
    "usage",
    "provider",
    "obfuscation",
    "x_vendor",
    "service_tier",
]


def _random_event(rng: random.Random) -> dict[str, Any]:
    keys = rng.sample(_KEYS, rng.randint(1, 4))
    event: dict[str, Any] = {}
    if rng.random() < 0.5:  # OpenAI's head first, as most upstreams write it
        event.update(id="chatcmpl-1", object="chat.completion.chunk", created=1, model=rng.choice(_STRINGS))
    for key in keys:
        pick = rng.random()
        if pick < 0.4:
            event[key] = rng.choice(_STRINGS)
        elif pick < 0.8:
            event[key] = copy.deepcopy(rng.choice(_VALUES))
        else:
            event[key] = {"content": rng.choice(_STRINGS), "usage": None}
    return event


def test_random_events_patch_exactly_as_they_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever keys, order, nesting, escapes and spacing an event has, the patch and the parse agree."""
    parsed = 0
    parse = EventStamp.parse

    def counted(self: EventStamp, data: bytes) -> dict[str, Any]:
        nonlocal parsed
        parsed += 1
        return parse(self, data)

    monkeypatch.setattr(EventStamp, "parse", counted)
    rng = random.Random(20261206)
    stamps = [EventStamp("public", "fake", keep) for keep in (False, True)]
    events = 0
    for _ in range(4000):
        event = _random_event(rng)
        data = json.dumps(event).encode() if rng.random() < 0.2 else orjson.dumps(event)
        if not relay_ready(data):
            continue  # parsed by the adapter, never patched
        for stamp in stamps:
            events += 1
            assert stamp(data) == stamp.stamped(orjson.loads(data)), data
    # Both ways ran: the patch where it could be sure, the parse where it could not (these shapes are
    # adversarial on purpose; the recorded OpenAI stream above never needs the parse).
    assert 0.05 * events < parsed < 0.95 * events


def test_an_event_needs_parsing_only_for_usage_or_an_error() -> None:
    assert all(relay_ready(data) for data in OPENAI_STREAM)
    assert not relay_ready(USAGE_CHUNK)
    assert relay_ready(b'{"choices":[],"usage": null}')
    assert not relay_ready(b'{"choices":[],"usage" : {"prompt_tokens":1}}')
    assert not relay_ready(b'{"error":{"message":"overloaded"}}')
    assert not relay_ready(b"not json")
    # Quotes inside a string are escaped: a delta that talks about usage is still plain.
    assert relay_ready(b'{"model":"m","choices":[{"delta":{"content":"the \\"usage\\" key"}}],"usage":null}')


def test_the_clients_body_goes_upstream_with_only_the_gateways_fields_changed() -> None:
    body = {
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "hi", "cache_control": {"t": 1}}]}
        ],
        "model": "public",
        "x_vendor_knob": {"a": [1, 2]},
        "provider": {"order": ["fake"]},
        "stream_options": {"include_usage": False, "include_obfuscation": False},
        "extra_body": {"top_k": 5, "models": ["other"], "model": "sneaky", "stream_options": {"x": 1}},
    }
    original = copy.deepcopy(body)
    streamed = orjson.loads(relay_request(body, "upstream-name", stream=True))
    assert body == original  # the client's objects are not touched
    assert list(streamed) == ["messages", "model", "x_vendor_knob", "stream_options", "top_k", "stream"]
    assert streamed["model"] == "upstream-name" and streamed["messages"] == body["messages"]
    # extra_body may set a stream's options, but the usage the gateway meters with is always asked for.
    assert streamed["stream_options"] == {"x": 1, "include_usage": True}
    unary = orjson.loads(relay_request(body, "upstream-name", stream=False))
    assert "stream_options" not in unary and unary["stream"] is False and unary["model"] == "upstream-name"


def test_cache_control_never_reaches_an_openai_compatible_upstream() -> None:
    """Anthropic's breakpoints (on the request, a message, a content part, a tool) are taken out;
    every other key keeps its value and place, and the objects that held none are the client's own."""
    mark = {"type": "ephemeral"}
    plain_message = {"role": "user", "content": "no breakpoint", "x_vendor": 1}
    tool_without = {"type": "function", "function": {"name": "b"}}
    body = {
        "model": "public",
        "cache_control": mark,
        "messages": [
            {"role": "system", "content": "s", "cache_control": mark, "name": "n"},
            {"role": "user", "content": [{"type": "text", "text": "a", "cache_control": mark, "x": 1}]},
            plain_message,
        ],
        "tools": [{"type": "function", "function": {"name": "a"}, "cache_control": mark}, tool_without],
        "x_vendor_knob": True,
    }
    original = copy.deepcopy(body)
    out = without_cache_control(body)
    assert body == original
    assert b"cache_control" not in orjson.dumps(out)
    assert list(out) == ["model", "messages", "tools", "x_vendor_knob"]
    assert out["messages"][0] == {"role": "system", "content": "s", "name": "n"}
    assert out["messages"][1]["content"] == [{"type": "text", "text": "a", "x": 1}]
    assert out["messages"][2] is plain_message and out["tools"][1] is tool_without


def test_relayed_text_is_counted_as_written() -> None:
    chunks = {
        b'{"choices":[{"delta":{"content":"Hello there"}}]}': 11,
        b'{"choices":[{"delta":{"reasoning_content":"thinking"}}]}': 8,
        # A call's name comes once, in its first delta; its arguments are the text that streams.
        b'{"choices":[{"delta":{"tool_calls":[{"function":{"name":"f","arguments":"{\\"a\\":"}}]}}]}': 7,
        b'{"choices":[{"delta":{"tool_calls":[{"custom":{"name":"g","input":"raw"}}]}}]}': 4,
        b'{"choices":[{"delta":{"role":"assistant","content":""}}],"usage":null}': 0,
        b'{"choices":[{"delta": {"content" : "spaced"}}]}': 6,
    }
    assert {data: len(relayed_text(data)) for data in chunks} == chunks
    # The text itself is kept, to count with the tokenizer should the stream's usage never come.
    first, _, third, fourth, *_ = chunks
    assert (relayed_text(first), relayed_text(third), relayed_text(fourth)) == (
        b"Hello there",
        b'{\\"a\\":',
        b"graw",
    )
    # Escapes count as written; the parsed count is of characters: never more.
    for data in chunks:
        assert len("".join(answer_texts(orjson.loads(data)["choices"], "delta"))) <= chunks[data]


CHUNKS: list[Any] = [orjson.loads(data) for data in (*OPENAI_STREAM, USAGE_CHUNK)] + [
    {"choices": [{"index": 0, "delta": {"reasoning": "a", "content": "b"}}]},
    {
        "choices": [
            {
                "index": 0,
                "delta": {"tool_calls": [{"index": 0, "function": {"name": "f", "arguments": "{}"}}]},
            }
        ]
    },
    {"choices": [{"index": 0, "delta": {"function_call": {"name": "f", "arguments": "{}"}}}]},
    {
        "choices": [{"index": 0, "delta": {"content": "x"}}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 1},
    },
]


@pytest.mark.parametrize("body", CHUNKS)
def test_usage_and_text_are_read_the_same_from_the_json_object_and_the_proto(body: Any) -> None:
    chunk = decode_chat_chunk(body)
    from_proto, from_json = Consumption(), Consumption()
    usage = fold_chunk(chunk, from_proto)
    usage_json = fold_chunk_json(body, from_json)
    assert from_json == from_proto
    assert (usage_json is None) == (usage is None)
    if usage is not None and usage_json is not None:
        assert (usage_json["prompt_tokens"], usage_json["completion_tokens"]) == (
            usage.prompt_tokens,
            usage.completion_tokens,
        )
        assert chunk_is_final_json(body) == chunk_is_final(chunk)


def test_a_relayed_answer_is_checked_only_where_the_gateway_reads_it() -> None:
    good = {"choices": [{"message": {"content": 5, "x": [1]}}], "usage": {"prompt_tokens": 1}}
    assert completion_problem(good) is None  # a strange content type is the client's to judge
    assert completion_problem([]) == "expected a JSON object"
    assert completion_problem({"choices": "no"}) == "'choices' must be an array"
    assert completion_problem({"choices": [{"message": "text"}]}) == "'choices[0].message' must be an object"
    assert (
        completion_problem({"choices": [], "usage": {"prompt_tokens": "9"}})
        == "'usage' must hold integer counts"
    )
    assert completion_problem({"choices": [], "usage": {"prompt_tokens_details": {"cached_tokens": True}}})
    assert completion_problem({"choices": [], "usage": {"prompt_tokens_details": {"cache_write_tokens": -1}}})
    assert chunk_problem({"choices": [], "usage": None}) is None
    assert chunk_problem({"choices": None}) == "'choices' must be an array"


def test_text_deltas_count_as_tokens_until_usage_arrives() -> None:
    total = Consumption()
    fold_chunk_json({"choices": [{"delta": {"content": "x" * 40}}]}, total)
    fold_chunk_json({"choices": [{"delta": {"reasoning_content": "y" * 8}}]}, total)
    fold_chunk_json(
        {"choices": ["odd", {"delta": "odd"}, {"delta": {"tool_calls": ["odd", {"function": 1}]}}]}, total
    )
    assert total.completion_tokens == 12
    usage = {
        "prompt_tokens": 5,
        "completion_tokens": 7,
        "total_tokens": 12,
        "prompt_tokens_details": {"cached_tokens": 2},
        "completion_tokens_details": {"reasoning_tokens": 3},
    }
    fold_chunk_json({"choices": [], "usage": usage}, total)
    assert (total.prompt_tokens, total.completion_tokens, total.cached_tokens, total.reasoning_tokens) == (
        5,
        7,
        2,
        3,
    )
