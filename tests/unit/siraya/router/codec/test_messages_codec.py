"""The Messages front door's JSON codec: Anthropic request JSON -> proto, and proto -> reply JSON.

Replies are checked against the official `anthropic` SDK's own models, so a shape the SDK would not
read fails here rather than in a client.
"""

from __future__ import annotations

import base64
from typing import Any

import anthropic
import orjson
import pytest
from pydantic import TypeAdapter

from siraya.router.codec.errors import CodecError
from siraya.router.codec.messages import (
    block_dict,
    encode_count_tokens,
    encode_message,
    encode_stream_event,
    message_request_dict,
    stream_event_type,
)
from siraya.router.codec.messages_request import decode_count_tokens_request, decode_message_request
from siraya.router.codec.messages_tokens import IMAGE_TOKENS, PDF_PAGE_TOKENS, estimate_input_tokens
from siraya.router.codec.routing import value_to_python
from siraya.router.v1 import messages_pb2

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 24).decode()
PDF = base64.b64encode(
    b"%PDF-1.4\n1 0 obj << /Type /Pages >>\n2 0 obj << /Type /Page >>\n3 0 obj << /Type/Page >>"
).decode()
SCHEMA = {
    "type": "object",
    "properties": {"z": {"type": "string"}, "a": {"type": "integer"}},
    "required": ["z"],
}

# A request using every block type and option Anthropic documents, as Claude Code-like clients send.
FULL_REQUEST: dict[str, Any] = {
    "model": "claude-sonnet",
    "max_tokens": 2048,
    "system": [
        {"type": "text", "text": "You are terse."},
        {"type": "text", "text": "Cite sources.", "cache_control": {"type": "ephemeral", "ttl": "1h"}},
    ],
    "messages": [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Look at these."},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}},
                {
                    "type": "document",
                    "source": {"type": "base64", "media_type": "application/pdf", "data": PDF},
                    "title": "report.pdf",
                    "citations": {"enabled": True},
                    "cache_control": {"type": "ephemeral"},
                },
                {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "notes"}},
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "Need the weather.", "signature": "c2ln"},
                {"type": "redacted_thinking", "data": "opaque"},
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"z": "Paris", "a": 1}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C", "is_error": False},
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_2",
                    "content": [{"type": "text", "text": "sunny"}],
                    "cache_control": {"type": "ephemeral"},
                },
                {"type": "search_result", "source": "https://x", "title": "t", "content": []},
            ],
        },
    ],
    "tools": [
        {
            "name": "get_weather",
            "description": "Weather",
            "input_schema": SCHEMA,
            "cache_control": {"type": "ephemeral"},
            "input_examples": [{"z": "Rome"}],
        },
        {"type": "web_search_20250305", "name": "web_search", "max_uses": 3},
    ],
    "tool_choice": {"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True},
    "thinking": {"type": "enabled", "budget_tokens": 1024},
    "metadata": {"user_id": "user-42"},
    "stop_sequences": ["END"],
    "temperature": 0.5,
    "top_p": 0.9,
    "top_k": 20,
    "service_tier": "standard_only",
    "stream": True,
    "output_config": {"effort": "high"},
    "models": ["gpt-test"],
}


def test_every_documented_field_is_decoded() -> None:
    params = decode_message_request(FULL_REQUEST)
    assert (params.model, params.max_tokens, params.stream) == ("claude-sonnet", 2048, True)
    system = params.system_blocks.blocks
    assert [b.text for b in system] == ["You are terse.", "Cite sources."]
    assert not system[0].HasField("cache_control")
    assert (system[1].cache_control.type, system[1].cache_control.ttl) == ("ephemeral", "1h")
    first, second, third = params.messages
    assert first.role == messages_pb2.MESSAGE_ROLE_USER
    kinds = [b.WhichOneof("block") for b in first.blocks.blocks]
    assert kinds == ["text", "image", "image", "document", "document"]
    image = first.blocks.blocks[1].image
    assert (image.base64.media_type, image.base64.data) == ("image/png", PNG)
    assert first.blocks.blocks[2].image.url.url == "https://example.com/a.png"
    pdf = first.blocks.blocks[3].document
    assert (pdf.base64.media_type, pdf.title, pdf.cache_control.type) == (
        "application/pdf",
        "report.pdf",
        "ephemeral",
    )
    assert value_to_python(pdf.citations.fields["enabled"]) is True
    assert first.blocks.blocks[4].document.text.data == "notes"
    assistant = second.blocks.blocks
    assert (assistant[0].thinking.thinking, assistant[0].thinking.signature) == ("Need the weather.", "c2ln")
    assert assistant[1].redacted_thinking.data == "opaque"
    # The tool input keeps the model's key order, byte for byte.
    assert assistant[3].tool_use.input_json == b'{"z":"Paris","a":1}'
    results = third.blocks.blocks
    assert (results[0].tool_result.text, results[0].tool_result.is_error) == ("18C", False)
    assert results[1].tool_result.blocks.blocks[0].text.text == "sunny"
    assert results[1].tool_result.cache_control.type == "ephemeral"
    # An unmodelled block type is kept whole.
    assert value_to_python(results[2].other.fields["type"]) == "search_result"
    weather, search = params.tools
    assert orjson.loads(weather.input_schema_json) == SCHEMA
    assert weather.cache_control.type == "ephemeral"
    assert value_to_python(weather.extra.fields["input_examples"]) == [{"z": "Rome"}]
    assert (search.type, value_to_python(search.extra.fields["max_uses"])) == ("web_search_20250305", 3)
    assert not search.HasField("input_schema_json")
    choice = params.tool_choice
    assert (choice.type, choice.name, choice.disable_parallel_tool_use) == ("tool", "get_weather", True)
    assert (params.thinking.type, params.thinking.budget_tokens) == ("enabled", 1024)
    assert params.metadata.user_id == "user-42"
    assert list(params.stop_sequences) == ["END"]
    assert (params.temperature, params.top_p, params.top_k) == (0.5, 0.9, 20)
    assert params.service_tier == "standard_only"
    # Unknown keys travel in extra_body; routing keys are the gateway's.
    assert value_to_python(params.extra_body.fields["output_config"]) == {"effort": "high"}
    assert list(params.routing.models) == ["gpt-test"]
    assert "models" not in params.extra_body.fields


def test_decoded_blocks_encode_back_to_what_was_sent() -> None:
    params = decode_message_request(FULL_REQUEST)
    for sent, message in zip(FULL_REQUEST["messages"], params.messages, strict=True):
        encoded = orjson.dumps([block_dict(block) for block in message.blocks.blocks])
        assert orjson.loads(encoded) == sent["content"]


def test_params_encode_back_to_the_request_without_the_routing_keys() -> None:
    """A gRPC caller's proto becomes the body the relay lane sends an Anthropic upstream."""
    body = orjson.loads(orjson.dumps(message_request_dict(decode_message_request(FULL_REQUEST))))
    assert body == {key: value for key, value in FULL_REQUEST.items() if key != "models"}


def test_string_content_and_string_system() -> None:
    params = decode_message_request(
        {
            "model": "m",
            "max_tokens": 5,
            "system": "Be brief.",
            "messages": [{"role": "user", "content": "hi"}],
        }
    )
    assert params.system_text == "Be brief."
    assert params.messages[0].text == "hi"
    assert not params.HasField("thinking") and not params.HasField("tool_choice")


def test_count_tokens_needs_no_max_tokens() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    assert not decode_count_tokens_request(body).HasField("max_tokens")
    with pytest.raises(CodecError) as caught:
        decode_message_request(body)
    assert caught.value.param == "max_tokens"


@pytest.mark.parametrize(
    ("patch", "param"),
    [
        ({"model": None}, "model"),
        ({"messages": None}, "messages"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "messages.0.role"),
        ({"messages": [{"role": "system", "content": "x"}]}, "messages.0.role"),
        (
            {
                "messages": [
                    {"role": "user", "content": "x"},
                    {"role": "assistant", "content": "y"},
                    {"role": "system", "content": "z"},
                ]
            },
            "messages.2.role",
        ),
        ({"messages": [{"role": "user"}]}, "messages.0.content"),
        ({"messages": [{"role": "user", "content": [{"text": "x"}]}]}, "messages.0.content.0.type"),
        ({"messages": [{"role": "user", "content": [{"type": "text"}]}]}, "messages.0.content.0.text"),
        (
            {"messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "ftp"}}]}]},
            "messages.0.content.0.source.type",
        ),
        (
            {"messages": [{"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "f"}]}]},
            "messages.0.content.0.input",
        ),
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": "many"}, "max_tokens"),
        ({"tool_choice": {"type": "required"}}, "tool_choice.type"),
        ({"tool_choice": {"type": "tool"}}, "tool_choice.name"),
        ({"thinking": {"type": "enabled"}}, "thinking.budget_tokens"),
        ({"thinking": {"type": "on"}}, "thinking.type"),
        ({"metadata": {"user_id": "u", "email": "e"}}, "metadata.email"),
        ({"tools": [{"name": "f"}]}, "tools.0.input_schema"),
        ({"stop_sequences": ["a", 1]}, "stop_sequences.1"),
        ({"temperature": "hot"}, "temperature"),
    ],
)
def test_bad_requests_name_the_field(patch: dict[str, Any], param: str) -> None:
    body = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}], **patch}
    body = {key: value for key, value in body.items() if value is not None}
    with pytest.raises(CodecError) as caught:
        decode_message_request(body)
    assert caught.value.param == param


# --- replies ----------------------------------------------------------------------------------


def test_a_message_encodes_as_the_sdk_reads_it() -> None:
    message = messages_pb2.Message(id="msg_1", type="message", role="assistant", model="claude-sonnet")
    message.content.add().thinking.CopyFrom(
        messages_pb2.MessageThinkingBlock(thinking="hmm", signature="c2ln")
    )
    message.content.add().text.text = "Hello"
    use = message.content.add().tool_use
    use.id, use.name, use.input_json = "toolu_1", "f", b'{"z":1,"a":[true]}'
    message.stop_reason = "tool_use"
    message.usage.input_tokens, message.usage.output_tokens = 10, 5
    message.usage.cache_read_input_tokens = 3
    message.usage.cache_creation_input_tokens = 0
    message.usage.output_tokens_details.thinking_tokens = 2
    message.usage.cost = 0.25
    message.provider = "anthropic"
    raw = encode_message(message)
    # Anthropic's key order, the tool input byte for byte.
    assert raw.startswith(
        b'{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet","content":'
    )
    assert b'"input":{"z":1,"a":[true]}' in raw
    parsed = anthropic.types.Message.model_validate(orjson.loads(raw))
    assert [block.type for block in parsed.content] == ["thinking", "text", "tool_use"]
    assert parsed.content[2].input == {"z": 1, "a": [True]}  # type: ignore[union-attr]
    assert parsed.stop_reason == "tool_use" and parsed.stop_sequence is None
    assert (parsed.usage.input_tokens, parsed.usage.cache_read_input_tokens) == (10, 3)
    assert orjson.loads(raw)["usage"]["cost"] == 0.25


EVENT_ADAPTER: TypeAdapter[Any] = TypeAdapter(anthropic.types.RawMessageStreamEvent)


def _event(**kwargs: Any) -> messages_pb2.MessageStreamEvent:
    return messages_pb2.MessageStreamEvent(**kwargs)


def test_stream_events_encode_as_the_sdk_reads_them() -> None:
    start = _event()
    start.message_start.message.CopyFrom(
        messages_pb2.Message(id="msg_1", type="message", role="assistant", model="m")
    )
    start.message_start.message.usage.input_tokens = 7
    tool_start = _event()
    tool_start.content_block_start.index = 1
    tool_start.content_block_start.content_block.tool_use.CopyFrom(
        messages_pb2.MessageToolUseBlock(id="toolu_1", name="f")
    )
    thinking_start = _event()
    thinking_start.content_block_start.content_block.thinking.SetInParent()
    deltas = []
    for field, value in (
        ("text_delta", messages_pb2.MessageTextDelta(text="Hi")),
        ("input_json_delta", messages_pb2.MessageInputJsonDelta(partial_json='{"a"')),
        ("thinking_delta", messages_pb2.MessageThinkingDelta(thinking="so")),
        ("signature_delta", messages_pb2.MessageSignatureDelta(signature="c2ln")),
    ):
        event = _event()
        getattr(event.content_block_delta.delta, field).CopyFrom(value)
        deltas.append(event)
    finish = _event()
    finish.message_delta.delta.stop_reason = "end_turn"
    finish.message_delta.usage.output_tokens = 9
    events = [
        start,
        _event(ping=messages_pb2.PingEvent()),
        thinking_start,
        tool_start,
        *deltas,
        _event(content_block_stop=messages_pb2.ContentBlockStopEvent(index=1)),
        finish,
        _event(message_stop=messages_pb2.MessageStopEvent()),
    ]
    decoded = [orjson.loads(encode_stream_event(event)) for event in events]
    assert [stream_event_type(event) for event in events] == [d["type"] for d in decoded]
    for data in decoded:
        if data["type"] != "ping":
            EVENT_ADAPTER.validate_python(data)
    assert decoded[0]["message"]["content"] == [] and decoded[0]["message"]["stop_reason"] is None
    assert decoded[2]["content_block"] == {"type": "thinking", "thinking": "", "signature": ""}
    assert decoded[3]["content_block"] == {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}
    assert [d["delta"]["type"] for d in decoded[4:8]] == [
        "text_delta",
        "input_json_delta",
        "thinking_delta",
        "signature_delta",
    ]
    assert decoded[9] == {
        "type": "message_delta",
        "delta": {"stop_reason": "end_turn", "stop_sequence": None},
        "usage": {"input_tokens": 0, "output_tokens": 9},
    }
    assert decoded[10] == {"type": "message_stop"}


def test_count_tokens_body() -> None:
    assert orjson.loads(encode_count_tokens(42)) == {"input_tokens": 42}


def test_token_estimate_counts_text_images_and_pdf_pages() -> None:
    text_only = decode_count_tokens_request(
        {"model": "m", "system": "x" * 40, "messages": [{"role": "user", "content": "y" * 400}]}
    )
    assert estimate_input_tokens(text_only) == 10 + 100 + 4
    with_media = decode_count_tokens_request(FULL_REQUEST)
    # Two images and a two-page PDF dominate the estimate.
    assert estimate_input_tokens(with_media) > 2 * IMAGE_TOKENS + 2 * PDF_PAGE_TOKENS
    assert estimate_input_tokens(with_media) < 2 * IMAGE_TOKENS + 3 * PDF_PAGE_TOKENS
