"""Selection: filters, order, sort and the weighted shuffle, on catalogue deployments."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from server.config import PricingConfig
from server.routing.catalogue import Deployment
from server.routing.selection import eligible, price_of, rank
from server.routing.stats import LatencyStats
from siraya.router.v1 import chat_pb2, common_pb2

CHEAP = Deployment(
    "cheap",
    "m",
    pricing=PricingConfig(input_per_million=1, output_per_million=2),
    supported_parameters=frozenset({"temperature"}),
)
PRICEY = Deployment(
    "pricey",
    "m",
    pricing=PricingConfig(input_per_million=5, output_per_million=15),
    supported_parameters=frozenset({"temperature", "seed", "logprobs"}),
)
UNPRICED = Deployment("unpriced", "m")
ALL = [PRICEY, CHEAP, UNPRICED]
KNOWN = frozenset({"cheap", "pricey", "unpriced"})


def prefs(**fields: object) -> common_pb2.ProviderPreferences:
    return common_pb2.ProviderPreferences(**fields)  # type: ignore[arg-type]


def providers(deployments: list[Deployment]) -> list[str]:
    return [d.provider for d in deployments]


def test_only_ignore_and_unknown_providers_filter() -> None:
    assert providers(eligible(ALL, prefs(only=["cheap", "pricey"]), KNOWN)) == ["pricey", "cheap"]
    assert providers(eligible(ALL, prefs(ignore=["pricey"]), KNOWN)) == ["cheap", "unpriced"]
    assert providers(eligible(ALL, prefs(only=["cheap/m"]), KNOWN)) == ["cheap"], "a deployment key names one"
    assert providers(eligible(ALL, prefs(), frozenset({"cheap"}))) == ["cheap"]


def test_max_price_excludes_what_it_can_compare() -> None:
    ceiling = prefs(max_price=common_pb2.MaxPrice(prompt=2, completion=10))
    assert providers(eligible(ALL, ceiling, KNOWN)) == ["cheap", "unpriced"]


def test_require_parameters_keeps_deployments_that_support_every_field() -> None:
    params = chat_pb2.ChatCompletionParams(model="m", seed=7, temperature=0.5)
    required = prefs(require_parameters=True)
    assert providers(eligible(ALL, required, KNOWN, params)) == ["pricey"]
    assert providers(eligible(ALL, prefs(), KNOWN, params)) == ["pricey", "cheap", "unpriced"]


def test_sort_by_price_puts_unpriced_last() -> None:
    assert providers(rank(list(ALL), prefs(sort="price"), "chat")) == ["cheap", "pricey", "unpriced"]
    assert price_of(CHEAP.pricing, "chat") == 3
    assert price_of(PricingConfig(per_image=0.04), "image") == 0.04


def test_sort_by_latency_and_throughput_uses_the_ewma() -> None:
    stats = LatencyStats(alpha=0.5)
    stats.observe_latency("cheap/m", 1.0)
    stats.observe_latency("pricey/m", 0.2)
    stats.observe_latency("pricey/m", 0.4)  # EWMA 0.3
    stats.observe_latency("unpriced/m", 0.5)
    assert stats.latency("pricey/m") == pytest.approx(0.3)
    assert providers(rank(list(ALL), prefs(sort="latency"), "chat", stats)) == ["pricey", "unpriced", "cheap"]
    stats.observe_throughput("cheap/m", 90)
    stats.observe_throughput("pricey/m", 30)
    # Never measured sorts first, so that it gets measured.
    by_throughput = rank(list(ALL), prefs(sort="throughput"), "chat", stats)
    assert providers(by_throughput) == ["unpriced", "cheap", "pricey"]


def test_order_comes_first_then_the_rest_unless_fallbacks_are_off() -> None:
    rng = random.Random(1)
    ordered = rank(list(ALL), prefs(order=["unpriced", "cheap"]), "chat", rng=rng)
    assert providers(ordered) == ["unpriced", "cheap", "pricey"]
    strict = rank(list(ALL), prefs(order=["unpriced", "cheap"], allow_fallbacks=False), "chat", rng=rng)
    assert providers(strict) == ["unpriced", "cheap"]
    assert len(rank(list(ALL), prefs(allow_fallbacks=False), "chat", rng=rng)) == 1


def test_weighted_shuffle_follows_the_weights() -> None:
    heavy, light = Deployment("heavy", "m", weight=3), Deployment("light", "m", weight=1)
    never = Deployment("never", "m", weight=0)
    rng = random.Random(42)
    firsts = Counter(rank([heavy, light, never], prefs(), "chat", rng=rng)[0].provider for _ in range(4000))
    assert firsts["never"] == 0
    assert 0.71 < firsts["heavy"] / 4000 < 0.79
