"""A request's upstream attempts as its ledger record keeps them, each priced at its own deployment's
price, and the upstreams' own cost figures checked against ours (accounting.py records them)."""

from __future__ import annotations

import logging
import time
from typing import Any

from server.accounts.candidates import deployment_price
from server.accounts.charges import charge
from server.accounts.metering import Consumption
from server.accounts.store import LedgerAttempt, LedgerStatus
from server.observability import metrics

__all__ = ["check_reported", "priced_attempts"]

logger = logging.getLogger("siraya.accounts")


def priced_attempts(
    rows: list[list[Any]],
    started: float,
    status: LedgerStatus,
    requested: str,
    served: Consumption | None,
    charged: int,
) -> tuple[tuple[LedgerAttempt, ...], int, int | None]:
    """The ledger's attempts from the rows observability/attempts.py kept (each with what it spent,
    server/attempt_spend.py), and the request's upstream cost and reported upstream cost.

    An attempt still running when the request is recorded is the stream that served it (a stream
    settles on its final usage item, just before its attempt ends): it ends now, as the request did.
    Each attempt is priced at its own deployment's price; the one that served, at the price the key
    was just charged (`charged` for `served`), unless it served a fallback model.
    """
    now = time.monotonic()
    attempts = []
    total, reported_total = 0, None
    for provider, model, upstream_model, begun, seconds, outcome, http_status, spent, route in rows:
        if outcome is None:
            outcome, seconds = ("ok" if status == "success" else "cancelled"), now - begun
        failed = outcome not in ("ok", "cancelled")
        cost, reported, counted, prompt, completion = 0, None, False, 0, 0
        if type(spent) is Consumption:
            if spent is served and model == requested:
                cost = charged
            else:
                cost = charge(deployment_price(route.entry, route.deployment), spent)
            reported, counted = spent.reported_cost_micros, spent.counted
            prompt, completion = spent.prompt_tokens, spent.completion_tokens
            total += cost
            if reported is not None:
                reported_total = (reported_total or 0) + reported
                check_reported(model, provider, cost, reported)
        attempts.append(
            LedgerAttempt(
                provider,
                model,
                upstream_model,
                "error" if failed else outcome,
                round((begun - started) * 1000, 3),
                round(seconds * 1000, 3),
                outcome if failed else None,
                http_status if failed else None,
                prompt,
                completion,
                cost,
                reported,
                "counted" if counted else "reported",
            )
        )
    return tuple(attempts), total, reported_total


def check_reported(model: str, provider: str, ours: int, theirs: int) -> None:
    """An upstream's own `usage.cost` is recorded, never trusted: more than 1% (and a rounding
    micro-dollar) away from what its tokens cost at our price is logged and counted."""
    apart = abs(theirs - ours)
    if apart <= 1 or apart * 100 <= ours:
        return
    metrics.record_upstream_cost_mismatch(model, provider)
    logger.warning(
        "provider '%s' says a call for %s cost %d micro-dollars; its tokens cost %d at the configured"
        " price (check the price)",
        provider,
        model,
        theirs,
        ours,
    )
