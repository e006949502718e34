"""The Messages front door's translation into the internal chat request, and back out of the chat reply.

Recorded bodies: an Anthropic stream (thinking, text, two tool calls) goes through the Anthropic
adapter into chat chunks, and those chunks through the front door back into Anthropic events; the
events must be the upstream's own sequence, with only what the chat form cannot carry changed.
"""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest

from server.providers.anthropic.request import to_anthropic
from server.providers.anthropic.stream import StreamTranslator
from siraya.router.codec.chat import decode_chat_chunk, decode_chat_completion
from siraya.router.codec.errors import CodecError
from siraya.router.codec.messages import encode_stream_event, message_dict, stream_event_type
from siraya.router.codec.messages_from_chat import (
    MessageStreamTranslator,
    UntranslatableReply,
    message_from_chat,
)
from siraya.router.codec.messages_request import decode_message_request
from siraya.router.codec.messages_to_chat import effort_for_budget, to_chat_params
from siraya.router.codec.routing import value_to_python
from siraya.router.v1 import chat_pb2, messages_pb2
from tests.paths import UNIT_DATA

R = chat_pb2.ChatRole
SIGNATURE = "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds"
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 8).decode()
PDF = base64.b64encode(b"%PDF-1.4 tiny").decode()
WEATHER = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


def translate(body: dict[str, Any]) -> chat_pb2.ChatCompletionParams:
    return to_chat_params(decode_message_request({"model": "m", "max_tokens": 300, **body}))


def roles(chat: chat_pb2.ChatCompletionParams) -> list[str]:
    return [R.Name(m.role).removeprefix("CHAT_ROLE_").lower() for m in chat.messages]


# --- requests ---------------------------------------------------------------------------------


def test_a_tool_loop_with_thinking_becomes_chat_turns_with_stable_ids() -> None:
    chat = translate(
        {
            "system": [{"type": "text", "text": "Be brief."}, {"type": "text", "text": "Use tools."}],
            "messages": [
                {"role": "user", "content": "Weather in Paris?"},
                {
                    "role": "assistant",
                    "content": [
                        {"type": "thinking", "thinking": "Call the tool.", "signature": SIGNATURE},
                        {"type": "text", "text": "Checking."},
                        {
                            "type": "tool_use",
                            "id": "toolu_1",
                            "name": "get_weather",
                            "input": {"city": "Paris"},
                        },
                        {
                            "type": "tool_use",
                            "id": "toolu_2",
                            "name": "get_weather",
                            "input": {"city": "Rome"},
                        },
                    ],
                },
                {
                    "role": "user",
                    "content": [
                        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"},
                        {
                            "type": "tool_result",
                            "tool_use_id": "toolu_2",
                            "content": [{"type": "text", "text": "21C"}],
                        },
                        {"type": "text", "text": "And tomorrow?"},
                    ],
                },
            ],
            "tools": [{"name": "get_weather", "description": "Weather", "input_schema": WEATHER}],
            "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
            "thinking": {"type": "enabled", "budget_tokens": 2048},
        }
    )
    assert roles(chat) == ["system", "user", "assistant", "tool", "tool", "user"]
    system = chat.messages[0]
    assert [p.text.text for p in system.parts.parts] == ["Be brief.", "Use tools."]
    assistant = chat.messages[2]
    assert (assistant.text, assistant.reasoning) == ("Checking.", "Call the tool.")
    # The one signed thinking block rides in the first call's id, and its result follows it.
    first, second = assistant.tool_calls
    assert first.id == f"toolu_1__ts_{SIGNATURE}"
    assert (second.id, second.function.name, second.function.arguments) == (
        "toolu_2",
        "get_weather",
        '{"city":"Rome"}',
    )
    assert [(m.tool_call_id, m.text) for m in chat.messages[3:5]] == [(first.id, "18C"), ("toolu_2", "21C")]
    assert chat.messages[5].text == "And tomorrow?"
    assert chat.tools[0].function.name == "get_weather"
    assert orjson.loads(chat.tools[0].function.parameters_json) == WEATHER
    assert (chat.tool_choice.mode, chat.parallel_tool_calls) == ("required", False)
    assert (chat.reasoning_effort, chat.max_completion_tokens) == ("low", 300)


def test_the_anthropic_adapter_rebuilds_the_signed_thinking_block() -> None:
    """What the translation writes is what the Anthropic adapter needs to send the turn back signed."""
    chat = translate(
        {
            "messages": [
                {"role": "user", "content": "Weather?"},
                {
                    "role": "assistant",
                    "content": [
                        {"type": "thinking", "thinking": "Call it.", "signature": SIGNATURE},
                        {
                            "type": "tool_use",
                            "id": "toolu_1",
                            "name": "get_weather",
                            "input": {"city": "Paris"},
                        },
                    ],
                },
                {
                    "role": "user",
                    "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"}],
                },
            ],
            "tools": [{"name": "get_weather", "input_schema": WEATHER}],
            "thinking": {"type": "enabled", "budget_tokens": 4096},
        }
    )
    body = to_anthropic(chat, "claude-x", stream=False)
    assistant = body["messages"][1]["content"]
    assert assistant[0] == {"type": "thinking", "thinking": "Call it.", "signature": SIGNATURE}
    assert assistant[1]["id"] == "toolu_1"
    assert body["messages"][2]["content"][0]["tool_use_id"] == "toolu_1"
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 4096}


def test_an_id_already_carrying_a_signature_is_kept() -> None:
    chat = translate(
        {
            "messages": [
                {"role": "user", "content": "x"},
                {
                    "role": "assistant",
                    "content": [
                        {"type": "thinking", "thinking": "t", "signature": ""},
                        {"type": "tool_use", "id": f"toolu_1__ts_{SIGNATURE}", "name": "f", "input": {}},
                    ],
                },
                {
                    "role": "user",
                    "content": [{"type": "tool_result", "tool_use_id": f"toolu_1__ts_{SIGNATURE}"}],
                },
            ]
        }
    )
    assert chat.messages[1].tool_calls[0].id == f"toolu_1__ts_{SIGNATURE}"
    assert chat.messages[2].tool_call_id == f"toolu_1__ts_{SIGNATURE}"


def test_two_thinking_blocks_or_redacted_thinking_carry_no_signature() -> None:
    for extra in (
        {"type": "thinking", "thinking": "more", "signature": "c2ln"},
        {"type": "redacted_thinking", "data": "x"},
    ):
        chat = translate(
            {
                "messages": [
                    {"role": "user", "content": "x"},
                    {
                        "role": "assistant",
                        "content": [
                            {"type": "thinking", "thinking": "t", "signature": SIGNATURE},
                            extra,
                            {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}},
                        ],
                    },
                ]
            }
        )
        assert chat.messages[1].tool_calls[0].id == "toolu_1"


def test_images_and_documents_become_parts() -> None:
    chat = translate(
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "Describe."},
                        {
                            "type": "image",
                            "source": {"type": "base64", "media_type": "image/png", "data": PNG},
                        },
                        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
                        {
                            "type": "document",
                            "source": {"type": "base64", "media_type": "application/pdf", "data": PDF},
                            "title": "report.pdf",
                        },
                        {
                            "type": "document",
                            "source": {"type": "text", "data": "plain notes"},
                            "title": "Notes",
                        },
                    ],
                }
            ]
        }
    )
    parts = chat.messages[0].parts.parts
    assert [p.WhichOneof("part") for p in parts] == ["text", "image_url", "image_url", "file", "text"]
    assert parts[1].image_url.url == f"data:image/png;base64,{PNG}"
    assert parts[2].image_url.url == "https://example.com/cat.jpg"
    assert (parts[3].file.file_data, parts[3].file.filename) == (
        f"data:application/pdf;base64,{PDF}",
        "report.pdf",
    )
    assert parts[4].text.text == "Notes\n\nplain notes"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"tools": [{"type": "web_search_20250305", "name": "web_search"}]}, "tools.0.type"),
        ({"container": "c_1"}, "container"),
        ({"mcp_servers": [{"type": "url", "url": "https://x", "name": "x"}]}, "mcp_servers"),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "image", "source": {"type": "file", "file_id": "f"}}],
                    }
                ]
            },
            "messages.0.content.0.source.type",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "search_result", "source": "s", "title": "t", "content": []}],
                    }
                ]
            },
            "messages.0.content.0.type",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "document", "source": {"type": "url", "url": "https://x/a.pdf"}}
                        ],
                    }
                ]
            },
            "messages.0.content.0.source.type",
        ),
    ],
)
def test_what_only_anthropic_can_serve_is_refused_by_name(body: dict[str, Any], param: str) -> None:
    with pytest.raises(CodecError) as caught:
        translate({"messages": [{"role": "user", "content": "x"}], **body})
    assert caught.value.param == param


def test_options_map_onto_chat_fields() -> None:
    chat = translate(
        {
            "messages": [{"role": "user", "content": "x"}],
            "stop_sequences": ["END", "STOP"],
            "temperature": 0.2,
            "top_p": 0.8,
            "top_k": 5,
            "metadata": {"user_id": "u-1"},
            "service_tier": "standard_only",
            "tool_choice": {"type": "tool", "name": "f"},
            "tools": [{"name": "f", "input_schema": {"type": "object"}}],
            "context_management": {"edits": []},
            "vendor_knob": {"x": 1},
            "output_config": {"effort": "max", "format": {"type": "json_schema", "schema": WEATHER}},
            "cache_control": {"type": "ephemeral"},
        }
    )
    assert list(chat.stop) == ["END", "STOP"]
    assert (chat.temperature, chat.top_p, chat.user, chat.service_tier) == (0.2, 0.8, "u-1", "default")
    assert (chat.tool_choice.named.type, chat.tool_choice.named.name) == ("function", "f")
    assert value_to_python(chat.extra_body.fields["top_k"]) == 5
    assert value_to_python(chat.extra_body.fields["vendor_knob"]) == {"x": 1}
    assert "context_management" not in chat.extra_body.fields
    assert chat.reasoning_effort == "high"
    assert chat.response_format.type == "json_schema"
    assert orjson.loads(chat.response_format.json_schema.schema_json) == WEATHER


@pytest.mark.parametrize(
    ("budget", "effort"),
    [(1024, "low"), (4095, "low"), (4096, "medium"), (16383, "medium"), (16384, "high"), (60000, "high")],
)
def test_thinking_budgets_become_efforts(budget: int, effort: str) -> None:
    assert effort_for_budget(budget) == effort


def test_thinking_disabled_and_adaptive() -> None:
    base = {"messages": [{"role": "user", "content": "x"}]}
    assert not translate({**base, "thinking": {"type": "disabled"}}).HasField("reasoning_effort")
    assert translate({**base, "thinking": {"type": "adaptive"}}).reasoning_effort == "medium"


# --- unary replies ----------------------------------------------------------------------------


def completion(
    message: dict[str, Any], finish: str = "stop", usage: dict[str, Any] | None = None
) -> chat_pb2.ChatCompletion:
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-test",
        "choices": [{"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish}],
        "usage": usage
        or {
            "prompt_tokens": 100,
            "completion_tokens": 20,
            "total_tokens": 120,
            "prompt_tokens_details": {"cached_tokens": 30},
            "completion_tokens_details": {"reasoning_tokens": 7},
        },
    }
    chat = decode_chat_completion(body)
    chat.provider = "fake"
    if usage is None:
        # The Anthropic adapter's cache writes (the OpenAI JSON has no such field).
        chat.usage.prompt_tokens_details.cache_creation_tokens = 10
    return chat


def test_a_completion_becomes_a_message() -> None:
    message = message_from_chat(completion({"content": "Hello"}))
    out = message_dict(message)
    assert out["content"] == [{"type": "text", "text": "Hello"}]
    assert (out["stop_reason"], out["model"], out["provider"]) == ("end_turn", "gpt-test", "fake")
    assert out["usage"] == {
        "input_tokens": 60,
        "cache_creation_input_tokens": 10,
        "cache_read_input_tokens": 30,
        "output_tokens": 20,
        "output_tokens_details": {"thinking_tokens": 7},
    }


def test_tool_calls_with_a_carried_signature_split_into_thinking_and_tool_use() -> None:
    message = message_from_chat(
        completion(
            {
                "content": None,
                "reasoning": "Call it.",
                "tool_calls": [
                    {
                        "id": f"toolu_1__ts_{SIGNATURE}",
                        "type": "function",
                        "function": {"name": "f", "arguments": '{"b":1,"a":2}'},
                    },
                    {"id": "toolu_2", "type": "function", "function": {"name": "g", "arguments": ""}},
                ],
            },
            "tool_calls",
        )
    )
    raw = orjson.dumps(message_dict(message))
    out = orjson.loads(raw)
    assert out["content"] == [
        {"type": "thinking", "thinking": "Call it.", "signature": SIGNATURE},
        {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"b": 1, "a": 2}},
        {"type": "tool_use", "id": "toolu_2", "name": "g", "input": {}},
    ]
    assert b'"input":{"b":1,"a":2}' in raw
    assert out["stop_reason"] == "tool_use"


def test_a_signature_without_reasoning_stays_in_the_id() -> None:
    message = message_from_chat(
        completion(
            {
                "tool_calls": [
                    {
                        "id": "call_9__ts_c2ln",
                        "type": "function",
                        "function": {"name": "f", "arguments": "{}"},
                    }
                ]
            },
            "tool_calls",
        )
    )
    assert [b.WhichOneof("block") for b in message.content] == ["tool_use"]
    assert message.content[0].tool_use.id == "call_9__ts_c2ln"


@pytest.mark.parametrize(
    ("finish", "reason"), [("length", "max_tokens"), ("content_filter", "refusal"), ("weird", "end_turn")]
)
def test_finish_reasons(finish: str, reason: str) -> None:
    assert message_from_chat(completion({"content": "x"}, finish)).stop_reason == reason


def test_arguments_that_are_not_an_object_are_untranslatable() -> None:
    bad = completion(
        {"tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "[1"}}]},
        "tool_calls",
    )
    with pytest.raises(UntranslatableReply):
        message_from_chat(bad)


# --- streams ----------------------------------------------------------------------------------

RECORDED_STREAM = (UNIT_DATA / "anthropic_stream_thinking_tools.sse").read_text()


def recorded_events(raw: str) -> list[dict[str, Any]]:
    return [
        orjson.loads(frame.split("\n", 1)[1].removeprefix("data: ")) for frame in raw.strip().split("\n\n")
    ]


def front_door(chunks: list[chat_pb2.ChatCompletionChunk], estimate: int = 0) -> list[dict[str, Any]]:
    translator = MessageStreamTranslator(estimate)
    events = [event for chunk in chunks for event in translator.feed(chunk)] + translator.finish()
    decoded = [orjson.loads(encode_stream_event(event)) for event in events]
    assert [stream_event_type(event) for event in events] == [d["type"] for d in decoded]
    return decoded


def shape(events: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    for event in events:
        kind = event["type"]
        if kind == "content_block_start":
            out.append((kind, event["index"], event["content_block"]["type"]))
        elif kind == "content_block_delta":
            out.append((kind, event["index"], event["delta"]["type"]))
        elif kind == "content_block_stop":
            out.append((kind, event["index"]))
        else:
            out.append((kind,))
    return out


def test_the_recorded_anthropic_stream_comes_back_in_anthropic_order() -> None:
    upstream = StreamTranslator("anthropic", created=1)
    chunks = [chunk for event in recorded_events(RECORDED_STREAM) for chunk in upstream.feed(event)]
    events = front_door(chunks, estimate=50)
    assert shape(events) == [
        ("message_start",),
        ("ping",),
        ("content_block_start", 0, "thinking"),
        ("content_block_delta", 0, "thinking_delta"),
        ("content_block_delta", 0, "thinking_delta"),
        ("content_block_stop", 0),
        ("content_block_start", 1, "text"),
        ("content_block_delta", 1, "text_delta"),
        ("content_block_stop", 1),
        ("content_block_start", 2, "tool_use"),
        ("content_block_delta", 2, "input_json_delta"),
        ("content_block_delta", 2, "input_json_delta"),
        ("content_block_stop", 2),
        ("content_block_start", 3, "tool_use"),
        ("content_block_delta", 3, "input_json_delta"),
        ("content_block_stop", 3),
        ("message_delta",),
        ("message_stop",),
    ]
    assert events[0]["message"]["id"] == "msg_014p7gG3wDgGV9EUtLvnow3U"
    assert events[0]["message"]["usage"]["input_tokens"] == 50
    # Text came between the thinking and the call: the signature stays in the tool_use id.
    assert events[9]["content_block"]["id"] == f"toolu_01T1x1fJ34qAmk2tNTrN7Up6__ts_{SIGNATURE}"
    assert events[13]["content_block"]["id"] == "toolu_01VNtmGAq5iR8mbVWg5CNAXa"
    assert "".join(e["delta"]["partial_json"] for e in events[10:12]) == '{"city": "Paris"}'
    assert events[16]["delta"] == {"stop_reason": "tool_use", "stop_sequence": None}
    # Anthropic's input_tokens exclude the 100 cache reads the chat usage counted in the prompt.
    assert events[16]["usage"] == {
        "input_tokens": 472,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 100,
        "output_tokens": 89,
    }


def test_thinking_straight_before_a_call_gets_its_signature_delta() -> None:
    events = recorded_events(RECORDED_STREAM)
    # Drop the text block: thinking, then the tool calls (renumbered).
    kept = [e for e in events if e.get("index") != 1]
    for event in kept:
        if isinstance(event.get("index"), int) and event["index"] > 1:
            event["index"] -= 1
    upstream = StreamTranslator("anthropic", created=1)
    chunks = [chunk for event in kept for chunk in upstream.feed(event)]
    out = front_door(chunks)
    assert shape(out)[2:8] == [
        ("content_block_start", 0, "thinking"),
        ("content_block_delta", 0, "thinking_delta"),
        ("content_block_delta", 0, "thinking_delta"),
        ("content_block_delta", 0, "signature_delta"),
        ("content_block_stop", 0),
        ("content_block_start", 1, "tool_use"),
    ]
    assert out[5]["delta"]["signature"] == SIGNATURE
    assert out[7]["content_block"]["id"] == "toolu_01T1x1fJ34qAmk2tNTrN7Up6"


def chunk(
    delta: dict[str, Any] | None, finish: str | None = None, usage: dict[str, Any] | None = None
) -> chat_pb2.ChatCompletionChunk:
    body: dict[str, Any] = {
        "id": "chatcmpl-9",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-test",
    }
    body["choices"] = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    if usage is not None:
        body["usage"] = usage
    return decode_chat_chunk(body)


def test_an_openai_stream_with_interleaved_reasoning_text_and_a_call() -> None:
    chunks = [
        chunk({"role": "assistant", "content": ""}),
        chunk({"reasoning_content": "hmm"}),
        chunk({"content": "Hi"}),
        chunk({"content": " there"}),
        chunk(
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "f", "arguments": ""},
                    }
                ]
            }
        ),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"a":'}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]}),
        chunk({}, "tool_calls"),
        chunk(None, usage={"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13}),
    ]
    events = front_door(chunks)
    assert shape(events) == [
        ("message_start",),
        ("ping",),
        ("content_block_start", 0, "thinking"),
        ("content_block_delta", 0, "thinking_delta"),
        ("content_block_stop", 0),
        ("content_block_start", 1, "text"),
        ("content_block_delta", 1, "text_delta"),
        ("content_block_delta", 1, "text_delta"),
        ("content_block_stop", 1),
        ("content_block_start", 2, "tool_use"),
        ("content_block_delta", 2, "input_json_delta"),
        ("content_block_delta", 2, "input_json_delta"),
        ("content_block_stop", 2),
        ("message_delta",),
        ("message_stop",),
    ]
    assert events[2]["content_block"] == {"type": "thinking", "thinking": "", "signature": ""}
    assert events[-2]["usage"]["input_tokens"] == 9 and events[-2]["usage"]["output_tokens"] == 4


def test_a_stream_without_usage_or_finish_still_ends_properly() -> None:
    events = front_door([chunk({"role": "assistant", "content": "ok"})], estimate=12)
    assert shape(events)[-2:] == [("message_delta",), ("message_stop",)]
    assert events[-2]["delta"]["stop_reason"] == "end_turn"
    assert events[-2]["usage"] == {"input_tokens": 12, "output_tokens": 0}


def test_no_chunks_no_events() -> None:
    assert MessageStreamTranslator().finish() == []
    assert isinstance(messages_pb2.MessageStreamEvent(), messages_pb2.MessageStreamEvent)
