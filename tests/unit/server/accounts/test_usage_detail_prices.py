"""Each part of a usage is charged at its own price where the model has one (issue #18, item 3):
cached input, cache writes, audio in, reasoning, audio out, images and video seconds; with no price
of its own, a part stays in the prompt (input price) or the reply (output price). The reservation's
worst case takes the dearest of them, so a limit still holds."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from server.accounts.accounting import AccountMetering
from server.accounts.keys import KeyManager, NewKey
from server.accounts.ledger_writer import LedgerWriter
from server.accounts.memory_limits import MemoryLimitStore
from server.accounts.metering import Consumption, Demand
from server.accounts.money import Price, cost_of, worst_token_cost
from server.accounts.sqlite_accounts import SqliteAccountStore
from server.config import PricingConfig
from server.gateway_usage import response_consumption, usage_consumption, usage_consumption_json
from server.providers.base import RequestContext
from server.providers.gemini.response import usage_from
from server.routing.catalogue import CatalogueEntry, Deployment
from siraya.router.v1 import common_pb2, responses_pb2

# USD per million: every part its own, distinct price, so a part billed at the wrong one shows.
DETAILED = PricingConfig(
    input_per_million=1.0,
    output_per_million=2.0,
    cache_read_per_million=0.25,
    cache_write_per_million=1.25,
    audio_input_per_million=40.0,
    audio_output_per_million=80.0,
    reasoning_per_million=3.0,
    per_image=0.04,
    per_video_second=0.1,
)


def test_each_part_is_billed_at_its_own_price() -> None:
    price = Price.from_pricing(DETAILED)
    charged = price.tokens(
        10_000,
        5_000,
        cached_tokens=2_000,
        cache_write_tokens=1_000,
        reasoning_tokens=1_500,
        audio_prompt_tokens=500,
        audio_completion_tokens=400,
    )
    # prompt: 6,500 text x $1 + 2,000 cached x $0.25 + 1,000 written x $1.25 + 500 audio x $40
    # reply: 3,100 text x $2 + 1,500 reasoning x $3 + 400 audio x $80 (per million, in micros)
    assert charged == 6_500 + 500 + 1_250 + 20_000 + 6_200 + 4_500 + 32_000
    assert price.images(3) == 120_000
    assert price.video(4.5) == 450_000


def test_a_part_without_a_price_of_its_own_stays_in_the_prompt_or_the_reply() -> None:
    plain = Price.from_pricing(PricingConfig(input_per_million=1.0, output_per_million=2.0))
    assert not plain.prices_details
    same = plain.tokens(
        10_000, 5_000, reasoning_tokens=1_500, audio_prompt_tokens=500, audio_completion_tokens=9
    )
    assert same == plain.tokens(10_000, 5_000) == 20_000
    only_reasoning = Price.from_pricing(
        PricingConfig(input_per_million=1.0, output_per_million=2.0, reasoning_per_million=3.0)
    )
    assert only_reasoning.tokens(10_000, 5_000, reasoning_tokens=1_000, audio_prompt_tokens=500) == (
        10_000 + 4_000 * 2 + 1_000 * 3
    )


def test_parts_claimed_beyond_their_whole_are_capped() -> None:
    price = Price.from_pricing(DETAILED)
    # 100 prompt tokens cannot hold 80 cached + 80 audio; a reply of 10 cannot hold 50 reasoning.
    capped = price.tokens(100, 10, cached_tokens=80, audio_prompt_tokens=80, reasoning_tokens=50)
    assert capped == price.tokens(100, 10, cached_tokens=80, audio_prompt_tokens=20, reasoning_tokens=10)


def test_price_tokens_agrees_with_cost_of_on_random_usages() -> None:
    rng = random.Random(18)
    for _ in range(1000):
        optional = [rng.choice([None, rng.randrange(0, 90_000_000)]) for _ in range(5)]
        price = Price(
            rng.randrange(0, 5_000_000),
            rng.randrange(0, 20_000_000),
            optional[0],
            cache_write_per_million=optional[1],
            audio_input_per_million=optional[2],
            audio_output_per_million=optional[3],
            reasoning_per_million=optional[4],
        )
        prompt, completion = rng.randrange(0, 100_000), rng.randrange(0, 50_000)
        parts = {
            "cached_tokens": rng.randrange(0, prompt + 5),
            "cache_write_tokens": rng.randrange(0, prompt + 5),
            "audio_prompt_tokens": rng.randrange(0, prompt + 5),
            "reasoning_tokens": rng.randrange(0, completion + 5),
            "audio_completion_tokens": rng.randrange(0, completion + 5),
        }
        expected = cost_of(
            prompt,
            completion,
            price.input_per_million,
            price.output_per_million,
            cached_input_per_million=price.cached_input_per_million,
            cache_write_per_million=price.cache_write_per_million,
            audio_input_per_million=price.audio_input_per_million,
            audio_output_per_million=price.audio_output_per_million,
            reasoning_per_million=price.reasoning_per_million,
            **parts,
        )
        assert price.tokens(prompt, completion, **parts) == expected
        # The reservation's worst case is never below what any split of the same counts costs.
        assert worst_token_cost(price, prompt, completion) >= expected


def test_the_usage_readers_keep_audio_and_the_upstreams_cost() -> None:
    usage = common_pb2.Usage(prompt_tokens=100, completion_tokens=50)
    usage.prompt_tokens_details.audio_tokens = 30
    usage.prompt_tokens_details.cached_tokens = 20
    usage.prompt_tokens_details.cache_creation_tokens = 10
    usage.completion_tokens_details.audio_tokens = 12
    usage.completion_tokens_details.reasoning_tokens = 7
    read = usage_consumption(usage)
    assert (read.audio_prompt_tokens, read.audio_completion_tokens, read.reasoning_tokens) == (30, 12, 7)
    assert (read.cached_tokens, read.cache_write_tokens) == (20, 10)
    relayed = usage_consumption_json(
        {
            "prompt_tokens": 100,
            "completion_tokens": 50,
            "prompt_tokens_details": {"audio_tokens": 30, "cached_tokens": 20},
            "completion_tokens_details": {"audio_tokens": 12, "reasoning_tokens": 7},
            "cost": 0.00042,
        }
    )
    assert (relayed.audio_prompt_tokens, relayed.audio_completion_tokens) == (30, 12)
    assert relayed.reported_cost_micros == 420
    assert usage_consumption_json({"prompt_tokens": 1, "cost": "free"}).reported_cost_micros is None
    assert usage_consumption_json({"prompt_tokens": 1}).reported_cost_micros is None
    response = response_consumption(responses_pb2.ResponseUsage(input_tokens=5, output_tokens=6, cost=0.5))
    assert response.reported_cost_micros == 500_000
    assert response_consumption(responses_pb2.ResponseUsage(input_tokens=5)).reported_cost_micros is None


def test_gemini_audio_modality_becomes_the_audio_details() -> None:
    usage = usage_from(
        {
            "promptTokenCount": 120,
            "candidatesTokenCount": 40,
            "promptTokensDetails": [
                {"modality": "TEXT", "tokenCount": 20},
                {"modality": "AUDIO", "tokenCount": 100},
            ],
            "candidatesTokensDetails": [{"modality": "AUDIO", "tokenCount": 40}],
        }
    )
    assert usage.prompt_tokens_details.audio_tokens == 100
    assert usage.completion_tokens_details.audio_tokens == 40
    text_only = usage_from(
        {"promptTokenCount": 3, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 3}]}
    )
    assert not text_only.prompt_tokens_details.HasField("audio_tokens")


@pytest.mark.parametrize(
    ("consumed", "expected"),
    [
        (Consumption(prompt_tokens=1_000, cached_tokens=1_000), 250),
        (Consumption(prompt_tokens=1_000, cache_write_tokens=1_000), 1_250),
        (Consumption(prompt_tokens=1_000, audio_prompt_tokens=1_000), 40_000),
        (Consumption(completion_tokens=1_000, reasoning_tokens=1_000), 3_000),
        (Consumption(completion_tokens=1_000, audio_completion_tokens=1_000), 80_000),
        (Consumption(completion_tokens=1_000), 2_000),
        (Consumption(images=2), 80_000),
        (Consumption(video_seconds=3.0), 300_000),
    ],
)
async def test_settlement_charges_each_part_at_its_price(
    tmp_path: Path, consumed: Consumption, expected: int
) -> None:
    deployment = Deployment("fake", "audio-model")
    entry = CatalogueEntry(
        id="detailed",
        kind="chat",
        owned_by="fake",
        created=0,
        context_window=None,
        pricing=DETAILED,
        deployments=(deployment,),
    )
    store = SqliteAccountStore(tmp_path / "accounts.db")
    metering = AccountMetering(store, MemoryLimitStore(), LedgerWriter(store, flush_interval=0.01))
    try:
        key, _ = await KeyManager(store).create(NewKey(name="k", credit_limit=10.0))
        meter = await metering.admit(
            key, entry, Demand(prompt_tokens=1_000, max_output_tokens=1_000), RequestContext("r")
        )
        assert await meter.settle(deployment, consumed) == pytest.approx(expected / 1_000_000)
        balance = await store.balance(key.id)
        assert balance is not None and balance.used == expected
    finally:
        await metering.close()
