"""What the Dispatcher tells operations about: retries, fallbacks, hedges and breaker changes.

`DispatchEvents` is the hook; `MetricsEvents` feeds the Prometheus metrics of
`server.observability.metrics`. Labels are deployment keys ("provider/upstream_model") for the
breaker, whose state is per deployment, and provider names elsewhere.
"""

from __future__ import annotations

from typing import Protocol

from server.routing.catalogue import Deployment

__all__ = ["DispatchEvents", "MetricsEvents", "NoEvents"]


class DispatchEvents(Protocol):
    def retry(self, deployment: Deployment) -> None: ...

    def fallback(self, failed: Deployment, next_: Deployment) -> None: ...

    def hedge(self, deployment: Deployment) -> None: ...

    def breaker(self, key: str, state: str) -> None:
        """A deployment's circuit changed to `state`: closed, half_open or open."""
        ...


class NoEvents:
    def retry(self, deployment: Deployment) -> None:
        return None

    def fallback(self, failed: Deployment, next_: Deployment) -> None:
        return None

    def hedge(self, deployment: Deployment) -> None:
        return None

    def breaker(self, key: str, state: str) -> None:
        return None


class MetricsEvents:
    def __init__(self) -> None:
        from server.observability import metrics

        self._metrics = metrics

    def retry(self, deployment: Deployment) -> None:
        self._metrics.record_retry(deployment.provider)

    def fallback(self, failed: Deployment, next_: Deployment) -> None:
        self._metrics.record_fallback(failed.provider, next_.provider)

    def hedge(self, deployment: Deployment) -> None:
        self._metrics.record_hedge(deployment.provider)

    def breaker(self, key: str, state: str) -> None:
        self._metrics.set_breaker_state(key, state)
