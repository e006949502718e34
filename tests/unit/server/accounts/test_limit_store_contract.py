"""The LimitStore contract, run against every backend: in-process memory and Redis (replicas)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import pytest

from server.accounts.memory_limits import MemoryLimitStore
from server.accounts.redis_limits import RedisLimitStore
from server.accounts.store import LimitDecision, LimitStore, TeamRates, format_reset
from tests.unit.server.accounts.accounts_backends import REDIS_URL, delete_prefix, redis_unavailable

NOW = 1_700_000_000.0


@pytest.fixture(params=["memory", "redis"])
async def limits(request: pytest.FixtureRequest) -> AsyncIterator[LimitStore]:
    if request.param == "memory":
        store: LimitStore = MemoryLimitStore()
        yield store
        await store.close()
        return
    reason = redis_unavailable()
    if reason:
        pytest.skip(reason)
    prefix = f"siraya-test:{secrets.token_hex(6)}:"
    store = RedisLimitStore.from_url(REDIS_URL, prefix)
    try:
        yield store
    finally:
        await store.close()
        await delete_prefix(prefix)


async def hits(
    limits: LimitStore, count: int, rpm: int | None, tpm: int | None = None
) -> list[LimitDecision]:
    return [await limits.hit("key", rpm, tpm, 0, NOW) for _ in range(count)]


@pytest.mark.parametrize("rpm", [1, 5, 7, 60, 1000])
async def test_exactly_rpm_requests_pass_at_once(limits: LimitStore, rpm: int) -> None:
    decisions = await hits(limits, rpm + 2, rpm)
    assert [d.allowed for d in decisions] == [True] * rpm + [False, False]
    assert [d.remaining_requests for d in decisions[:rpm]] == list(range(rpm - 1, -1, -1))
    refused = decisions[-1]
    assert refused.limit_requests == rpm and refused.remaining_requests == 0
    assert refused.retry_after_s == pytest.approx(60 / rpm, abs=1e-6)
    assert refused.reset_requests_s == pytest.approx(60.0, abs=1e-6)
    assert decisions[0].retry_after_s is None
    assert decisions[0].reset_requests_s == pytest.approx(60 / rpm, abs=1e-6)


async def test_requests_refill_continuously(limits: LimitStore) -> None:
    await hits(limits, 5, 5)  # empty: one request comes back every 12 s
    assert not (await limits.hit("key", 5, None, 0, NOW + 11.9)).allowed
    again = await limits.hit("key", 5, None, 0, NOW + 12)
    assert again.allowed and again.remaining_requests == 0
    assert not (await limits.hit("key", 5, None, 0, NOW + 12)).allowed
    later = [await limits.hit("key", 5, None, 0, NOW + 12 + 60) for _ in range(6)]
    assert [d.allowed for d in later] == [True] * 5 + [False]


async def test_a_clock_behind_gets_no_extra_refill(limits: LimitStore) -> None:
    await hits(limits, 2, 2)
    assert not (await limits.hit("key", 2, None, 0, NOW - 30)).allowed  # a replica whose clock lags
    assert (await limits.hit("key", 2, None, 0, NOW + 30)).allowed
    assert not (await limits.hit("key", 2, None, 0, NOW + 30)).allowed


async def test_tokens_per_minute_on_estimates(limits: LimitStore) -> None:
    decisions = [await limits.hit("key", 10, 1000, 300, NOW) for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.remaining_tokens for d in decisions] == [700, 400, 100, 100]
    refused = decisions[-1]
    assert refused.limit_tokens == 1000
    assert refused.retry_after_s == pytest.approx((300 - 100) * 60 / 1000, abs=1e-6)
    assert refused.reset_tokens_s == pytest.approx(900 * 60 / 1000, abs=1e-6)
    # The refusal consumed nothing from the requests bucket either.
    assert refused.remaining_requests == 7
    small = await limits.hit("key", 10, 1000, 100, NOW)
    assert small.allowed and small.remaining_requests == 6 and small.remaining_tokens == 0


async def test_actual_tokens_correct_the_estimate(limits: LimitStore) -> None:
    assert (await limits.hit("key", None, 1000, 500, NOW)).remaining_tokens == 500
    await limits.adjust_tokens("key", 100 - 500, NOW)  # used 100 of the 500 estimated
    assert (await limits.hit("key", None, 1000, 0, NOW)).remaining_tokens == 900
    await limits.adjust_tokens("key", 1000, NOW)  # used far more than estimated: debt
    refused = await limits.hit("key", None, 1000, 1, NOW)
    assert not refused.allowed and refused.remaining_tokens == 0
    assert refused.retry_after_s == pytest.approx(101 * 60 / 1000, abs=1e-6)
    await limits.adjust_tokens("key", -(10**6), NOW)  # a refund never fills past the limit
    assert (await limits.hit("key", None, 1000, 0, NOW)).remaining_tokens == 1000
    await limits.adjust_tokens("key-never-seen", 50, NOW)  # nothing to correct


async def test_a_request_larger_than_the_tpm_passes_only_on_a_full_bucket(limits: LimitStore) -> None:
    big = await limits.hit("key", None, 100, 250, NOW)
    assert big.allowed and big.remaining_tokens == 0
    assert big.reset_tokens_s == pytest.approx(250 * 0.6, abs=1e-6)
    refused = await limits.hit("key", None, 100, 1, NOW + 60)
    assert not refused.allowed
    assert refused.retry_after_s == pytest.approx((1 + 50) * 0.6, abs=1e-6)
    assert (await limits.hit("key", None, 100, 250, NOW + 150)).allowed


async def test_unlimited_and_independent_keys(limits: LimitStore) -> None:
    free = await limits.hit("key", None, None, 10**9, NOW)
    assert free.allowed and free.limit_requests is None and free.limit_tokens is None
    assert free.headers() == {}
    assert (await limits.hit("a", 1, None, 0, NOW)).allowed
    assert not (await limits.hit("a", 1, None, 0, NOW)).allowed
    assert (await limits.hit("b", 1, None, 0, NOW)).allowed


async def test_a_changed_limit_applies_at_once(limits: LimitStore) -> None:
    await hits(limits, 10, 10)
    lowered = await limits.hit("key", 3, None, 0, NOW + 30)  # bucket of 3, refilled 1.5 in 30 s
    assert lowered.allowed and lowered.remaining_requests == 0


def test_headers_follow_openai() -> None:
    decision = LimitDecision(False, 60, 0, 1.0, 150_000, 149_000, 360.0, retry_after_s=0.2)
    assert decision.headers() == {
        "x-ratelimit-limit-requests": "60",
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": "1s",
        "x-ratelimit-limit-tokens": "150000",
        "x-ratelimit-remaining-tokens": "149000",
        "x-ratelimit-reset-tokens": "6m0s",
        "retry-after": "1",
    }
    assert [format_reset(s) for s in (0, 0.0201, 12.5, 3723.25)] == ["0ms", "21ms", "12.5s", "1h2m3.25s"]


# teams: a team's limits cap the sum over its keys


async def test_a_team_rpm_caps_the_sum_of_its_keys(limits: LimitStore) -> None:
    team = TeamRates("t1", rpm=5, tpm=None)
    decisions = [await limits.hit(f"key-{i % 3}", None, None, 0, NOW, team) for i in range(8)]
    assert [d.allowed for d in decisions] == [True] * 5 + [False] * 3
    assert [d.remaining_requests for d in decisions[:5]] == [4, 3, 2, 1, 0]
    refused = decisions[-1]
    assert refused.refused_by == "team" and refused.limit_requests == 5
    assert refused.retry_after_s == pytest.approx(12.0, abs=1e-6)
    # Another team's keys, and keys of no team, are not held back.
    assert (await limits.hit("key-0", None, None, 0, NOW, TeamRates("t2", 5, None))).allowed
    assert (await limits.hit("key-0", 1, None, 0, NOW)).allowed
    # One comes back every 12 s, for whichever key asks first.
    assert (await limits.hit("key-2", None, None, 0, NOW + 12, team)).allowed
    assert not (await limits.hit("key-1", None, None, 0, NOW + 12, team)).allowed


async def test_a_keys_own_refusal_takes_nothing_from_its_team(limits: LimitStore) -> None:
    team = TeamRates("t1", rpm=3, tpm=None)
    assert (await limits.hit("small", 1, None, 0, NOW, team)).allowed
    refused = await limits.hit("small", 1, None, 0, NOW, team)
    assert not refused.allowed and refused.refused_by == "key"
    # The key's refusal left the team's two other requests for its other keys.
    assert [(await limits.hit("other", None, None, 0, NOW, team)).allowed for _ in range(3)] == [
        True,
        True,
        False,
    ]
    # And a team's refusal takes nothing from the key: it passes once the team has room again
    # (one request per 20 s), long before its own bucket of one per minute would refill.
    blocked = await limits.hit("roomy", 1, None, 0, NOW, team)
    assert not blocked.allowed and blocked.refused_by == "team"
    assert (await limits.hit("roomy", 1, None, 0, NOW + 20, team)).allowed


async def test_a_team_tpm_caps_its_keys_tokens_and_is_corrected_by_actual_use(limits: LimitStore) -> None:
    team = TeamRates("t1", rpm=None, tpm=1000)
    first = await limits.hit("a", None, 5000, 600, NOW, team)
    assert first.allowed and first.remaining_tokens == 400 and first.limit_tokens == 1000  # the team binds
    refused = await limits.hit("b", None, None, 600, NOW, team)
    assert not refused.allowed and refused.refused_by == "team"
    await limits.adjust_tokens("a", 100 - 600, NOW, "t1")  # used 100 of the 600 estimated
    again = await limits.hit("b", None, None, 600, NOW, team)
    assert again.allowed and again.remaining_tokens == 300
