"""Observed speed and health per deployment: exponentially weighted moving averages of latency,
throughput and error rate, plus attempt counts since start (for GET /v1/providers and metrics)."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_ALPHA = 0.3
# Error rate moves slower than latency: one failure among many successes is not an outage.
ERROR_ALPHA = 0.1


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
        self._errors: dict[str, _Ewma] = {}
        # [attempts, failures] since start.
        self._counts: dict[str, list[int]] = {}

    def observe_latency(self, key: str, seconds: float) -> None:
        """A successful attempt and how long it took to answer (or to its first item)."""
        self._latency.setdefault(key, _Ewma()).add(seconds, self.alpha)
        self._errors.setdefault(key, _Ewma()).add(0.0, ERROR_ALPHA)
        counts = self._counts.get(key)
        if counts is None:
            self._counts[key] = [1, 0]
        else:
            counts[0] += 1

    def observe_failure(self, key: str) -> None:
        """A failed attempt."""
        self._errors.setdefault(key, _Ewma()).add(1.0, ERROR_ALPHA)
        counts = self._counts.setdefault(key, [0, 0])
        counts[0] += 1
        counts[1] += 1

    def error_rate(self, key: str) -> float | None:
        ewma = self._errors.get(key)
        return None if ewma is None else ewma.value

    def counts(self, key: str) -> tuple[int, int]:
        """(attempts, failures) seen since start."""
        counts = self._counts.get(key)
        return (0, 0) if counts is None else (counts[0], counts[1])

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
