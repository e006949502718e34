"""What GET /v1/providers reports of a deployment's health: counts and the recent error rate."""

from __future__ import annotations

import pytest

from server.routing.stats import ERROR_WINDOW, LatencyStats


def test_the_error_rate_is_the_share_of_recent_attempts_that_failed() -> None:
    stats = LatencyStats()
    assert (stats.error_rate("a/m"), stats.counts("a/m")) == (None, (0, 0))
    stats.observe_failure("a/m")
    assert stats.error_rate("a/m") == 1.0
    stats.observe_latency("a/m", 0.01)
    stats.observe_failure("a/m")
    # Two of three failed: 2/3, not what a moving average seeded by the first failure would say.
    assert stats.error_rate("a/m") == pytest.approx(2 / 3)
    assert stats.counts("a/m") == (3, 2)
    assert stats.latency("a/m") == pytest.approx(0.01)


def test_old_outcomes_leave_the_window_but_stay_counted() -> None:
    stats = LatencyStats()
    for _ in range(10):
        stats.observe_failure("a/m")
    for _ in range(ERROR_WINDOW):
        stats.observe_latency("a/m", 0.02)
    assert stats.error_rate("a/m") == 0.0
    assert stats.counts("a/m") == (ERROR_WINDOW + 10, 10)
    for _ in range(ERROR_WINDOW // 4):
        stats.observe_failure("a/m")
    assert stats.error_rate("a/m") == pytest.approx(0.25)
    assert stats.error_rate("b/m") is None
