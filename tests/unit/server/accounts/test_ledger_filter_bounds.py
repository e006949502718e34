"""A ledger query's bounds are refused with a 400 when no store could hold them, on REST and gRPC
alike: costs past what micro-dollars in 64 bits hold, times that are not finite (schemathesis found
each as a 500 through /v1/usage and /v1/generations; a gRPC double carries NaN and infinities)."""

from __future__ import annotations

import math

import pytest

from server.accounts.ledger_queries import parse_time
from server.accounts.money import MAX_USD
from server.errors import InvalidRequest
from server.services.usage import ledger_filter
from siraya.router.v1 import admin_pb2


@pytest.mark.parametrize("name", ["min_cost", "max_cost"])
@pytest.mark.parametrize("value", [math.nan, math.inf, -1.0, MAX_USD + 1.0, 6.2e16])
def test_a_cost_bound_no_store_holds_is_refused(name: str, value: float) -> None:
    with pytest.raises(InvalidRequest) as refused:
        ledger_filter(admin_pb2.GenerationFilter(**{name: value}), None)
    assert refused.value.param == name


def test_the_largest_cost_bound_is_accepted() -> None:
    where = ledger_filter(admin_pb2.GenerationFilter(min_cost=0.0, max_cost=float(MAX_USD)), None)
    assert (where.min_cost_micros, where.max_cost_micros) == (0, MAX_USD * 1_000_000)


@pytest.mark.parametrize("name", ["since", "until"])
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_a_time_bound_that_is_not_finite_is_refused(name: str, value: float) -> None:
    with pytest.raises(InvalidRequest) as refused:
        ledger_filter(admin_pb2.GenerationFilter(**{name: value}), None)
    assert refused.value.param == name


@pytest.mark.parametrize("text", ["nan", "inf", "-Infinity", "1e400", "1e308d"])
def test_parse_time_reads_no_infinite_moment(text: str) -> None:
    assert parse_time(text, 1_767_225_600.0) is None


@pytest.mark.parametrize(("text", "moment"), [("1767225600", 1767225600.0), ("1h", 1767225600.0 - 3600)])
def test_parse_time_still_reads_times_and_durations(text: str, moment: float) -> None:
    assert parse_time(text, 1767225600.0) == moment
