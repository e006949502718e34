"""Metering of Messages replies kept as Anthropic's JSON (the relay lane): Anthropic's usage in the
gateway's OpenAI-shaped consumption, and the stream's usage event found and stamped."""

from __future__ import annotations

from typing import Any

from server.accounts.metering import Consumption
from server.messages_usage import fold_message_event, message_consumption, message_event_usage

USAGE = {
    "input_tokens": 100,
    "cache_creation_input_tokens": 10,
    "cache_read_input_tokens": 40,
    "output_tokens": 20,
    "output_tokens_details": {"thinking_tokens": 5},
}


def test_a_messages_usage_counts_cache_reads_and_writes_as_prompt() -> None:
    assert message_consumption({"usage": USAGE}) == Consumption(
        prompt_tokens=150, completion_tokens=20, cached_tokens=40, reasoning_tokens=5, cache_write_tokens=10
    )
    assert message_consumption({}) == Consumption()


def test_a_stream_folds_start_estimates_deltas_then_takes_the_final_count() -> None:
    events: list[dict[str, Any]] = [
        {"type": "message_start", "message": {"usage": {**USAGE, "output_tokens": 1}}},
        {"type": "ping"},
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "thinking_delta", "thinking": "x" * 40},
        },
        {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "y" * 8}},
        {
            "type": "content_block_delta",
            "index": 2,
            "delta": {"type": "input_json_delta", "partial_json": "{}"},
        },
    ]
    total = Consumption()
    for event in events:
        fold_message_event(event, total)
        assert message_event_usage(event) is None
    # Cut here (a client gone): what was streamed is estimated, 4 bytes a token.
    assert (total.prompt_tokens, total.cached_tokens, total.completion_tokens) == (150, 40, 1 + 10 + 2 + 1)
    final = {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 20}}
    fold_message_event(final, total)
    assert message_event_usage(final) == {"output_tokens": 20}
    assert (total.prompt_tokens, total.completion_tokens) == (150, 20)
