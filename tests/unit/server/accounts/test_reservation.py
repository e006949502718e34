"""The reservation and the reply cap it buys: what is held always covers what can be charged."""

from __future__ import annotations

import dataclasses

import pytest

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


def test_a_client_cap_is_reserved_whole() -> None:
    demand = Demand(max_output_tokens=300, max_output_given=True)
    low, high = bounds(ENTRY, demand, 100, [CHEAP])
    assert low == high == worst_token_cost(CHEAP, 100, 300)


def test_without_a_client_cap_the_ceiling_is_the_models_max_output() -> None:
    demand = Demand(max_output_tokens=4096, max_output_given=False, choices=2)
    assert reply_ceiling(ENTRY, demand, 100) == 2000
    low, high = bounds(ENTRY, demand, 100, [CHEAP])
    assert (low, high) == (worst_token_cost(CHEAP, 100, 2), worst_token_cost(CHEAP, 100, 2000))
    unknown = dataclasses.replace(ENTRY, max_output_tokens=None)
    assert reply_ceiling(unknown, demand, 100) == 2 * 7900  # what the window leaves
    neither = dataclasses.replace(unknown, context_window=None)
    assert reply_ceiling(neither, demand, 100) == 2 * DEFAULT_MAX_OUTPUT_TOKENS


@pytest.mark.parametrize("held", [7, 100, 1234, 2_222, 10_000])
def test_the_cap_is_what_the_held_amount_pays_for_on_the_dearest_deployment(held: int) -> None:
    demand = Demand(max_output_tokens=4096, max_output_given=False)
    prompt = 300
    prices = [CHEAP, DEAR]
    low, _ = bounds(ENTRY, demand, prompt, prices)
    if held < low:
        return
    cap = reply_cap(ENTRY, demand, prompt, held, prices)
    assert 1 <= cap <= 1000
    assert all(worst_token_cost(price, prompt, cap) <= held for price in prices)
    if cap < 1000:  # one more token would not be paid for on the dearest deployment
        assert any(worst_token_cost(price, prompt, cap + 1) > held for price in prices)


def test_the_cap_is_per_choice() -> None:
    demand = Demand(max_output_tokens=4096, max_output_given=False, choices=4)
    held = worst_token_cost(CHEAP, 0, 400)
    assert reply_cap(ENTRY, demand, 0, held, [CHEAP]) == 100


def test_free_output_is_capped_only_by_the_model() -> None:
    free_output = Price.from_usd(input_per_million=1.0, output_per_million=0.0)
    demand = Demand(max_output_tokens=4096, max_output_given=False)
    assert reply_cap(ENTRY, demand, 10, 1, [free_output]) == 1000


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
