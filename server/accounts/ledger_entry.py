"""The one ledger record a request leaves, built from how it ended (AccountMetering for a refusal or
a cache hit, AccountMeter for a settled or failed request)."""

from __future__ import annotations

import logging
import time

from server.accounts.keys import KeyRecord
from server.accounts.ledger_attempts import priced_attempts
from server.accounts.ledger_writer import LedgerWriter
from server.accounts.metering import Consumption
from server.accounts.store import LedgerRecord, LedgerStatus
from server.errors import GatewayError
from server.observability.bodies import BodyCapture
from server.providers.base import RequestContext
from server.routing.catalogue import Deployment

__all__ = ["record_request"]

logger = logging.getLogger("siraya.accounts")

CLIENT_CLOSED_STATUS = 499


def record_request(
    ledger: LedgerWriter,
    key: KeyRecord,
    model: str,
    ctx: RequestContext,
    started: float,
    status: LedgerStatus,
    *,
    error: BaseException | None = None,
    deployment: Deployment | None = None,
    consumed: Consumption | None = None,
    cost: int = 0,
    saved: int = 0,
) -> None:
    """Submit the one ledger record of a request, from how it ended and what it consumed and cost."""
    finished = time.monotonic()
    first = ctx.outcome.first_item_at
    if isinstance(error, GatewayError):
        http_status, code = error.kind.http_status, error.code
    elif error is not None:
        http_status, code = (
            (CLIENT_CLOSED_STATUS, "client_closed") if status == "cancelled" else (500, "internal_error")
        )
    else:
        http_status, code = (CLIENT_CLOSED_STATUS if status == "cancelled" else 200), None
    served = consumed
    consumed = consumed or Consumption()
    bodies: BodyCapture | None = ctx.outcome.bodies
    rows = ctx.outcome.attempts
    attempts, upstream_cost, reported_cost = (
        ((), 0, None) if rows is None else priced_attempts(rows, started, status, model, served, cost)
    )
    record = LedgerRecord(
        request_id=ctx.request_id,
        key_id=key.id,
        created_at=time.time(),
        model_requested=model,
        status=status,
        http_status=http_status,
        model_served=None if deployment is None else deployment.upstream_model,
        provider=None if deployment is None else deployment.provider,
        error_code=code,
        prompt_tokens=consumed.prompt_tokens,
        completion_tokens=consumed.completion_tokens,
        cached_tokens=consumed.cached_tokens,
        reasoning_tokens=consumed.reasoning_tokens,
        cost_micros=cost,
        latency_ms=round((finished - started) * 1000, 3),
        ttft_ms=None if first is None else round((first - started) * 1000, 3),
        streamed=first is not None,
        cache_write_tokens=consumed.cache_write_tokens,
        cache_saved_micros=saved,
        prompt_text=None if bodies is None else bodies.prompt,
        answer_text=None if bodies is None else bodies.answer_text(),
        token_source="counted" if consumed.counted else "reported",
        upstream_cost_micros=upstream_cost,
        upstream_reported_cost_micros=reported_cost,
        attempts=attempts,
    )
    try:
        ledger.submit(record)
    except RuntimeError:
        logger.error("ledger closed; dropped the record of a request")
