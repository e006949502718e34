"""Prompt-cache affinity: what counts as the same prompt prefix, and how long and how many are kept."""

from __future__ import annotations

from typing import Any

from server.routing.affinity import PromptAffinity, prompt_prefix, stick
from server.routing.catalogue import Deployment
from siraya.router.codec.chat_request import decode_chat_request
from siraya.router.v1 import embeddings_pb2

TOOLS = [{"type": "function", "function": {"name": "Read", "parameters": {"type": "object"}}}]


def prefix(messages: list[Any], tools: list[Any] | None = None) -> bytes | None:
    body: dict[str, Any] = {"model": "m", "messages": messages}
    if tools is not None:
        body["tools"] = tools
    return prompt_prefix(decode_chat_request(body))


def test_every_turn_of_a_conversation_shares_the_prefix_wherever_its_breakpoint_sits() -> None:
    opening = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "hi", "cache_control": {"type": "ephemeral"}}]},
    ]
    later = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "hi"}]},
        {"role": "assistant", "content": "hello"},
        {
            "role": "user",
            "content": [{"type": "text", "text": "more", "cache_control": {"type": "ephemeral"}}],
        },
    ]
    assert prefix(opening, TOOLS) == prefix(later, TOOLS) is not None


def test_the_system_prompt_tools_and_first_user_turn_each_change_the_prefix() -> None:
    base = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]
    keys = {
        prefix(base, TOOLS),
        prefix(base),
        prefix([{"role": "system", "content": "Be long."}, base[1]], TOOLS),
        prefix([base[0], {"role": "user", "content": "hello"}], TOOLS),
        prefix([base[0], {"role": "user", "content": [{"type": "text", "text": "hi"}]}], TOOLS),
    }
    assert len(keys) == 5


def test_only_chat_requests_have_a_prefix() -> None:
    assert prompt_prefix(embeddings_pb2.EmbeddingParams(model="m")) is None
    assert prompt_prefix(None) is None


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_remembered_deployment_expires_its_ttl_after_the_last_use() -> None:
    clock = Clock()
    affinity = PromptAffinity(clock=clock)
    affinity.remember("model", b"p", "east/gpt", ttl=10)
    clock.now += 9
    assert affinity.preferred("model", b"p") == "east/gpt"
    affinity.remember("model", b"p", "east/gpt", ttl=10)  # used again: ten more seconds
    clock.now += 9
    assert affinity.preferred("model", b"p") == "east/gpt"
    assert affinity.preferred("other-model", b"p") is None
    clock.now += 1.5
    assert affinity.preferred("model", b"p") is None
    assert len(affinity) == 0


def test_the_map_is_bounded_least_recently_used_out_first() -> None:
    affinity = PromptAffinity(max_entries=2)
    affinity.remember("m", b"a", "east/x", ttl=60)
    affinity.remember("m", b"b", "west/x", ttl=60)
    affinity.remember("m", b"a", "east/x", ttl=60)
    affinity.remember("m", b"c", "north/x", ttl=60)
    assert len(affinity) == 2
    assert affinity.preferred("m", b"b") is None
    assert (affinity.preferred("m", b"a"), affinity.preferred("m", b"c")) == ("east/x", "north/x")


def test_stick_moves_the_remembered_deployment_first_and_keeps_the_rest_as_fallbacks() -> None:
    east, west, north = (Deployment(name, "x") for name in ("east", "west", "north"))
    assert stick([east, west, north], "north/x") == [north, east, west]
    assert stick([east, west], "north/x") == [east, west]
    affinity = PromptAffinity()
    affinity.remember("m", b"p", "west/x", ttl=60)
    assert affinity.order("m", b"p", [east, west, north]) == [west, east, north]
