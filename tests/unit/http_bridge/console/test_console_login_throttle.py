"""Failed console sign-ins per client address: the limit, its sliding minute, and bounded memory."""

from __future__ import annotations

from http_bridge.console.login_throttle import WINDOW_SECONDS, LoginThrottle


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_address_is_held_back_after_its_limit_until_the_minute_passes() -> None:
    clock = Clock()
    throttle = LoginThrottle(3, clock=clock)
    for second in range(3):
        assert throttle.retry_after("10.0.0.1") is None
        clock.now = 1000.0 + second * 10
        throttle.failed("10.0.0.1")
    # Failures at 1000, 1010 and 1020: the first ages out at 1060.
    clock.now = 1025.0
    assert throttle.retry_after("10.0.0.1") == 35.0
    assert throttle.retry_after("10.0.0.2") is None
    clock.now = 1000.0 + WINDOW_SECONDS
    assert throttle.retry_after("10.0.0.1") is None
    throttle.failed("10.0.0.1")
    assert throttle.retry_after("10.0.0.1") == 10.0  # the 1010 failure is now the oldest of three


def test_memory_stays_bounded_by_the_number_of_addresses() -> None:
    clock = Clock()
    throttle = LoginThrottle(2, clock=clock, max_addresses=100)
    for number in range(1000):
        throttle.failed(f"10.0.{number // 256}.{number % 256}")
        throttle.failed(f"10.0.{number // 256}.{number % 256}")
    assert len(throttle._failures) == 100
    assert throttle.retry_after("10.0.3.231") is not None  # the newest addresses are the ones kept
    clock.now += WINDOW_SECONDS
    throttle.failed("192.0.2.1")
    assert list(throttle._failures) == ["192.0.2.1"]  # the aged-out ones went first
