"""Prompt caching in the pure parts: cache_control through the chat codec, the Anthropic adapter and
the Messages translation; cache prices in money; the config fields."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from server.accounts.money import Price, cost_of, estimate_cost
from server.config import ConfigError, load_config
from server.providers.anthropic.request import resolve_media, to_anthropic
from siraya.router.codec.chat_request import decode_chat_request, encode_chat_request
from siraya.router.codec.errors import CodecError
from siraya.router.codec.messages_request import decode_message_request
from siraya.router.codec.messages_to_chat import to_chat_params
from tests.fakes.anthropic_upstream import validate_request

EPHEMERAL = {"type": "ephemeral"}
HOUR = {"type": "ephemeral", "ttl": "1h"}


def anthropic(body: dict[str, Any]) -> dict[str, Any]:
    params = decode_chat_request({"model": "m", **body})
    translated = to_anthropic(params, "claude", False, resolve_media(params))
    validate_request(orjson.loads(orjson.dumps(translated)))
    return translated


def test_a_system_prompt_without_breakpoints_stays_a_string() -> None:
    body = anthropic(
        {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]}
    )
    assert body["system"] == "Be brief."
    assert "cache_control" not in orjson.dumps(body).decode()


def test_a_cached_system_message_is_sent_as_blocks() -> None:
    body = anthropic(
        {
            "messages": [
                {"role": "system", "content": "Be brief.", "cache_control": HOUR},
                {"role": "user", "content": "hi"},
            ]
        }
    )
    assert body["system"] == [{"type": "text", "text": "Be brief.", "cache_control": HOUR}]


def test_a_message_level_breakpoint_lands_on_the_messages_last_block() -> None:
    body = anthropic(
        {
            "messages": [
                {
                    "role": "user",
                    "content": [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}],
                    "cache_control": EPHEMERAL,
                }
            ]
        }
    )
    assert body["messages"][0]["content"] == [
        {"type": "text", "text": "one"},
        {"type": "text", "text": "two", "cache_control": EPHEMERAL},
    ]


def test_an_empty_part_that_is_dropped_takes_its_breakpoint_with_it() -> None:
    body = anthropic(
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "kept"},
                        {"type": "text", "text": "", "cache_control": EPHEMERAL},
                    ],
                }
            ]
        }
    )
    assert body["messages"][0]["content"] == [{"type": "text", "text": "kept"}]


def test_the_openai_encoder_never_writes_cache_control() -> None:
    params = decode_chat_request(
        {
            "model": "m",
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "x", "cache_control": EPHEMERAL}]}
            ],
            "tools": [{"type": "function", "function": {"name": "f"}, "cache_control": EPHEMERAL}],
            "cache_control": EPHEMERAL,
        }
    )
    assert params.cache_control.type == "ephemeral" and params.tools[0].cache_control.type == "ephemeral"
    assert b"cache_control" not in orjson.dumps(encode_chat_request(params, "gpt", stream=False))


@pytest.mark.parametrize(
    ("cache_control", "param"),
    [
        ("yes", "cache_control"),
        ({"ttl": "5m"}, "cache_control.type"),
        ({"type": "ephemeral", "ttl": 5}, "cache_control.ttl"),
    ],
)
def test_a_malformed_cache_control_names_its_field(cache_control: Any, param: str) -> None:
    with pytest.raises(CodecError) as caught:
        decode_chat_request(
            {"model": "m", "messages": [{"role": "user", "content": "x"}], "cache_control": cache_control}
        )
    assert caught.value.param == param


def test_the_messages_translation_carries_every_breakpoint_and_mid_conversation_system() -> None:
    params = decode_message_request(
        {
            "model": "m",
            "max_tokens": 10,
            "system": [{"type": "text", "text": "S", "cache_control": HOUR}],
            "tools": [{"name": "f", "input_schema": {"type": "object"}, "cache_control": EPHEMERAL}],
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "u", "cache_control": EPHEMERAL}]},
                {"role": "system", "content": "Now be formal."},
                {
                    "role": "assistant",
                    "content": [
                        {"type": "text", "text": "a", "cache_control": EPHEMERAL},
                        {
                            "type": "tool_use",
                            "id": "t1",
                            "name": "f",
                            "input": {},
                            "cache_control": EPHEMERAL,
                        },
                    ],
                },
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "tool_result",
                            "tool_use_id": "t1",
                            "content": "r",
                            "cache_control": EPHEMERAL,
                        }
                    ],
                },
            ],
            "cache_control": EPHEMERAL,
        }
    )
    chat = to_chat_params(params)
    system, user, mid, assistant, tool = chat.messages
    assert system.parts.parts[0].cache_control.ttl == "1h"
    assert user.parts.parts[0].cache_control.type == "ephemeral"
    assert (mid.role, mid.text) == (system.role, "Now be formal.")
    assert assistant.parts.parts[0].cache_control.type == "ephemeral"
    assert assistant.cache_control.type == "ephemeral"  # the tool_use's: the turn's last block
    assert tool.cache_control.type == "ephemeral"
    assert chat.tools[0].cache_control.type == "ephemeral" and chat.cache_control.type == "ephemeral"
    body = to_anthropic(chat, "claude", False)
    assert body["system"][0]["cache_control"] == HOUR and body["system"][1] == {
        "type": "text",
        "text": "Now be formal.",
    }
    assert body["messages"][1]["content"][-1]["type"] == "tool_use"
    assert body["messages"][1]["content"][-1]["cache_control"] == EPHEMERAL
    assert body["messages"][2]["content"][0]["cache_control"] == EPHEMERAL


def test_cache_reads_and_writes_are_charged_at_their_own_prices() -> None:
    price = Price.from_usd(
        input_per_million=3.0,
        output_per_million=15.0,
        cached_input_per_million=0.3,
        cache_write_per_million=3.75,
    )
    # 1,000 uncached at $3, 4,000 read at $0.30, 2,000 written at $3.75, 500 out at $15 (micros).
    assert price.tokens(7000, 500, 4000, 2000) == 3000 + 1200 + 7500 + 7500
    assert (
        cost_of(
            7000,
            500,
            3_000_000,
            15_000_000,
            cached_tokens=4000,
            cached_input_per_million=300_000,
            cache_write_tokens=2000,
            cache_write_per_million=3_750_000,
        )
        == 19200
    )
    # Without cache prices every prompt token is an input token.
    assert Price.from_usd(input_per_million=3.0).tokens(7000, 0, 4000, 2000) == 21000
    # A usage claiming more cache tokens than prompt tokens is charged for the prompt only.
    assert price.tokens(100, 0, 80, 80) == -(-(80 * 300_000 + 20 * 3_750_000) // 1_000_000)


def test_the_reservation_takes_every_prompt_token_at_the_dearest_price() -> None:
    price = Price.from_usd(input_per_million=3.0, output_per_million=15.0, cache_write_per_million=3.75)
    assert estimate_cost(price, 1000, 100) == 3750 + 1500


def test_config_reads_cache_prices_and_affinity(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        """
providers: {p: {type: openai, base_url: "http://127.0.0.1:1/v1"}}
routing: {prompt_cache_affinity_entries: 50}
models:
  - id: m
    provider: p
    prompt_cache_affinity: true
    prompt_cache_affinity_ttl: 90
    pricing: {input_per_million: 3, cache_read_per_million: 0.3, cache_write_per_million: 3.75}
"""
    )
    config = load_config(path, {})
    model = config.models[0]
    assert (model.prompt_cache_affinity, model.prompt_cache_affinity_ttl) == (True, 90)
    assert (model.pricing.cache_read_per_million, model.pricing.cache_write_per_million) == (0.3, 3.75)
    assert config.routing.prompt_cache_affinity_entries == 50
    path.write_text(path.read_text().replace("prompt_cache_affinity_ttl: 90", "prompt_cache_affinity_ttl: 0"))
    with pytest.raises(ConfigError, match="prompt_cache_affinity_ttl"):
        load_config(path, {})
