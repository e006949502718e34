"""Metrics, structured logs and traces. Routing reports through the `record_*` functions below."""

from __future__ import annotations

from server.observability.metrics import (
    record_attempt,
    record_fallback,
    record_hedge,
    record_retry,
    set_breaker_state,
)

__all__ = ["record_attempt", "record_fallback", "record_hedge", "record_retry", "set_breaker_state"]
