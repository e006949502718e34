"""The prompt and answer text kept with a ledger record under `observability.store_bodies`."""

from __future__ import annotations

from typing import Any

from server.observability.bodies import CUT_MARK, MAX_BODY_CHARS, BodyCapture, prompt_text
from siraya.router.codec.chat import decode_chat_completion
from siraya.router.codec.chat_request import decode_chat_request
from siraya.router.v1 import chat_pb2, embeddings_pb2, responses_pb2

CHAT_REQUEST: dict[str, Any] = {
    "model": "m",
    "messages": [
        {"role": "system", "content": "Be brief."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in"},
                {"type": "text", "text": "this picture?"},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "look", "arguments": '{"at":"cat"}'}}
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "a cat"},
    ],
}


def test_a_chat_prompt_is_one_line_per_message_with_its_tool_calls() -> None:
    assert prompt_text(decode_chat_request(CHAT_REQUEST)) == (
        "system: Be brief.\n"
        "user: What is in this picture? [1 media part(s)]\n"
        'assistant: look({"at":"cat"})\n'
        "tool: a cat"
    )


def test_other_prompts_are_their_input_text() -> None:
    params = responses_pb2.ResponseParams(model="m", instructions="Be kind.", input_text="hello")
    assert prompt_text(params) == "Be kind.\n\nhello"
    embedding = embeddings_pb2.EmbeddingParams(model="e", text="embed me")
    assert prompt_text(embedding) == "embed me"
    assert prompt_text(None) is None


def test_each_side_is_cut_to_the_bound() -> None:
    long = decode_chat_request({"model": "m", "messages": [{"role": "user", "content": "x" * 50_000}]})
    text = prompt_text(long)
    assert text is not None and len(text) == MAX_BODY_CHARS and text.endswith(CUT_MARK)
    capture = BodyCapture(long)
    for _ in range(10_000):
        capture.add({"choices": [{"index": 0, "delta": {"content": "word "}}]})
    answer = capture.answer_text()
    assert answer is not None and len(answer) == MAX_BODY_CHARS and answer.endswith(CUT_MARK)
    assert len(capture._answer) < MAX_BODY_CHARS  # nothing kept past the bound


def test_a_unary_answer_in_every_form() -> None:
    completion = decode_chat_completion(
        {
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": "Let me look.",
                        "tool_calls": [
                            {"id": "c", "type": "function", "function": {"name": "look", "arguments": "{}"}}
                        ],
                    },
                    "finish_reason": "tool_calls",
                }
            ]
        }
    )
    forms: list[tuple[object, str]] = [
        (completion, "Let me look.\nlook({})"),
        ({"choices": [{"message": {"role": "assistant", "content": "plain json"}}]}, "plain json"),
        (
            {
                "type": "message",
                "content": [
                    {"type": "thinking", "thinking": "hidden", "signature": "s"},
                    {"type": "text", "text": "From Claude."},
                    {"type": "tool_use", "id": "t", "name": "look", "input": {"at": "dog"}},
                ],
            },
            'From Claude.\nlook({"at":"dog"})',
        ),
    ]
    response = responses_pb2.Response()
    item = response.output.add(type="message", role="assistant")
    item.content.add(type="output_text", text="From Responses.")
    response.output.add(type="function_call", name="look", arguments='{"x":1}')
    forms.append((response, 'From Responses.\nlook({"x":1})'))
    for result, expected in forms:
        capture = BodyCapture(None)
        capture.answer(result)
        assert capture.answer_text() == expected, result


def test_a_streamed_answer_in_every_form() -> None:
    chunks = chat_pb2.ChatCompletionChunk()
    chunks.choices.add(index=0).delta.content = "Hel"
    more = chat_pb2.ChatCompletionChunk()
    more.choices.add(index=0).delta.content = "lo"
    call = chat_pb2.ChatCompletionChunk()
    tool = call.choices.add(index=0).delta.tool_calls.add(index=0)
    tool.function.name, tool.function.arguments = "look", '{"a"'
    rest = chat_pb2.ChatCompletionChunk()
    rest.choices.add(index=0).delta.tool_calls.add(index=0).function.arguments = ":1}"
    anthropic_events: list[dict[str, Any]] = [
        {"type": "message_start", "message": {"content": []}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "no"}},
        {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "Hello"}},
        {"type": "content_block_start", "index": 2, "content_block": {"type": "tool_use", "name": "look"}},
        {
            "type": "content_block_delta",
            "index": 2,
            "delta": {"type": "input_json_delta", "partial_json": '{"a"'},
        },
        {
            "type": "content_block_delta",
            "index": 2,
            "delta": {"type": "input_json_delta", "partial_json": ":1}"},
        },
        {"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 3}},
    ]
    json_chunks: list[dict[str, Any]] = [
        {"choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hel"}}]},
        {"choices": [{"index": 0, "delta": {"content": "lo"}}]},
        {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"name": "look"}}]}}]},
        {
            "choices": [
                {"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": '{"a":1}'}}]}}
            ]
        },
        {"choices": [], "usage": {"prompt_tokens": 1}},
    ]
    events = [
        responses_pb2.ResponseStreamEvent(type="response.output_text.delta", delta="Hel"),
        responses_pb2.ResponseStreamEvent(type="response.output_text.delta", delta="lo"),
        responses_pb2.ResponseStreamEvent(
            type="response.output_item.added",
            item=responses_pb2.ResponseItem(type="function_call", name="look"),
        ),
        responses_pb2.ResponseStreamEvent(type="response.function_call_arguments.delta", delta='{"a":1}'),
    ]
    for stream in ([chunks, more, call, rest], anthropic_events, json_chunks, events):
        capture = BodyCapture(None)
        for item in stream:
            capture.add(item)
        assert capture.answer_text() == 'Hello\nlook({"a":1})', stream
