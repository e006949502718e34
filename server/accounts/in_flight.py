"""The requests each key has in flight in this process, and the limit past which one more is refused.

`server.max_in_flight_per_key` (0: no limit) bounds what one key, or whoever holds it, can keep
open at once: slow streams, hung upstreams. The count is per process, so N workers or replicas let
a key have N times the limit in flight. A refusal is a 429 (`rate_limit_exceeded`) with a
Retry-After, counted in `siraya_key_in_flight_refusals_total`.

The Gateway counts inline (`counts[key] += 1` on admission, `-= 1` when the request ends): a method
call each way was two more of the ~200 calls a request makes (tests/e2e/operations/test_hot_path_budget.py).
A key's entry stays at 0 when idle; there are only as many entries as keys that sent requests.
"""

from __future__ import annotations

import sys

from server.errors import RateLimited
from server.observability import metrics

__all__ = ["InFlightLimit"]

RETRY_AFTER_SECONDS = 1.0


class InFlightLimit:
    __slots__ = ("limit", "counts")

    def __init__(self, limit: int = 0) -> None:
        # No limit is a limit no count reaches, so that admission is one comparison either way.
        self.limit = limit if limit > 0 else sys.maxsize
        self.counts: dict[str, int] = {}

    def refused(self, count: int) -> RateLimited:
        """The error for a request that found `count` (the limit) of its key's requests in flight."""
        metrics.KEY_IN_FLIGHT_REFUSALS.inc()
        return RateLimited(
            f"This key has {count} requests in flight, the most this gateway allows at once."
            " Wait for one to finish.",
            retry_after=RETRY_AFTER_SECONDS,
        )
