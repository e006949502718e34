"""The response cache's parts: the in-process LRU's byte bound and TTL, the canonical key, the
sampling rule, the request header, and the Redis store against the local server."""

from __future__ import annotations

import asyncio
import secrets

import pytest

from server.errors import InvalidRequest
from server.response_cache.keys import cache_key, is_sampled, parse_directive
from server.response_cache.stores import MemoryCacheStore, RedisCacheStore
from siraya.router.v1 import chat_pb2, embeddings_pb2, responses_pb2
from tests.unit.server.accounts.accounts_backends import REDIS_URL, delete_prefix, redis_unavailable


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_eviction_keeps_the_store_within_its_byte_bound() -> None:
    store = MemoryCacheStore(max_bytes=1000)
    for index in range(50):
        await store.put(f"k{index}", bytes(300), ttl=60)
        assert store.size_bytes() is not None and store.size_bytes() <= 1000  # type: ignore[operator]
    assert len(store) == 3
    assert await store.get("k0") is None and await store.get("k49") == bytes(300)
    await store.put("huge", bytes(1001), ttl=60)  # larger than the whole bound: not kept
    assert await store.get("huge") is None and len(store) == 3


async def test_the_least_recently_used_entry_goes_first() -> None:
    store = MemoryCacheStore(max_bytes=30)
    for name in ("a", "b", "c"):
        await store.put(name, bytes(10), ttl=60)
    assert await store.get("a") is not None  # a is now the most recently used
    await store.put("d", bytes(10), ttl=60)
    assert await store.get("b") is None
    assert [await store.get(name) is not None for name in ("a", "c", "d")] == [True, True, True]
    await store.put("a", bytes(25), ttl=60)  # replacing an entry counts its new size only
    assert store.size_bytes() == 25 and await store.get("d") is None


async def test_entries_expire() -> None:
    clock = Clock()
    store = MemoryCacheStore(max_bytes=100, clock=clock)
    await store.put("k", b"value", ttl=5)
    clock.now += 4.9
    assert await store.get("k") == b"value"
    clock.now += 0.2
    assert await store.get("k") is None and store.size_bytes() == 0


def chat(text: str, **fields: object) -> chat_pb2.ChatCompletionParams:
    params = chat_pb2.ChatCompletionParams(model="alias", **fields)  # type: ignore[arg-type]
    params.messages.add(role=chat_pb2.CHAT_ROLE_USER, text=text)
    return params


def test_the_key_covers_what_changes_the_answer_and_only_that() -> None:
    base = cache_key("key_a", "whole/json", "gpt", chat("hi", temperature=0))
    # Not part of the answer: the model name as written, the user, metadata, store, stream.
    same = chat("hi", temperature=0, user="u", store=True, stream=True)
    same.model = "other-alias"
    same.metadata["trace"] = "1"
    assert cache_key("key_a", "whole/json", "gpt", same) == base
    # Part of it: the messages, sampling, tools, the format, the model served, the form, the namespace.
    assert cache_key("key_a", "whole/json", "gpt", chat("hello", temperature=0)) != base
    assert cache_key("key_a", "whole/json", "gpt", chat("hi", temperature=0, max_tokens=5)) != base
    with_tool = chat("hi", temperature=0)
    with_tool.tools.add(type="function").function.name = "f"
    assert cache_key("key_a", "whole/json", "gpt", with_tool) != base
    formatted = chat("hi", temperature=0)
    formatted.response_format.type = "json_object"
    assert cache_key("key_a", "whole/json", "gpt", formatted) != base
    assert cache_key("key_a", "whole/json", "gpt-2", chat("hi", temperature=0)) != base
    assert cache_key("key_a", "stream/json", "gpt", chat("hi", temperature=0)) != base
    assert cache_key("key_b", "whole/json", "gpt", chat("hi", temperature=0)) != base


def test_map_order_does_not_change_the_key() -> None:
    first, second = chat("hi", temperature=0), chat("hi", temperature=0)
    first.logit_bias.update({"1": 1, "2": -1})
    second.logit_bias.update({"2": -1, "1": 1})
    assert cache_key("k", "f", "m", first) == cache_key("k", "f", "m", second)


def test_what_counts_as_sampled() -> None:
    assert is_sampled(chat("hi"))  # the upstream's default temperature is 1
    assert is_sampled(chat("hi", temperature=0.3))
    assert not is_sampled(chat("hi", temperature=0))
    assert not is_sampled(chat("hi", temperature=0.3, seed=1))
    assert is_sampled(responses_pb2.ResponseParams(model="m", input_text="x"))
    assert not is_sampled(responses_pb2.ResponseParams(model="m", input_text="x", temperature=0))
    assert not is_sampled(embeddings_pb2.EmbeddingParams(model="m", text="x"))


def test_the_request_header() -> None:
    assert parse_directive("no-store").bypass
    directive = parse_directive(" TTL=60 ")
    assert not directive.bypass and directive.ttl == 60
    for bad in ("", "ttl=", "ttl=-1", "ttl=nan", "forever", "max-age=5"):
        with pytest.raises(InvalidRequest):
            parse_directive(bad)


async def test_the_redis_store_expires_entries() -> None:
    reason = redis_unavailable()
    if reason:
        pytest.skip(reason)
    prefix = f"siraya-test-cache-{secrets.token_hex(4)}:"
    store = RedisCacheStore.from_url(REDIS_URL, prefix)
    try:
        await store.put("k", b"\x00value", ttl=0.2)
        assert await store.get("k") == b"\x00value"
        assert await store.get("other") is None
        await asyncio.sleep(0.4)
        assert await store.get("k") is None
    finally:
        await store.close()
        await delete_prefix(prefix)


def test_the_semantic_index_finds_the_nearest_text_above_the_threshold() -> None:
    from server.response_cache.semantic import SemanticIndex

    index = SemanticIndex(max_entries=2)
    index.add("t", [1.0, 0.0, 0.0], "answer-x")
    index.add("t", [0.0, 1.0, 0.0], "answer-y")
    assert index.nearest("t", [0.99, 0.1, 0.0], 0.95) == "answer-x"
    assert index.nearest("t", [0.7, 0.7, 0.0], 0.95) is None  # 0.707 alike: below the threshold
    assert index.nearest("other-template", [1.0, 0.0, 0.0], 0.5) is None
    assert index.nearest("t", [0.0, 0.0, 0.0], 0.1) is None
    index.add("t", [0.0, 0.0, 1.0], "answer-z")  # the oldest text is forgotten
    assert index.nearest("t", [1.0, 0.0, 0.0], 0.5) is None
    assert index.nearest("t", [0.0, 0.0, 2.0], 0.95) == "answer-z"


def test_only_single_turn_requests_take_part() -> None:
    from server.response_cache.semantic import single_turn_text, template_key

    single = chat("What is up?")
    single.messages.insert(0, chat_pb2.ChatMessage(role=chat_pb2.CHAT_ROLE_SYSTEM, text="Be brief."))
    assert single_turn_text(single) == "What is up?"
    two_turns = chat("first")
    two_turns.messages.add(role=chat_pb2.CHAT_ROLE_ASSISTANT, text="ok")
    two_turns.messages.add(role=chat_pb2.CHAT_ROLE_USER, text="second")
    assert single_turn_text(two_turns) is None
    with_tools = chat("x")
    with_tools.tools.add(type="function").function.name = "f"
    assert single_turn_text(with_tools) is None
    assert single_turn_text(responses_pb2.ResponseParams(model="m", input_text="hey")) == "hey"
    assert single_turn_text(embeddings_pb2.EmbeddingParams(model="m", text="x")) is None
    # The template is the request without its text: same for any text, not for other settings.
    assert template_key("k", "s", "m", chat("a")) == template_key("k", "s", "m", chat("b"))
    assert template_key("k", "s", "m", chat("a")) != template_key("k", "s", "m", chat("a", max_tokens=3))
