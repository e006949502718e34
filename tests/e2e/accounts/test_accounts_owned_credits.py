"""One `siraya-router serve` process on SQLite keeps its keys' credits in memory
(owned_sqlite_accounts.py): it never overspends under concurrent requests, and a gateway killed
between answering (settling) and writing its batch to the file loses no charge and charges none
twice when it comes back."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from server.accounts.money import usd_to_micros
from server.accounts.sqlite_accounts import SqliteAccountStore
from tests.e2e.accounts_harness import IMAGE_PRICE, AccountsHarness, GatewayProcess, admin, render_config

N = 5  # requests the key can pay for
BODY = {"model": "image-priced", "prompt": "a cat", "n": 1}


@pytest.fixture(scope="module")
def upstreams(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AccountsHarness]:
    harness = AccountsHarness(tmp_path_factory.mktemp("owned"), in_process=True).start(gateway=False)
    yield harness
    harness.stop()


def _config(upstreams: AccountsHarness, tmp_path: Path, flush: float) -> Path:
    path = tmp_path / "gateway.yaml"
    path.write_text(
        render_config(
            tmp_path / "data", upstreams.upstream.base_url, upstreams.moderations.base_url, flush=flush
        )
    )
    return path


def _file_credits(db: Path, key_id: str) -> tuple[int, int]:
    with sqlite3.connect(db) as conn:
        row = conn.execute(
            "SELECT credit_used_micros, credit_reserved_micros FROM keys WHERE id = ?", (key_id,)
        ).fetchone()
    return int(row[0]), int(row[1])


async def _fire(base_url: str, secret: str, count: int) -> list[httpx.Response]:
    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=200)) as client:
        return await asyncio.gather(
            *(
                client.post(
                    f"{base_url}/images/generations", headers={"Authorization": f"Bearer {secret}"}, json=BODY
                )
                for _ in range(count)
            )
        )


def test_concurrent_requests_on_one_gateway_never_overspend(
    upstreams: AccountsHarness, tmp_path: Path
) -> None:
    gateway = GatewayProcess(_config(upstreams, tmp_path, flush=0.05))
    try:
        created = admin(
            "POST", f"{gateway.base_url}/keys", json={"name": "hot", "credit_limit": N * IMAGE_PRICE}
        )
        assert created.status_code == 200, created.text
        key_id, secret = created.json()["id"], created.json()["secret"]
        responses = asyncio.run(_fire(gateway.base_url, secret, 20 * N))
        statuses = sorted(response.status_code for response in responses)
        assert statuses.count(200) == N, statuses
        assert statuses.count(402) == 20 * N - N, statuses
    finally:
        assert gateway.stop() == 0

    async def totals() -> tuple[int, int, int]:
        store = SqliteAccountStore(tmp_path / "data" / "siraya.db")
        try:
            balance = await store.balance(key_id)
            assert balance is not None
            return await store.ledger_sum(key_id), balance.used, balance.reserved
        finally:
            await store.close()

    ledger_sum, used, reserved = asyncio.run(totals())
    assert ledger_sum == used == N * usd_to_micros(IMAGE_PRICE)
    assert reserved == 0


def test_a_gateway_killed_before_its_batch_is_written_loses_no_charge(
    upstreams: AccountsHarness, tmp_path: Path
) -> None:
    config = _config(upstreams, tmp_path, flush=600)  # the batch would be written in ten minutes
    db = tmp_path / "data" / "siraya.db"
    first = GatewayProcess(config)
    try:
        created = admin("POST", f"{first.base_url}/keys", json={"name": "crash", "credit_limit": 1})
        key_id, secret = created.json()["id"], created.json()["secret"]
        responses = asyncio.run(_fire(first.base_url, secret, 3))
        assert [r.status_code for r in responses] == [200] * 3
        assert all(
            r.json()["usage"]["cost"] == pytest.approx(IMAGE_PRICE) for r in responses if "usage" in r.json()
        )
        # Answered and settled, not yet in the file: only the journal has the charges.
        assert _file_credits(db, key_id) == (0, 0)
        journal = db.with_name("siraya.db.credits-journal.0")
        assert journal.read_text().count("\n") == 3
    finally:
        first.kill()

    second = GatewayProcess(config)
    try:
        response = httpx.get(
            f"{second.base_url}/key", headers={"Authorization": f"Bearer {secret}"}, timeout=20
        )
        assert response.status_code == 200
        assert response.json()["data"]["usage"] == pytest.approx(3 * IMAGE_PRICE)
        assert response.json()["data"]["limit_remaining"] == pytest.approx(1 - 3 * IMAGE_PRICE)
        assert _file_credits(db, key_id) == (3 * usd_to_micros(IMAGE_PRICE), 0)
        # One more request, then a second crash: the replayed charges are not charged again.
        assert asyncio.run(_fire(second.base_url, secret, 1))[0].status_code == 200
    finally:
        second.kill()

    third = GatewayProcess(config)
    try:
        response = httpx.get(
            f"{third.base_url}/key", headers={"Authorization": f"Bearer {secret}"}, timeout=20
        )
        assert response.json()["data"]["usage"] == pytest.approx(4 * IMAGE_PRICE)
    finally:
        assert third.stop() == 0
    assert _file_credits(db, key_id) == (4 * usd_to_micros(IMAGE_PRICE), 0)


def test_a_reload_keeps_one_owner_of_the_credits(upstreams: AccountsHarness, tmp_path: Path) -> None:
    gateway = GatewayProcess(_config(upstreams, tmp_path, flush=600))  # batches only when stopped
    db = tmp_path / "data" / "siraya.db"
    try:
        created = admin("POST", f"{gateway.base_url}/keys", json={"name": "reload", "credit_limit": 1})
        key_id, secret = created.json()["id"], created.json()["secret"]
        assert asyncio.run(_fire(gateway.base_url, secret, 1))[0].status_code == 200
        gateway.process.send_signal(signal.SIGHUP)
        root = gateway.base_url.removesuffix("/v1")
        deadline = time.monotonic() + 30
        while 'siraya_config_reloads_total{result="ok"} 1.0' not in httpx.get(f"{root}/metrics").text:
            assert time.monotonic() < deadline, "the gateway did not reload"
            time.sleep(0.05)
        assert [r.status_code for r in asyncio.run(_fire(gateway.base_url, secret, 3))] == [200] * 3
        # The reloaded gateway settles through the same in-memory owner: every charge is still only
        # journaled (a second store would have written the file, or been refused while the old
        # gateway still held the file's credits).
        assert _file_credits(db, key_id) == (0, 0)
        assert db.with_name("siraya.db.credits-journal.0").read_text().count("\n") == 4
        response = httpx.get(
            f"{gateway.base_url}/key", headers={"Authorization": f"Bearer {secret}"}, timeout=20
        )
        assert response.json()["data"]["usage"] == pytest.approx(4 * IMAGE_PRICE)
    finally:
        assert gateway.stop() == 0
    assert _file_credits(db, key_id) == (4 * usd_to_micros(IMAGE_PRICE), 0)
