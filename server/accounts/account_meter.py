"""The Meter AccountMetering.admit returns (accounting.py): it settles a served request (the charge
at the serving deployment's price, the tpm correction, the ledger record) or fails it (the
reservation released, the estimated tokens given back, the ledger record)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Protocol

from server.accounts.candidates import deployment_price
from server.accounts.charges import charge
from server.accounts.keys import KeyRecord
from server.accounts.ledger_entry import record_request
from server.accounts.ledger_writer import LedgerWriter
from server.accounts.metering import Consumption, Meter
from server.accounts.money import micros_to_usd
from server.accounts.store import AccountStore, LimitStore, SyncCredits
from server.observability import metrics
from server.observability.ids import new_reservation_id
from server.providers.base import RequestContext
from server.routing.catalogue import CatalogueEntry, Deployment

__all__ = ["AccountMeter", "MeterOwner"]

logger = logging.getLogger("siraya.accounts")


class MeterOwner(Protocol):
    """What a meter uses of the AccountMetering that admitted it (accounting.py)."""

    @property
    def accounts(self) -> AccountStore: ...

    @property
    def sync_credits(self) -> SyncCredits | None: ...

    @property
    def limits(self) -> LimitStore: ...

    @property
    def clock(self) -> Callable[[], float]: ...

    @property
    def ledger(self) -> LedgerWriter: ...


class AccountMeter(Meter):
    def __init__(
        self,
        metering: MeterOwner,
        key: KeyRecord,
        entry: CatalogueEntry,
        ctx: RequestContext,
        started: float,
        estimated_tokens: int,
    ) -> None:
        self._metering = metering
        self._key = key
        self._entry = entry
        self._ctx = ctx
        self._started = started
        self._estimated = estimated_tokens
        self.reservation_id = new_reservation_id()
        self.reserved = False
        self.reserved_micros = 0
        # The team whose token bucket this request also took from (corrected with the key's).
        self.team_id: str | None = None
        self._done = False

    async def settle(
        self, deployment: Deployment, consumed: Consumption, *, cancelled: bool = False
    ) -> float | None:
        if self._done:
            return None
        self._done = True
        metering, key = self._metering, self._key
        cost = charge(deployment_price(self._entry, deployment), consumed)
        if self.reserved and cost > self.reserved_micros:
            _overrun(self._entry.id, deployment, consumed, cost, self.reserved_micros)
        interrupted: asyncio.CancelledError | None = None
        try:
            if self.reserved or cost:
                sync = metering.sync_credits
                if sync is None or sync.settle_nowait(key.id, self.reservation_id, cost) is None:
                    await asyncio.shield(metering.accounts.settle(key.id, self.reservation_id, cost))
            if self._estimated:
                actual = consumed.prompt_tokens + consumed.completion_tokens
                await asyncio.shield(
                    metering.limits.adjust_tokens(
                        key.id, actual - self._estimated, metering.clock(), self.team_id
                    )
                )
        except asyncio.CancelledError as cancel:
            # Cancelled (again) while the shielded charge is written: the charge goes through, so
            # its record must too, or the ledger would no longer sum to the balance.
            interrupted = cancel
        except Exception:
            # The answer was served: failing it now would not un-spend the tokens. The open
            # reservation stays held until the stale sweep, and the ledger still has the charge.
            logger.exception("could not settle a served request")
        record_request(
            metering.ledger,
            key,
            self._entry.id,
            self._ctx,
            self._started,
            "cancelled" if cancelled else "success",
            error=asyncio.CancelledError() if cancelled else None,
            deployment=deployment,
            consumed=consumed,
            cost=cost,
        )
        if interrupted is not None:
            raise interrupted
        return micros_to_usd(cost)

    async def fail(self, error: BaseException) -> None:
        if self._done:
            return
        self._done = True
        metering, key = self._metering, self._key
        interrupted: asyncio.CancelledError | None = None
        try:
            if self.reserved:
                if metering.sync_credits is not None:
                    metering.sync_credits.release_nowait(key.id, self.reservation_id)
                else:
                    await asyncio.shield(metering.accounts.release(key.id, self.reservation_id))
            if self._estimated:
                await asyncio.shield(
                    metering.limits.adjust_tokens(key.id, -self._estimated, metering.clock(), self.team_id)
                )
        except asyncio.CancelledError as cancel:
            interrupted = cancel  # the shielded release goes on; the record is still made
        cancelled = isinstance(error, (asyncio.CancelledError, GeneratorExit))
        record_request(
            metering.ledger,
            key,
            self._entry.id,
            self._ctx,
            self._started,
            "cancelled" if cancelled else "error",
            error=error,
        )
        if interrupted is not None:
            raise interrupted


def _overrun(model: str, deployment: Deployment, consumed: Consumption, cost: int, reserved: int) -> None:
    """An upstream billed beyond what it was allowed: charged in full all the same, and said so."""
    over = cost - reserved
    metrics.record_overrun(model, deployment.provider, micros_to_usd(over))
    logger.warning(
        "a settlement went %d micro-dollars over its reservation of %d (%s on %s: %d prompt, %d completion"
        " tokens); charged in full",
        over,
        reserved,
        model,
        deployment.key,
        consumed.prompt_tokens,
        consumed.completion_tokens,
    )
