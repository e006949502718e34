"""A request cancelled again while its settlement is being written (a client that went away, then the
server's own cancellation of the same handler) still leaves its ledger record: the shielded store
write goes through, so the record must too, or the ledger no longer sums to the balance.

The accounting property test (tests/e2e/accounts/test_accounting_property.py) found this on two
Postgres replicas: a cancelled stream's charge was in the balance and not in the ledger."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from server.accounts.accounting import AccountMetering
from server.accounts.keys import KeyManager, NewKey
from server.accounts.ledger_writer import LedgerWriter
from server.accounts.memory_limits import MemoryLimitStore
from server.accounts.metering import Consumption, Demand
from server.accounts.sqlite_accounts import SqliteAccountStore
from server.config import PricingConfig
from server.errors import UpstreamError
from server.providers.base import RequestContext
from server.routing.catalogue import CatalogueEntry, Deployment

DEPLOYMENT = Deployment("fake", "gpt-4o-mini")
ENTRY = CatalogueEntry(
    id="gpt-priced",
    kind="chat",
    owned_by="fake",
    created=0,
    context_window=None,
    pricing=PricingConfig(input_per_million=1.0, output_per_million=2.0),
    deployments=(DEPLOYMENT,),
)


@pytest.fixture
async def metering(tmp_path: Path) -> AsyncIterator[tuple[AccountMetering, SqliteAccountStore]]:
    # The SQLite store writes in a worker thread: a settlement awaits it, as Postgres's does.
    store = SqliteAccountStore(tmp_path / "accounts.db")
    accounting = AccountMetering(store, MemoryLimitStore(), LedgerWriter(store, flush_interval=0.01))
    yield accounting, store
    await accounting.close()


async def _cancel_midway(call: asyncio.Task[object]) -> None:
    await asyncio.sleep(0)  # it is now awaiting the store
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call


async def test_a_settlement_cancelled_midway_is_still_recorded(
    metering: tuple[AccountMetering, SqliteAccountStore],
) -> None:
    accounting, store = metering
    key, _ = await KeyManager(store).create(NewKey(name="k", credit_limit=1.0))
    ctx = RequestContext("r-settle")
    meter = await accounting.admit(key, ENTRY, Demand(prompt_tokens=100, max_output_tokens=100), ctx)
    consumed = Consumption(prompt_tokens=100, completion_tokens=10)
    await _cancel_midway(asyncio.ensure_future(meter.settle(DEPLOYMENT, consumed, cancelled=True)))
    for _ in range(100):  # the shielded write finishes on its own
        balance = await store.balance(key.id)
        if balance is not None and balance.reserved == 0:
            break
        await asyncio.sleep(0.01)
    await accounting.ledger.flush()
    record = await store.ledger_record("r-settle", key.id)
    assert record is not None and record.status == "cancelled" and record.cost_micros == 120
    assert balance is not None and balance.used == 120 == await store.ledger_sum(key.id)


async def test_a_failure_cancelled_midway_is_still_recorded(
    metering: tuple[AccountMetering, SqliteAccountStore],
) -> None:
    accounting, store = metering
    key, _ = await KeyManager(store).create(NewKey(name="k", credit_limit=1.0))
    meter = await accounting.admit(key, ENTRY, Demand(max_output_tokens=100), RequestContext("r-fail"))
    await _cancel_midway(asyncio.ensure_future(meter.fail(UpstreamError("down"))))
    await accounting.ledger.flush()
    record = await store.ledger_record("r-fail", key.id)
    assert record is not None and record.status == "error" and record.http_status == 502
