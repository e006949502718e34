"""Observed speed per deployment: exponentially weighted moving averages of latency and throughput."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_ALPHA = 0.3


@dataclass(slots=True)
class _Ewma:
    value: float | None = None

    def add(self, sample: float, alpha: float) -> None:
        self.value = sample if self.value is None else self.value + alpha * (sample - self.value)


class LatencyStats:
    """Time to first item (seconds) and items per second after it, per deployment key.

    In-process on purpose: each replica ranks by what it observes itself.
    """

    def __init__(self, alpha: float = DEFAULT_ALPHA) -> None:
        self.alpha = alpha
        self._latency: dict[str, _Ewma] = {}
        self._throughput: dict[str, _Ewma] = {}

    def observe_latency(self, key: str, seconds: float) -> None:
        self._latency.setdefault(key, _Ewma()).add(seconds, self.alpha)

    def observe_throughput(self, key: str, items_per_second: float) -> None:
        self._throughput.setdefault(key, _Ewma()).add(items_per_second, self.alpha)

    def latency(self, key: str) -> float | None:
        ewma = self._latency.get(key)
        return None if ewma is None else ewma.value

    def throughput(self, key: str) -> float | None:
        ewma = self._throughput.get(key)
        return None if ewma is None else ewma.value

    def snapshot(self) -> dict[str, tuple[float | None, float | None]]:
        """{deployment key: (latency EWMA, throughput EWMA)} for metrics."""
        keys = self._latency.keys() | self._throughput.keys()
        return {key: (self.latency(key), self.throughput(key)) for key in sorted(keys)}
