"""Money in integer micro-dollars: conversions and the charge for a usage."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest

from server.accounts.money import (
    Price,
    cost_of,
    estimate_cost,
    image_cost,
    micros_to_decimal,
    micros_to_usd,
    usd_to_micros,
    video_cost,
    worst_case_completion_tokens,
)
from server.config import PricingConfig


def test_usd_converts_from_its_decimal_text() -> None:
    assert usd_to_micros(0.1) == 100_000
    assert usd_to_micros(0.15) == 150_000
    assert usd_to_micros(3) == 3_000_000
    assert usd_to_micros("0.0000005") == 1  # half a micro rounds up
    assert usd_to_micros(Decimal("12.3456789")) == 12_345_679
    assert sum(usd_to_micros(0.1) for _ in range(10)) == usd_to_micros(1.0)
    assert micros_to_usd(1_500_000) == 1.5
    assert micros_to_decimal(1) == Decimal("0.000001")
    with pytest.raises(ValueError):
        usd_to_micros(float("nan"))


def test_token_cost_is_exact_and_rounds_up_once() -> None:
    # $3 / $15 per million: 1000 prompt + 500 completion = 0.003 + 0.0075 USD.
    assert cost_of(1000, 500, 3_000_000, 15_000_000) == 10_500
    # $0.15 per million: 7 tokens cost 1.05 micros, charged as 2.
    assert cost_of(7, 0, 150_000, 0) == 2
    assert cost_of(0, 0, 150_000, 600_000) == 0
    # Cached tokens are part of the prompt and billed at their own price.
    assert cost_of(1000, 0, 2_000_000, 0, cached_tokens=800, cached_input_per_million=500_000) == 800
    assert cost_of(1000, 0, 2_000_000, 0, cached_tokens=800) == 2000


def test_a_usd_price_passed_as_micros_is_refused() -> None:
    with pytest.raises(TypeError):
        cost_of(10, 10, 3.0, 15.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        cost_of(-1, 0, 1, 1)


def test_images_and_video() -> None:
    assert image_cost(3, 40_000) == 120_000
    assert video_cost(8, 100_000) == 800_000
    assert video_cost(5.5, 100_000) == 550_000
    assert video_cost(1 / 3, 10) == 4  # rounded up


def test_price_from_configuration() -> None:
    price = Price.from_pricing(PricingConfig(input_per_million=0.15, output_per_million=0.6, per_image=0.04))
    assert price == Price(input_per_million=150_000, output_per_million=600_000, per_image=40_000)
    assert price.tokens(1_000_000, 1_000_000) == 750_000
    assert price.images(2) == 80_000
    assert price.video(10) == 0  # no price configured: free


def test_the_reservation_covers_the_worst_case() -> None:
    price = Price.from_usd(input_per_million=1, output_per_million=2)
    assert estimate_cost(price, 100, 50) == 200
    assert estimate_cost(price, 100, None, context_window=1100) == 2100
    assert estimate_cost(price, 100, None, default_max_tokens=10) == 120
    assert worst_case_completion_tokens(None, 5000, context_window=4000) == 0


def test_a_price_checks_its_prices_once_when_made() -> None:
    with pytest.raises(TypeError):
        Price(input_per_million=0.15)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Price(output_per_million=-1)
    with pytest.raises(TypeError):
        Price(cached_input_per_million=True)  # type: ignore[arg-type]


def test_price_tokens_charges_what_cost_of_charges() -> None:
    rng = random.Random(7)
    for _ in range(2000):
        cached_price = rng.choice([None, rng.randrange(0, 3_000_000)])
        price = Price(rng.randrange(0, 5_000_000), rng.randrange(0, 20_000_000), cached_price)
        prompt, completion = rng.randrange(0, 200_000), rng.randrange(0, 50_000)
        cached = rng.randrange(0, prompt + 10)
        expected = cost_of(
            prompt,
            completion,
            price.input_per_million,
            price.output_per_million,
            cached_tokens=cached,
            cached_input_per_million=cached_price,
        )
        assert price.tokens(prompt, completion, cached) == expected


def test_price_tokens_refuses_what_cost_of_refuses() -> None:
    price = Price(input_per_million=150_000)
    with pytest.raises(TypeError):
        price.tokens(1.5, 2)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        price.tokens(True, 2)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        price.tokens(10, -1)
