"""The reservation and the reply cap it buys: what is held always covers what can be charged, on
whichever of the requested model and its fallbacks serves."""

from __future__ import annotations

import dataclasses

import pytest

from server.accounts.candidates import CandidateCache, Candidates, candidates
from server.accounts.metering import Demand
from server.accounts.money import Price, worst_token_cost
from server.accounts.reservation import (
    DEFAULT_MAX_OUTPUT_TOKENS,
    apply_output_cap,
    bounds,
    reply_cap,
    reply_ceiling,
)
from server.config import PricingConfig
from server.routing.catalogue import CatalogueEntry, Deployment
from siraya.router.v1 import chat_pb2, responses_pb2

CHEAP = Price.from_usd(input_per_million=1.0, output_per_million=2.0)
DEAR = Price.from_usd(input_per_million=3.0, output_per_million=15.0, cache_write_per_million=3.75)
ENTRY = CatalogueEntry(
    id="m",
    kind="chat",
    owned_by="x",
    created=0,
    context_window=8000,
    pricing=PricingConfig(input_per_million=1.0, output_per_million=2.0),
    deployments=(Deployment("x", "m"),),
    max_output_tokens=1000,
)


def only(entry: CatalogueEntry, *prices: Price) -> Candidates:
    """`entry` alone, its deployments at `prices`."""
    return Candidates((entry,), prices)


def test_a_client_cap_is_reserved_whole() -> None:
    demand = Demand(max_output_tokens=300, max_output_given=True)
    low, high = bounds(only(ENTRY, CHEAP), demand, 100)
    assert low == high == worst_token_cost(CHEAP, 100, 300)


def test_without_a_client_cap_the_ceiling_is_the_models_max_output() -> None:
    demand = Demand(max_output_tokens=4096, max_output_given=False, choices=2)
    assert reply_ceiling(only(ENTRY), demand, 100) == 2000
    low, high = bounds(only(ENTRY, CHEAP), demand, 100)
    assert (low, high) == (worst_token_cost(CHEAP, 100, 2), worst_token_cost(CHEAP, 100, 2000))
    unknown = dataclasses.replace(ENTRY, max_output_tokens=None)
    assert reply_ceiling(only(unknown), demand, 100) == 2 * 7900  # what the window leaves
    neither = dataclasses.replace(unknown, context_window=None)
    assert reply_ceiling(only(neither), demand, 100) == 2 * DEFAULT_MAX_OUTPUT_TOKENS


@pytest.mark.parametrize("held", [7, 100, 1234, 2_222, 10_000])
def test_the_cap_is_what_the_held_amount_pays_for_on_the_dearest_deployment(held: int) -> None:
    demand = Demand(max_output_tokens=4096, max_output_given=False)
    prompt = 300
    prices = [CHEAP, DEAR]
    low, _ = bounds(only(ENTRY, *prices), demand, prompt)
    if held < low:
        return
    cap = reply_cap(only(ENTRY, *prices), demand, prompt, held)
    assert 1 <= cap <= 1000
    assert all(worst_token_cost(price, prompt, cap) <= held for price in prices)
    if cap < 1000:  # one more token would not be paid for on the dearest deployment
        assert any(worst_token_cost(price, prompt, cap + 1) > held for price in prices)


# Reasoning and audio reply tokens dearer than the rest of the reply, an audio prompt dearer than text.
DETAILED = Price.from_usd(
    input_per_million=2.0,
    output_per_million=8.0,
    reasoning_per_million=20.0,
    audio_input_per_million=40.0,
    audio_output_per_million=80.0,
)


def test_reasoning_and_audio_prices_are_inside_the_bounds_and_the_cap() -> None:
    given = Demand(max_output_tokens=300, max_output_given=True)
    assert bounds(only(ENTRY, DETAILED), given, 100) == (worst_token_cost(DETAILED, 100, 300),) * 2
    uncapped = Demand(max_output_tokens=4096, max_output_given=False)
    assert bounds(only(ENTRY, DETAILED), uncapped, 100)[1] == worst_token_cost(DETAILED, 100, 1000)
    held = worst_token_cost(DETAILED, 100, 250)
    cap = reply_cap(only(ENTRY, CHEAP, DETAILED), uncapped, 100, held)
    assert worst_token_cost(DETAILED, 100, cap) <= held < worst_token_cost(DETAILED, 100, cap + 1)


def test_the_cap_is_per_choice() -> None:
    demand = Demand(max_output_tokens=4096, max_output_given=False, choices=4)
    held = worst_token_cost(CHEAP, 0, 400)
    assert reply_cap(only(ENTRY, CHEAP), demand, 0, held) == 100


def test_free_output_is_capped_only_by_the_model() -> None:
    free_output = Price.from_usd(input_per_million=1.0, output_per_million=0.0)
    demand = Demand(max_output_tokens=4096, max_output_given=False)
    assert reply_cap(only(ENTRY, free_output), demand, 10, 1) == 1000


def test_the_cap_goes_on_the_field_the_upstreams_take() -> None:
    chat = chat_pb2.ChatCompletionParams(model="m")
    apply_output_cap(chat, 55, "max_completion_tokens")
    assert chat.HasField("max_completion_tokens") and not chat.HasField("max_tokens")
    chat = chat_pb2.ChatCompletionParams(model="m")
    apply_output_cap(chat, 55, "max_tokens")
    assert chat.max_tokens == 55 and not chat.HasField("max_completion_tokens")
    response = responses_pb2.ResponseParams(model="m")
    apply_output_cap(response, 77, "max_tokens")
    assert response.max_output_tokens == 77


def _model(model_id: str, pricing: PricingConfig, **limits: int | None) -> CatalogueEntry:
    return CatalogueEntry(
        id=model_id,
        kind="chat",
        owned_by="x",
        created=0,
        context_window=limits.get("context_window"),
        pricing=pricing,
        deployments=(Deployment("x", model_id, pricing=pricing),),
        max_output_tokens=limits.get("max_output_tokens"),
    )


CHEAP_MODEL = _model(
    "cheap", PricingConfig(input_per_million=1.0, output_per_million=2.0), max_output_tokens=1000
)
DEAR_MODEL = _model(
    "dear",
    PricingConfig(input_per_million=3.0, output_per_million=15.0, cache_write_per_million=3.75),
    max_output_tokens=600,
)


def test_the_bounds_are_at_the_dearest_price_of_every_model_that_may_serve() -> None:
    given = Demand(max_output_tokens=300, max_output_given=True)
    for models in (candidates(CHEAP_MODEL, [DEAR_MODEL]), candidates(DEAR_MODEL, [CHEAP_MODEL])):
        assert bounds(models, given, 100) == (worst_token_cost(DEAR, 100, 300),) * 2
    # Without a client cap, the ceiling is the smallest model's: one cap goes to every attempt.
    uncapped = Demand(max_output_tokens=4096, max_output_given=False)
    models = candidates(CHEAP_MODEL, [DEAR_MODEL])
    assert reply_ceiling(models, uncapped, 100) == 600
    assert bounds(models, uncapped, 100) == (worst_token_cost(DEAR, 100, 1), worst_token_cost(DEAR, 100, 600))
    # The requested model alone is bounded at its own price, as before.
    assert bounds(candidates(CHEAP_MODEL), uncapped, 100)[1] == worst_token_cost(CHEAP, 100, 1000)


def test_a_fallback_whose_limits_are_unknown_caps_the_ceiling_at_the_default() -> None:
    unknown = _model("unknown", PricingConfig(input_per_million=1.0, output_per_million=2.0))
    roomy = dataclasses.replace(CHEAP_MODEL, max_output_tokens=32_000)
    uncapped = Demand(max_output_tokens=4096, max_output_given=False, choices=2)
    assert reply_ceiling(candidates(roomy, [unknown]), uncapped, 100) == 2 * DEFAULT_MAX_OUTPUT_TOKENS
    windowed = dataclasses.replace(unknown, context_window=2100)
    assert reply_ceiling(candidates(roomy, [windowed]), uncapped, 100) == 2 * 2000


@pytest.mark.parametrize("held", [100, 1234, 5_000, 10_000, 100_000])
def test_the_cap_is_what_the_held_amount_pays_for_at_the_dearest_fallback(held: int) -> None:
    demand = Demand(max_output_tokens=4096, max_output_given=False)
    prompt = 50
    models = candidates(CHEAP_MODEL, [DEAR_MODEL])
    low, _ = bounds(models, demand, prompt)
    if held < low:
        return
    cap = reply_cap(models, demand, prompt, held)
    assert 1 <= cap <= 600
    assert worst_token_cost(DEAR, prompt, cap) <= held
    if cap < 600:
        assert worst_token_cost(DEAR, prompt, cap + 1) > held


def test_candidates_count_a_repeated_model_once_and_agree_on_the_cap_field() -> None:
    openai_only = dataclasses.replace(DEAR_MODEL, output_limit_field="max_completion_tokens")
    models = candidates(CHEAP_MODEL, [CHEAP_MODEL, DEAR_MODEL])
    assert models.models == (CHEAP_MODEL, DEAR_MODEL)
    assert set(models.prices) == {CHEAP, DEAR}
    assert candidates(openai_only).output_limit_field == "max_completion_tokens"
    # A cap only some of the upstreams read would leave the others uncapped.
    assert candidates(openai_only, [CHEAP_MODEL]).output_limit_field == "max_tokens"
    counted = dataclasses.replace(DEAR_MODEL, counting=(("o200k_base", 1.0),))
    assert set(candidates(CHEAP_MODEL, [counted]).counting) == {*CHEAP_MODEL.counting, ("o200k_base", 1.0)}


def test_the_cache_keeps_a_model_list_only_for_the_same_catalogue_entries() -> None:
    cache = CandidateCache()
    first = cache.get(CHEAP_MODEL, [DEAR_MODEL])
    assert cache.get(CHEAP_MODEL, [DEAR_MODEL]) is first
    assert cache.get(CHEAP_MODEL) is not first and cache.get(CHEAP_MODEL).prices == (CHEAP,)
    # The same ids from another catalogue (a reload, a passthrough model made per request) are priced again.
    repriced = _model("dear", PricingConfig(input_per_million=1.0, output_per_million=50.0))
    assert cache.get(CHEAP_MODEL, [repriced]).prices == (
        CHEAP,
        Price.from_usd(input_per_million=1.0, output_per_million=50.0),
    )
    small = CandidateCache(size=1)
    small.get(CHEAP_MODEL)
    small.get(DEAR_MODEL)
    assert small.get(DEAR_MODEL) is small.get(DEAR_MODEL)
