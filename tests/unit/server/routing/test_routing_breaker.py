"""Circuit breakers: the same contract in-process and in Redis, driven by a clock the test moves."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import pytest

from server.config import BreakerConfig
from server.routing.breaker import CLOSED, HALF_OPEN, OPEN, BreakerBoard, InProcessBreakers, RedisBreakers
from tests.unit.server.accounts.accounts_backends import REDIS_URL, delete_prefix, redis_unavailable

POLICY = BreakerConfig(consecutive_failures=3, failure_rate=0.5, window=60, min_requests=10, cooldown=30)


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["in_process", "redis"])
async def board(request: pytest.FixtureRequest, clock: Clock) -> AsyncIterator[BreakerBoard]:
    if request.param == "in_process":
        yield InProcessBreakers(clock)
        return
    reason = redis_unavailable()
    if reason:
        pytest.skip(reason)
    prefix = f"siraya-test:{secrets.token_hex(6)}:"
    breakers = RedisBreakers.from_url(REDIS_URL, prefix=prefix, clock=clock)
    try:
        yield breakers
    finally:
        await breakers.close()
        await delete_prefix(prefix)


async def fail(board: BreakerBoard, times: int, key: str = "p/m") -> None:
    for _ in range(times):
        await board.record(key, False, POLICY)


async def test_opens_after_consecutive_failures(board: BreakerBoard) -> None:
    await fail(board, 2)
    assert await board.allow("p/m", POLICY) and await board.state("p/m", POLICY) == CLOSED
    await fail(board, 1)
    assert await board.state("p/m", POLICY) == OPEN
    assert not await board.allow("p/m", POLICY)
    assert board.opened == 1
    assert await board.allow("other/m", POLICY), "one deployment's circuit never blocks another"


async def test_a_success_resets_the_consecutive_count(board: BreakerBoard) -> None:
    await fail(board, 2)
    await board.record("p/m", True, POLICY)
    await fail(board, 2)
    assert await board.state("p/m", POLICY) == CLOSED


async def test_half_open_lets_one_probe_per_cooldown(board: BreakerBoard, clock: Clock) -> None:
    await fail(board, 3)
    clock.now += 29.9
    assert not await board.allow("p/m", POLICY)
    clock.now += 0.1
    assert await board.state("p/m", POLICY) == HALF_OPEN
    assert await board.allow("p/m", POLICY), "the probe goes"
    assert not await board.allow("p/m", POLICY), "only one probe until it answers or the cooldown passes"
    clock.now += 30
    assert await board.allow("p/m", POLICY), "a probe whose client vanished never wedges the circuit"


async def test_a_failed_probe_keeps_it_open_a_good_one_closes_it(board: BreakerBoard, clock: Clock) -> None:
    await fail(board, 3)
    clock.now += 30
    assert await board.allow("p/m", POLICY)
    await fail(board, 1)
    clock.now += 29
    assert not await board.allow("p/m", POLICY)
    clock.now += 1
    assert await board.allow("p/m", POLICY)
    await board.record("p/m", True, POLICY)
    assert await board.state("p/m", POLICY) == CLOSED
    assert await board.allow("p/m", POLICY) and await board.allow("p/m", POLICY)


async def test_opens_on_failure_rate_over_the_window(board: BreakerBoard, clock: Clock) -> None:
    for _ in range(5):  # alternate, so never 3 in a row: 5 failures of 10 is the 50% rate
        await board.record("p/m", True, POLICY)
        await board.record("p/m", False, POLICY)
    assert await board.state("p/m", POLICY) == OPEN


async def test_the_rate_window_rolls_over(board: BreakerBoard, clock: Clock) -> None:
    for _ in range(4):
        await board.record("p/m", True, POLICY)
        await board.record("p/m", False, POLICY)
    clock.now += 61  # a fresh window: the old failures no longer count
    await board.record("p/m", True, POLICY)
    await board.record("p/m", False, POLICY)
    assert await board.state("p/m", POLICY) == CLOSED


async def test_disabled_breakers_never_open(board: BreakerBoard) -> None:
    off = BreakerConfig(enabled=False, consecutive_failures=1)
    for _ in range(5):
        await board.record("p/m", False, off)
    assert await board.allow("p/m", off)


async def test_redis_state_is_shared_between_instances(clock: Clock) -> None:
    reason = redis_unavailable()
    if reason:
        pytest.skip(reason)
    prefix = f"siraya-test:{secrets.token_hex(6)}:"
    first = RedisBreakers.from_url(REDIS_URL, prefix=prefix, clock=clock)
    second = RedisBreakers.from_url(REDIS_URL, prefix=prefix, clock=clock)
    try:
        await fail(first, 3)
        assert not await second.allow("p/m", POLICY)
        clock.now += 30
        assert await second.allow("p/m", POLICY), "the probe slot is taken once across replicas"
        assert not await first.allow("p/m", POLICY)
    finally:
        await first.close()
        await second.close()
        await delete_prefix(prefix)


async def test_an_unreachable_redis_lets_requests_through(clock: Clock) -> None:
    breakers = RedisBreakers.from_url("redis://127.0.0.1:1/0", clock=clock)
    try:
        await breakers.record("p/m", False, POLICY)
        assert await breakers.allow("p/m", POLICY)
    finally:
        await breakers.close()


async def test_state_changes_are_reported(board: BreakerBoard, clock: Clock) -> None:
    changes: list[tuple[str, str]] = []
    board.on_change = lambda key, state: changes.append((key, state))
    await fail(board, 3)
    clock.now += 30
    assert await board.allow("p/m", POLICY)
    await fail(board, 1)
    clock.now += 30
    assert await board.allow("p/m", POLICY)
    await board.record("p/m", True, POLICY)
    assert changes == [("p/m", s) for s in (OPEN, HALF_OPEN, OPEN, HALF_OPEN, CLOSED)]
