"""The AccountStore contract, run against every backend: SQLite (embedded) and Postgres (replicas)."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path

import orjson
import pytest

from server.accounts.keys import KeyChanges
from server.accounts.ledger_queries import Cursor, GenerationFilter, UsageQuery, percentile
from server.accounts.owned_sqlite_accounts import OwnedSqliteAccountStore
from server.accounts.postgres_accounts import PostgresAccountStore
from server.accounts.sqlite_accounts import SqliteAccountStore
from server.accounts.store import (
    AccountStore,
    AuditEvent,
    Balance,
    LedgerAttempt,
    LedgerRecord,
    StoredResponse,
)
from tests.unit.server.accounts.accounts_backends import (
    key_record,
    ledger_record,
)


@dataclass
class Backend:
    name: str
    open: Callable[[], Awaitable[AccountStore]]


@pytest.fixture(params=["sqlite", "sqlite-owned", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "sqlite-owned":
        owned_path = tmp_path / "owned.db"

        async def open_owned() -> AccountStore:
            store = OwnedSqliteAccountStore.try_open(owned_path)
            assert store is not None
            return store

        return Backend("sqlite-owned", open_owned)
    if request.param == "sqlite":
        path = tmp_path / "gateway.db"

        async def open_sqlite() -> AccountStore:
            return SqliteAccountStore(path)

        return Backend("sqlite", open_sqlite)
    dsn = request.getfixturevalue("postgres_dsn")
    schema = "t_" + secrets.token_hex(6)  # each test its own schema in the module's database

    async def open_postgres() -> AccountStore:
        return await PostgresAccountStore.open(dsn, schema=schema, max_size=4)

    return Backend("postgres", open_postgres)


@pytest.fixture
async def store(backend: Backend) -> AsyncIterator[AccountStore]:
    opened = await backend.open()
    yield opened
    await opened.close()


async def add_key(store: AccountStore, credit_limit: float | None = None, **kwargs: object) -> str:
    record, secret_hash = key_record(credit_limit=credit_limit, **kwargs)  # type: ignore[arg-type]
    await store.insert_key(record, secret_hash)
    return record.id


# keys


async def test_key_crud(store: AccountStore) -> None:
    first, first_hash = key_record(
        "key_a",
        created_at=100,
        allowed_models=("gpt-4o", "claude"),
        credit_limit=12.5,
        rpm_limit=60,
        tpm_limit=1000,
    )
    second, second_hash = key_record("key_b", created_at=200)
    await store.insert_key(second, second_hash)
    await store.insert_key(first, first_hash)

    assert await store.key_by_id("key_a") == first
    assert await store.key_by_hash(first_hash) == (first, first_hash)
    assert await store.key_by_hash("no-such-hash") is None
    assert await store.key_by_id("key_nope") is None
    assert [key.id for key in await store.list_keys()] == ["key_a", "key_b"]
    assert await store.balance("key_a") == Balance(limit=12_500_000, used=0, reserved=0)


async def test_keys_made_in_the_same_second_list_in_the_order_they_were_made(store: AccountStore) -> None:
    made = ["key_z", "key_m", "key_a", "key_q"]  # ids that sort in neither order
    for key_id in made:
        record, secret_hash = key_record(key_id, created_at=500)
        await store.insert_key(record, secret_hash)
    assert [key.id for key in await store.list_keys()] == made


async def test_revoke_keeps_the_first_time_and_rotation_refuses_revoked_keys(store: AccountStore) -> None:
    key_id = await add_key(store)
    rotated = await store.replace_secret(key_id, "sk-sr-new1", "new-hash")
    assert rotated is not None and rotated.prefix == "sk-sr-new1"
    assert await store.key_by_hash("hash-" + key_id) is None
    found = await store.key_by_hash("new-hash")
    assert found is not None and found[0].id == key_id

    revoked = await store.revoke_key(key_id, 500)
    assert revoked is not None and revoked.revoked_at == 500
    again = await store.revoke_key(key_id, 900)
    assert again is not None and again.revoked_at == 500
    assert await store.replace_secret(key_id, "sk-sr-new2", "newer-hash") is None
    assert await store.revoke_key("key_nope", 1) is None
    assert await store.replace_secret("key_nope", "p", "h") is None


# credits


async def test_reserve_settle_release_track_the_balance(store: AccountStore) -> None:
    key_id = await add_key(store, credit_limit=0.001)  # 1000 micros
    assert await store.reserve(key_id, "r1", 600)
    assert await store.balance(key_id) == Balance(1000, 0, 600)
    assert not await store.reserve(key_id, "r2", 500)  # 600 + 500 > 1000
    assert await store.settle(key_id, "r1", 400)  # actual below the estimate: the rest goes back
    assert await store.balance(key_id) == Balance(1000, 400, 0)
    assert await store.reserve(key_id, "r3", 600)  # exactly the limit is allowed
    assert not await store.reserve(key_id, "r4", 1)
    assert await store.release(key_id, "r3")  # failure: refund everything
    balance = await store.balance(key_id)
    assert balance == Balance(1000, 400, 0) and balance.available == 600
    record = await store.key_by_id(key_id)
    assert record is not None and record.credit_used == pytest.approx(0.0004)


async def test_settle_and_release_are_idempotent(store: AccountStore) -> None:
    key_id = await add_key(store, credit_limit=1.0)
    assert await store.reserve(key_id, "r1", 500)
    assert await store.settle(key_id, "r1", 300)
    assert not await store.settle(key_id, "r1", 300)
    assert not await store.release(key_id, "r1")  # too late: it was settled
    assert await store.reserve(key_id, "r2", 500)
    assert await store.release(key_id, "r2")
    assert not await store.release(key_id, "r2")
    assert not await store.settle(key_id, "r2", 100)  # released first, so a late settle is a no-op
    assert not await store.release(key_id, "never-reserved")
    assert await store.balance(key_id) == Balance(1_000_000, 300, 0)


async def test_reserving_the_same_request_twice_holds_once(store: AccountStore) -> None:
    key_id = await add_key(store, credit_limit=0.001)
    assert await store.reserve(key_id, "r1", 700)
    assert await store.reserve(key_id, "r1", 700)  # still open: yes, and nothing more held
    assert await store.balance(key_id) == Balance(1000, 0, 700)
    assert await store.settle(key_id, "r1", 700)
    assert not await store.reserve(key_id, "r1", 10)  # settled: the id cannot be reused


async def test_settle_can_exceed_the_reservation_and_the_limit(store: AccountStore) -> None:
    key_id = await add_key(store, credit_limit=0.001)
    assert await store.reserve(key_id, "r1", 900)
    assert await store.settle(key_id, "r1", 1200)  # the tokens were spent: charge them
    assert await store.balance(key_id) == Balance(1000, 1200, 0)
    assert not await store.reserve(key_id, "r2", 1)


async def test_settle_without_a_reservation_charges_once(store: AccountStore) -> None:
    key_id = await add_key(store)
    assert await store.settle(key_id, "r1", 250)
    assert not await store.settle(key_id, "r1", 250)
    assert await store.balance(key_id) == Balance(None, 250, 0)


async def test_unlimited_keys_always_reserve(store: AccountStore) -> None:
    key_id = await add_key(store)
    assert await store.reserve(key_id, "r1", 10**15)
    assert await store.balance(key_id) == Balance(None, 0, 10**15)
    assert await store.settle(key_id, "r1", 42)
    balance = await store.balance(key_id)
    assert balance == Balance(None, 42, 0) and balance.available is None


async def test_unknown_keys_hold_nothing(store: AccountStore) -> None:
    assert not await store.reserve("key_nope", "r1", 1)
    assert not await store.settle("key_nope", "r1", 1)
    assert await store.balance("key_nope") is None
    assert await store.set_credit_limit("key_nope", 5) is None


async def test_negative_amounts_are_rejected(store: AccountStore) -> None:
    key_id = await add_key(store)
    with pytest.raises(ValueError):
        await store.reserve(key_id, "r1", -1)
    with pytest.raises(ValueError):
        await store.settle(key_id, "r1", -1)


async def test_set_credit_limit_tops_up_and_removes_the_limit(store: AccountStore) -> None:
    key_id = await add_key(store, credit_limit=0.000_5)
    assert await store.reserve(key_id, "r1", 500)
    assert not await store.reserve(key_id, "r2", 500)
    assert await store.set_credit_limit(key_id, 1000) == Balance(1000, 0, 500)
    assert await store.reserve(key_id, "r2", 500)
    assert await store.set_credit_limit(key_id, None) == Balance(None, 0, 1000)
    record = await store.key_by_id(key_id)
    assert record is not None and record.credit_limit is None


async def test_update_key_changes_only_the_named_settings(store: AccountStore) -> None:
    key_id = await add_key(store, credit_limit=2.5, rpm_limit=10, tpm_limit=1000, allowed_models=("a",))
    changed = await store.update_key(
        key_id,
        KeyChanges(
            frozenset({"name", "rpm_limit", "allowed_models", "expires_at"}),
            name="renamed",
            rpm_limit=None,
            allowed_models=("b", "c"),
            expires_at=4_000_000_000,
        ),
    )
    assert changed is not None and changed == await store.key_by_id(key_id)
    assert (changed.name, changed.rpm_limit, changed.allowed_models, changed.expires_at) == (
        "renamed",
        None,
        ("b", "c"),
        4_000_000_000,
    )
    # What was not named stays, credits included.
    assert (changed.tpm_limit, changed.credit_limit) == (1000, 2.5)
    again = await store.update_key(key_id, KeyChanges(frozenset({"tpm_limit"}), tpm_limit=5))
    assert again is not None and (again.tpm_limit, again.name, again.allowed_models) == (
        5,
        "renamed",
        ("b", "c"),
    )
    assert await store.update_key("key_nope", KeyChanges(frozenset({"name"}), name="x")) is None


async def test_a_key_keeps_its_cache_namespace_until_it_is_changed_or_cleared(store: AccountStore) -> None:
    shared = await add_key(store, cache_namespace="team-a")
    own = await add_key(store)
    found = await store.key_by_id(shared)
    assert found is not None and found.cache_namespace == "team-a"
    assert [key.cache_namespace for key in await store.list_keys() if key.id == own] == [None]
    moved = await store.update_key(own, KeyChanges(frozenset({"cache_namespace"}), cache_namespace="team-a"))
    assert moved is not None and moved.cache_namespace == "team-a"
    renamed = await store.update_key(own, KeyChanges(frozenset({"name"}), name="still shared"))
    assert renamed is not None and renamed.cache_namespace == "team-a"
    cleared = await store.update_key(shared, KeyChanges(frozenset({"cache_namespace"})))
    assert cleared is not None and cleared.cache_namespace is None
    by_hash = await store.key_by_hash("hash-" + own)
    assert by_hash is not None and by_hash[0].cache_namespace == "team-a"


async def test_release_stale_frees_reservations_of_dead_requests(store: AccountStore) -> None:
    first, second = await add_key(store, credit_limit=0.001), await add_key(store, credit_limit=0.001)
    assert await store.reserve(first, "old-1", 300)
    assert await store.reserve(second, "old-2", 400)
    cutoff = time.time() + 0.001
    await asyncio.sleep(0.01)
    assert await store.reserve(first, "new", 200)
    assert await store.release_stale(cutoff) == 2
    assert await store.balance(first) == Balance(1000, 0, 200)
    assert await store.balance(second) == Balance(1000, 0, 0)
    assert not await store.settle(first, "old-1", 300)  # released: a late settle charges nothing
    assert await store.release_stale(cutoff) == 0


async def test_concurrent_reserves_never_overspend(store: AccountStore) -> None:
    key_id = await add_key(store, credit_limit=0.007)
    outcomes = await asyncio.gather(*(store.reserve(key_id, f"r{i}", 1000) for i in range(40)))
    assert sum(outcomes) == 7
    assert await store.balance(key_id) == Balance(7000, 0, 7000)


async def test_reserve_up_to_holds_what_the_balance_covers_between_the_bounds(store: AccountStore) -> None:
    key_id = await add_key(store, credit_limit=0.001)  # 1000 micros
    assert await store.reserve_up_to(key_id, "r1", 100, 600) == 600  # all of it fits
    assert await store.reserve_up_to(key_id, "r2", 100, 600) == 400  # what is left
    assert await store.balance(key_id) == Balance(1000, 0, 1000)
    assert await store.reserve_up_to(key_id, "r3", 1, 600) is None  # not even the minimum
    assert await store.reserve_up_to(key_id, "r2", 100, 600) == 400  # a repeat: the open amount
    assert await store.settle(key_id, "r2", 150)
    assert await store.reserve_up_to(key_id, "r2", 1, 600) is None  # closed: the id is spent
    assert await store.reserve_up_to(key_id, "r4", 300, 300) is None  # 250 left < 300
    assert await store.reserve_up_to(key_id, "r4", 0, 300) == 250
    assert await store.balance(key_id) == Balance(1000, 150, 850)


async def test_reserve_up_to_on_unlimited_and_unknown_keys(store: AccountStore) -> None:
    key_id = await add_key(store)
    assert await store.reserve_up_to(key_id, "r1", 5, 10**12) == 10**12
    assert await store.reserve_up_to("key_nope", "r1", 0, 1) is None
    with pytest.raises(ValueError):
        await store.reserve_up_to(key_id, "r2", 10, 5)


async def test_reserve_up_to_sees_an_overrun_balance(store: AccountStore) -> None:
    key_id = await add_key(store, credit_limit=0.001)
    assert await store.reserve_up_to(key_id, "r1", 500, 500) == 500
    assert await store.settle(key_id, "r1", 1_300)  # billed beyond the limit: charged in full
    assert await store.balance(key_id) == Balance(1000, 1300, 0)
    assert await store.reserve_up_to(key_id, "r2", 0, 100) is None  # negative: nothing is left


async def test_concurrent_reserve_up_to_never_overspends(store: AccountStore) -> None:
    key_id = await add_key(store, credit_limit=0.01)  # 10_000 micros
    granted = await asyncio.gather(*(store.reserve_up_to(key_id, f"r{i}", 700, 3000) for i in range(40)))
    held = [amount for amount in granted if amount is not None]
    assert sum(held) <= 10_000
    assert all(700 <= amount <= 3000 for amount in held)
    assert sum(held) > 10_000 - 700  # no grant was refused while the minimum still fitted
    assert await store.balance(key_id) == Balance(10_000, 0, sum(held))


async def _second_store(backend: Backend) -> AccountStore:
    if backend.name == "sqlite-owned":
        pytest.skip("one process owns the file's credits: its reservations die with it, no lease")
    return await backend.open()


async def test_a_dead_holders_reservations_are_reclaimed_once_its_lease_ends(
    backend: Backend, store: AccountStore
) -> None:
    other = await _second_store(backend)
    try:
        key_id = await add_key(store, credit_limit=0.001)
        now = time.time()
        await store.renew_lease(now + 5)
        assert await store.reserve_up_to(key_id, "dying", 100, 700) == 700
        assert await store.reserve(key_id, "dying-too", 200)
        assert await other.reclaim_expired(now) == 0  # its lease still runs
        assert await store.reclaim_expired(now + 60) == 0  # never its own
        assert await other.reclaim_expired(now + 6) == 2
        assert await store.balance(key_id) == Balance(1000, 0, 0)
        assert await other.reserve(key_id, "survivor", 900)  # the money is usable again
        assert not await store.release(key_id, "dying")  # already given back
        # It was only slow, not dead: what it spent is charged all the same, once.
        assert await store.settle(key_id, "dying-too", 150)
        assert not await store.settle(key_id, "dying-too", 150)
        assert await store.balance(key_id) == Balance(1000, 150, 900)
        assert await other.reclaim_expired(now + 7) == 0
    finally:
        await other.close()


async def test_an_ended_lease_is_reclaimed_at_once(backend: Backend, store: AccountStore) -> None:
    other = await _second_store(backend)
    try:
        key_id = await add_key(store, credit_limit=0.001)
        await store.renew_lease(time.time() + 3600)
        assert await store.reserve(key_id, "held", 400)
        assert await other.reclaim_expired(time.time()) == 0
        await store.end_lease()
        assert await other.reclaim_expired(time.time()) == 1
        assert await store.balance(key_id) == Balance(1000, 0, 0)
    finally:
        await other.close()


# ledger


async def test_ledger_records_belong_to_their_key(store: AccountStore) -> None:
    owner, other = await add_key(store), await add_key(store)
    full = LedgerRecord(
        request_id="req-1",
        key_id=owner,
        created_at=1_700_000_123.25,
        model_requested="auto",
        status="cancelled",
        http_status=200,
        model_served="gpt-4o-2024-08-06",
        provider="openai",
        error_code="client_cancelled",
        prompt_tokens=1200,
        completion_tokens=345,
        cached_tokens=1024,
        reasoning_tokens=128,
        cost_micros=9_876,
        latency_ms=812.5,
        ttft_ms=95.25,
        streamed=True,
        prompt_text="system: Be brief.\nuser: Wie spät ist es? 🕰",
        answer_text='Es ist 12 Uhr.\nget_time({"tz": "Europe/Berlin"})',
        token_source="counted",
        upstream_cost_micros=12_345,
        upstream_reported_cost_micros=12_000,
        attempts=(
            LedgerAttempt(
                "anthropic", "auto", "claude-x", "error", 0.5, 120.25, "provider_error", 502, 1200, 0, 2_469
            ),
            LedgerAttempt(
                "openai",
                "auto",
                "gpt-4o-2024-08-06",
                "ok",
                121.0,
                690.5,
                prompt_tokens=1200,
                completion_tokens=345,
                upstream_cost_micros=9_876,
                reported_cost_micros=12_000,
                token_source="counted",
            ),
        ),
    )
    failed = ledger_record(owner, "req-2", ok=False)
    await store.append_ledger([full, failed])
    await store.append_ledger([full._replace(cost_micros=1)])  # a retried batch changes nothing
    await store.append_ledger([])

    assert await store.ledger_record("req-1", owner) == full
    assert await store.ledger_record("req-2", owner) == failed
    assert await store.ledger_record("req-1", other) is None
    assert await store.ledger_record("req-404", owner) is None
    # Another key may use the same request id without touching the first key's record.
    await store.append_ledger([ledger_record(other, "req-1", cost_micros=5)])
    assert await store.ledger_record("req-1", owner) == full


async def test_ledger_sums_per_key(store: AccountStore) -> None:
    first, second = await add_key(store), await add_key(store)
    await store.append_ledger([ledger_record(first, f"r{i}", cost_micros=1_000_001 * i) for i in range(10)])
    await store.append_ledger([ledger_record(second, "r1", cost_micros=7)])
    assert await store.ledger_sum(first) == 45_000_045
    assert await store.ledger_sum(second) == 7
    assert await store.ledger_sum("key_nope") == 0


async def test_everything_survives_reopening(backend: Backend) -> None:
    store = await backend.open()
    record, secret_hash = key_record(credit_limit=2.0, allowed_models=("m",))
    await store.insert_key(record, secret_hash)
    assert await store.reserve(record.id, "r1", 300_000)
    assert await store.reserve(record.id, "r2", 500_000)
    assert await store.settle(record.id, "r1", 250_000)
    await store.append_ledger([ledger_record(record.id, "r1", cost_micros=250_000)])
    await store.close()

    reopened = await backend.open()
    try:
        assert await reopened.key_by_hash(secret_hash) == (replace(record, credit_used=0.25), secret_hash)
        assert await reopened.balance(record.id) == Balance(2_000_000, 250_000, 500_000)
        assert await reopened.ledger_sum(record.id) == 250_000
        assert not await reopened.settle(record.id, "r1", 250_000)
        assert await reopened.settle(record.id, "r2", 100_000)
        assert await reopened.balance(record.id) == Balance(2_000_000, 350_000, 0)
    finally:
        await reopened.close()


# stored responses (the Responses API's `store`, `previous_response_id` and background mode)


def stored(key_id: str, response_id: str, *, status: str = "completed", **changes: object) -> StoredResponse:
    record = StoredResponse(
        id=response_id,
        key_id=key_id,
        created_at=time.time(),
        status=status,
        model="gpt-test",
        provider="fake",
        previous_response_id=None,
        background=False,
        response=b"\x0a\x03abc",
        input_items=b"\x0a\x00",
    )
    return replace(record, **changes)  # type: ignore[arg-type]


async def test_stored_responses_belong_to_their_key(store: AccountStore) -> None:
    owner, other = await add_key(store), await add_key(store)
    record = stored(owner, "resp_1", previous_response_id="resp_0", upstream_id="up_1")
    await store.insert_response(record)
    assert await store.get_response("resp_1", owner) == record
    assert await store.get_response("resp_1", other) is None
    assert await store.get_response("resp_nope", owner) is None
    assert not await store.delete_response("resp_1", other)
    assert await store.get_response("resp_1", owner) == record
    assert await store.delete_response("resp_1", owner)
    assert not await store.delete_response("resp_1", owner)
    assert await store.get_response("resp_1", owner) is None


async def test_updating_a_response_only_moves_it_from_the_expected_states(store: AccountStore) -> None:
    key_id = await add_key(store)
    queued = stored(key_id, "resp_bg", status="queued", background=True, lease_until=100.0)
    await store.insert_response(queued)
    running = replace(queued, status="in_progress", reservation_id="res_1", lease_until=200.0)
    assert await store.update_response(running, ("queued",))
    assert await store.get_response("resp_bg", key_id) == running
    cancelled = replace(running, status="cancelled", lease_until=None)
    assert await store.update_response(cancelled, ("queued", "in_progress"))
    # A completion that comes after the cancel must not overwrite it.
    done = replace(running, status="completed", response=b"\x0a\x01z", provider="other")
    assert not await store.update_response(done, ("queued", "in_progress"))
    assert await store.get_response("resp_bg", key_id) == cancelled
    # Another key's record of the same id changes nothing.
    assert not await store.update_response(replace(cancelled, key_id="key_other"), ("cancelled",))


async def test_expired_leases_name_the_orphaned_background_responses(store: AccountStore) -> None:
    key_id = await add_key(store)
    await store.insert_response(stored(key_id, "resp_old", status="in_progress", lease_until=10.0))
    await store.insert_response(stored(key_id, "resp_queued", status="queued", lease_until=20.0))
    await store.insert_response(stored(key_id, "resp_alive", status="in_progress", lease_until=10.0))
    await store.insert_response(stored(key_id, "resp_done", status="completed", lease_until=1.0))
    await store.renew_response_leases(["resp_alive"], 1000.0)
    expired = await store.expired_responses(50.0)
    assert sorted(record.id for record in expired) == ["resp_old", "resp_queued"]
    alive = await store.get_response("resp_alive", key_id)
    assert alive is not None and alive.lease_until == 1000.0


async def test_retention_deletes_responses_created_before_a_time(store: AccountStore) -> None:
    key_id = await add_key(store)
    await store.insert_response(stored(key_id, "resp_old", created_at=100.0))
    await store.insert_response(stored(key_id, "resp_new", created_at=300.0))
    assert await store.delete_responses_before(200.0) == 1
    assert await store.get_response("resp_old", key_id) is None
    assert await store.get_response("resp_new", key_id) is not None


async def test_stored_responses_survive_reopening(backend: Backend) -> None:
    first = await backend.open()
    key_id = await add_key(first)
    record = stored(key_id, "resp_kept", response=bytes(range(256)))
    await first.insert_response(record)
    await first.close()
    second = await backend.open()
    try:
        assert await second.get_response("resp_kept", key_id) == record
    finally:
        await second.close()


# reading the ledger back


def _record(
    key_id: str,
    request_id: str,
    at: float,
    *,
    model: str = "m1",
    provider: str | None = "p1",
    status: str = "success",
    http_status: int = 200,
    cost: int = 0,
    latency: float = 10.0,
    prompt: int = 1,
    completion: int = 2,
    upstream_cost: int = 0,
) -> LedgerRecord:
    return LedgerRecord(
        request_id=request_id,
        key_id=key_id,
        created_at=at,
        model_requested=model,
        status=status,  # type: ignore[arg-type]
        http_status=http_status,
        provider=provider,
        prompt_tokens=prompt,
        completion_tokens=completion,
        cost_micros=cost,
        latency_ms=latency,
        upstream_cost_micros=upstream_cost,
    )


T0 = 1_767_225_600.0  # a UTC midnight


async def _ids(store: AccountStore, where: GenerationFilter, limit: int = 100) -> list[str]:
    page = await store.list_generations(where, limit)
    return [record.request_id for record in page.records]


async def test_generations_are_listed_newest_first_and_filtered(store: AccountStore) -> None:
    first, second = await add_key(store), await add_key(store)
    await store.append_ledger(
        [
            _record(first, "a", T0 + 1, model="m1", provider="p1", cost=100),
            _record(first, "b", T0 + 2, model="m2", provider="p2", cost=2_000),
            _record(first, "c", T0 + 3, model="m1", provider=None, status="error", http_status=502),
            _record(second, "d", T0 + 4, model="m1", provider="p1", status="error", http_status=429),
            _record(second, "e", T0 + 5, model="m2", provider="p1", status="cancelled", http_status=499),
        ]
    )
    assert await _ids(store, GenerationFilter()) == ["e", "d", "c", "b", "a"]
    assert await _ids(store, GenerationFilter(key_id=first)) == ["c", "b", "a"]
    assert await _ids(store, GenerationFilter(model="m2")) == ["e", "b"]
    assert await _ids(store, GenerationFilter(provider="p1")) == ["e", "d", "a"]
    assert await _ids(store, GenerationFilter(status="success")) == ["b", "a"]
    assert await _ids(store, GenerationFilter(status="error")) == ["d", "c"]
    assert await _ids(store, GenerationFilter(status="cancelled")) == ["e"]
    assert await _ids(store, GenerationFilter(status="5xx")) == ["c"]
    assert await _ids(store, GenerationFilter(status="4xx")) == ["e", "d"]
    assert await _ids(store, GenerationFilter(status="429")) == ["d"]
    assert await _ids(store, GenerationFilter(since=T0 + 2, until=T0 + 4)) == ["c", "b"]
    assert await _ids(store, GenerationFilter(min_cost_micros=100)) == ["b", "a"]
    assert await _ids(store, GenerationFilter(max_cost_micros=100)) == ["e", "d", "c", "a"]
    assert await _ids(store, GenerationFilter(min_cost_micros=101, max_cost_micros=5_000)) == ["b"]
    assert await _ids(store, GenerationFilter(key_id=second, model="m1", status="4xx")) == ["d"]
    assert await _ids(store, GenerationFilter(key_id="key_nope")) == []


async def test_generation_pages_follow_their_cursor_through_equal_times(store: AccountStore) -> None:
    key_id = await add_key(store)
    # Three records share a second: the cursor must not skip or repeat any of them.
    times = [T0 + 1, T0 + 2, T0 + 2, T0 + 2, T0 + 3, T0 + 4, T0 + 5]
    await store.append_ledger([_record(key_id, f"r{i}", at) for i, at in enumerate(times)])
    seen: list[str] = []
    cursor: Cursor | None = None
    pages = 0
    while True:
        page = await store.list_generations(GenerationFilter(key_id=key_id), 2, cursor)
        seen += [record.request_id for record in page.records]
        pages += 1
        if page.next_cursor is None:
            break
        cursor = Cursor.decode(page.next_cursor.encode())
    assert seen == ["r6", "r5", "r4", "r3", "r2", "r1", "r0"]
    assert pages == 4
    # A full last page says there is no more.
    last = await store.list_generations(GenerationFilter(key_id=key_id), 7)
    assert len(last.records) == 7 and last.next_cursor is None


async def test_usage_aggregates_by_group_and_bucket(store: AccountStore) -> None:
    first, second = await add_key(store), await add_key(store)
    latencies = [10.0, 20.0, 30.0, 40.0, 1000.0]
    records = [
        _record(
            first,
            f"a{i}",
            T0 + 60 * i,
            model="m1",
            cost=1_000,
            latency=latency,
            prompt=10,
            completion=5,
            upstream_cost=1_500,
        )
        for i, latency in enumerate(latencies)
    ]
    records.append(
        _record(first, "b", T0 + 3600 + 5, model="m2", provider="p2", cost=7, latency=3.0, upstream_cost=3)
    )
    records.append(
        _record(
            second,
            "c",
            T0 + 3600 + 6,
            model="m1",
            status="error",
            http_status=502,
            provider=None,
            latency=9.0,
            upstream_cost=40,  # a failed call the provider still billed: no charge, a spend
        )
    )
    records.append(_record(second, "d", T0 + 86400 * 2, model="m1"))  # outside the range below
    await store.append_ledger(records)
    window = GenerationFilter(since=T0, until=T0 + 86400)

    totals = await store.usage(UsageQuery(window))
    assert len(totals) == 1
    total = totals[0]
    assert (total.bucket_start, total.group, total.requests, total.errors) == (None, None, 7, 1)
    assert total.prompt_tokens == 5 * 10 + 1 + 1
    assert total.completion_tokens == 5 * 5 + 2 + 2
    assert total.cost_micros == 5_007
    assert total.upstream_cost_micros == 5 * 1_500 + 3 + 40
    ordered = sorted([*latencies, 3.0, 9.0])
    assert total.p50_latency_ms == pytest.approx(percentile(ordered, 0.5))
    assert total.p95_latency_ms == pytest.approx(percentile(ordered, 0.95))

    by_model = await store.usage(UsageQuery(window, group_by="model"))
    assert [
        (row.group, row.requests, row.cost_micros, row.errors, row.upstream_cost_micros) for row in by_model
    ] == [
        ("m1", 6, 5_000, 1, 7_540),
        ("m2", 1, 7, 0, 3),
    ]
    m1 = by_model[0]
    assert m1.p50_latency_ms == pytest.approx(25.0)  # 9, 10, 20, 30, 40, 1000
    assert m1.p95_latency_ms == pytest.approx(percentile([9.0, 10.0, 20.0, 30.0, 40.0, 1000.0], 0.95))

    by_key = await store.usage(UsageQuery(window, group_by="key"))
    assert {row.group: row.requests for row in by_key} == {first: 6, second: 1}
    by_provider = await store.usage(UsageQuery(window, group_by="provider"))
    assert {row.group: row.requests for row in by_provider} == {None: 1, "p1": 5, "p2": 1}

    hourly = await store.usage(UsageQuery(window, bucket_seconds=3600))
    assert [(row.bucket_start, row.requests) for row in hourly] == [(T0, 5), (T0 + 3600, 2)]
    minutes = await store.usage(
        UsageQuery(GenerationFilter(key_id=first, since=T0, until=T0 + 3600), "model", 60)
    )
    assert [(row.bucket_start, row.group, row.requests) for row in minutes] == [
        (T0 + 60 * i, "m1", 1) for i in range(5)
    ]
    assert minutes[4].p50_latency_ms == pytest.approx(1000.0)
    daily = await store.usage(UsageQuery(GenerationFilter(since=T0, until=T0 + 3 * 86400), "key", 86400))
    assert [(row.bucket_start, row.group, row.requests) for row in daily] == sorted(
        [(T0, first, 6), (T0, second, 1), (T0 + 2 * 86400, second, 1)], key=lambda row: (row[0], row[1])
    )
    empty = GenerationFilter(since=T0 + 5 * 86400, until=T0 + 6 * 86400)
    assert await store.usage(UsageQuery(empty)) == []
    assert await store.usage(UsageQuery(empty, "model", 3600)) == []


async def test_the_audit_log_keeps_events_newest_first(store: AccountStore) -> None:
    for index in range(5):
        await store.append_audit(
            AuditEvent(
                T0 + index,
                "admin",
                f"key.update.{index}",
                f"key_{index}",
                "10.0.0.1",
                "rest",
                '{"rpm_limit": 5}',
            )
        )
    events = await store.list_audit(3)
    assert [event.action for event in events] == ["key.update.4", "key.update.3", "key.update.2"]
    first = events[0]
    assert (first.at, first.actor, first.target, first.source, first.via) == (
        T0 + 4,
        "admin",
        "key_4",
        "10.0.0.1",
        "rest",
    )
    assert orjson.loads(first.detail) == {"rpm_limit": 5}
    assert first.id is not None
    older = await store.list_audit(10, before_id=events[-1].id)
    assert [event.action for event in older] == ["key.update.1", "key.update.0"]
