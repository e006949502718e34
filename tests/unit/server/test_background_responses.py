"""The stored-responses sweep: orphans of a dead process fail and give their credits back; retention."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from server.accounts.sqlite_accounts import SqliteAccountStore
from server.accounts.store import Balance, StoredResponse
from server.background_responses import BackgroundResponses
from server.providers.base import RequestContext
from server.stored_responses import ResponseState, Turn
from siraya.router.v1 import responses_pb2
from tests.unit.server.accounts.accounts_backends import key_record


def record(key_id: str, response_id: str, status: str, **fields: object) -> StoredResponse:
    response = responses_pb2.Response(id=response_id, object="response", status=status, model="m")
    values: dict[str, object] = {
        "id": response_id,
        "key_id": key_id,
        "created_at": time.time(),
        "status": status,
        "model": "m",
        "provider": "p",
        "previous_response_id": None,
        "background": True,
        "response": response.SerializeToString(),
        "input_items": b"",
        **fields,
    }
    return StoredResponse(**values)  # type: ignore[arg-type]


async def test_an_orphaned_response_fails_and_releases_its_reservation(tmp_path: Path) -> None:
    store = SqliteAccountStore(tmp_path / "gateway.db")
    try:
        key, secret_hash = key_record(credit_limit=1.0)
        await store.insert_key(key, secret_hash)
        assert await store.reserve(key.id, "res_1", 500)
        now = time.time()
        await store.insert_response(
            record(key.id, "resp_dead", "in_progress", reservation_id="res_1", lease_until=now - 1)
        )
        await store.insert_response(record(key.id, "resp_live", "in_progress", lease_until=now + 60))
        sweep = BackgroundResponses(
            ResponseState(store), lease_seconds=0.1, retention_days=0, release=store.release
        )
        await sweep.sweep_once()

        dead = await store.get_response("resp_dead", key.id)
        assert dead is not None and dead.status == "failed" and dead.lease_until is None
        failed = responses_pb2.Response.FromString(dead.response)
        assert failed.status == "failed" and failed.error.code == "server_error"
        assert "stopped" in failed.error.message
        assert await store.balance(key.id) == Balance(1_000_000, 0, 0)
        live = await store.get_response("resp_live", key.id)
        assert live is not None and live.status == "in_progress"
    finally:
        await store.close()


async def test_retention_deletes_old_responses(tmp_path: Path) -> None:
    store = SqliteAccountStore(tmp_path / "gateway.db")
    try:
        day = 86400.0
        await store.insert_response(
            record("key_a", "resp_old", "completed", created_at=time.time() - 3 * day)
        )
        await store.insert_response(record("key_a", "resp_new", "completed", created_at=time.time() - day))
        sweep = BackgroundResponses(ResponseState(store), lease_seconds=0.1, retention_days=2)
        await sweep.sweep_once()
        assert await store.get_response("resp_old", "key_a") is None
        assert await store.get_response("resp_new", "key_a") is not None
    finally:
        await store.close()


async def test_a_cancel_stored_by_another_process_stops_the_task_here(tmp_path: Path) -> None:
    store = SqliteAccountStore(tmp_path / "gateway.db")
    try:
        key, secret_hash = key_record()
        await store.insert_key(key, secret_hash)
        background = BackgroundResponses(ResponseState(store), lease_seconds=0.1, retention_days=0)
        params = responses_pb2.ResponseParams(model="m", input_text="x")
        turn = Turn("resp_x", key.id, time.time(), params, [], None, True, True)
        stopped = asyncio.Event()

        async def run(*_: object) -> object:
            try:
                await asyncio.sleep(30)
            finally:
                stopped.set()
            yield  # pragma: no cover

        await background.create(turn, key, RequestContext(request_id="req"), run)  # type: ignore[arg-type]
        other_process = BackgroundResponses(ResponseState(store), lease_seconds=0.1, retention_days=0)
        cancelled = await other_process.cancel("resp_x", key)
        assert cancelled.status == "cancelled"
        await background.sweep_once()
        await asyncio.wait_for(stopped.wait(), 5)
        record = await store.get_response("resp_x", key.id)
        assert record is not None and record.status == "cancelled"
        await background.close()
    finally:
        await store.close()
