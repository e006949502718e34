"""Observed speed and health per deployment: exponentially weighted moving averages of latency and
throughput, the error rate over the latest attempts, and attempt counts since start (for
GET /v1/providers and metrics)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

DEFAULT_ALPHA = 0.3
# The error rate is the share of this many most recent attempts that failed: a plain ratio a person
# can check against the counts, where a moving average seeded by one early failure would read 90%.
ERROR_WINDOW = 100


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
        # [attempts, failures] since start, and [failures among] the last ERROR_WINDOW outcomes.
        self._counts: dict[str, list[int]] = {}
        self._recent: dict[str, deque[int]] = {}
        self._recent_failures: dict[str, int] = {}

    def observe_latency(self, key: str, seconds: float) -> None:
        """A successful attempt and how long it took to answer (or to its first item)."""
        self._latency.setdefault(key, _Ewma()).add(seconds, self.alpha)
        counts = self._counts.get(key)
        if counts is None:
            self._counts[key] = [1, 0]
            self._recent[key] = deque((0,), ERROR_WINDOW)
            self._recent_failures[key] = 0
            return
        counts[0] += 1
        recent = self._recent[key]
        if len(recent) == ERROR_WINDOW:
            self._recent_failures[key] -= recent[0]
        recent.append(0)

    def observe_failure(self, key: str) -> None:
        """A failed attempt."""
        counts = self._counts.setdefault(key, [0, 0])
        counts[0] += 1
        counts[1] += 1
        recent = self._recent.setdefault(key, deque((), ERROR_WINDOW))
        failures = self._recent_failures.get(key, 0)
        if len(recent) == ERROR_WINDOW:
            failures -= recent[0]
        recent.append(1)
        self._recent_failures[key] = failures + 1

    def error_rate(self, key: str) -> float | None:
        """The share of the last ERROR_WINDOW attempts that failed; None before the first."""
        recent = self._recent.get(key)
        return None if not recent else self._recent_failures[key] / len(recent)

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
