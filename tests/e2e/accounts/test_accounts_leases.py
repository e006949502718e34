"""Leases on credit reservations (#18): a replica killed with SIGKILL in the middle of a burst leaves
its reservations open; the surviving replica releases them once the dead one's lease has ended
(seconds, not the two hours of the stale sweep), and the key can spend that credit again."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from server.accounts.postgres_accounts import PostgresAccountStore
from tests.e2e.accounts_harness import AccountsHarness, GatewayProcess, admin, postgres_replicas
from tests.fakes.openai_upstream import Fault
from tests.unit.server.accounts.accounts_backends import (
    postgres_unavailable,
    redis_unavailable,
)

LEASE = 2.0  # seconds, renewed every 0.4 s
HELD = 20  # requests the doomed replica holds open when it is killed
LIMIT = 0.05
BODY = {"model": "gpt-priced", "messages": [{"role": "user", "content": "hello"}], "max_tokens": 1000}


def _with_lease(config: str) -> str:
    return config.replace("accounts:\n", f"accounts:\n  reservation_lease: {LEASE}\n", 1)


@pytest.fixture
def replicas(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[AccountsHarness, str, list[GatewayProcess]]]:
    reason = postgres_unavailable() or redis_unavailable()
    if reason:
        pytest.skip(reason)
    upstreams = AccountsHarness(tmp_path_factory.mktemp("leases"), in_process=True).start(gateway=False)
    try:
        with postgres_replicas(upstreams, _with_lease) as (dsn, gateways):
            yield upstreams, dsn, gateways
    finally:
        upstreams.stop()


async def _open_reservations(dsn: str, key_id: str) -> tuple[int, int, int]:
    """(open reservations, expired ones, credit_reserved_micros) of the key."""
    store = await PostgresAccountStore.open(dsn, max_size=1)
    try:
        counts = dict(
            await store._pool.fetch(
                "SELECT state, count(*) FROM credit_reservations WHERE key_id = $1 GROUP BY state", key_id
            )
        )
        balance = await store.balance(key_id)
        assert balance is not None
        return counts.get("open", 0), counts.get("expired", 0), balance.reserved
    finally:
        await store.close()


def test_a_killed_replicas_reservations_are_free_again_within_its_lease(
    replicas: tuple[AccountsHarness, str, list[GatewayProcess]],
) -> None:
    upstreams, dsn, (doomed, survivor) = replicas
    created = admin("POST", f"{survivor.base_url}/keys", json={"name": "leased", "credit_limit": LIMIT})
    key_id, secret = created.json()["id"], created.json()["secret"]
    headers = {"Authorization": f"Bearer {secret}"}
    upstreams.upstream.inject(Fault(path="/v1/chat/completions", hang=60, times=HELD))

    def call(base: str, body: dict[str, object]) -> int:
        try:
            return httpx.post(f"{base}/chat/completions", json=body, headers=headers, timeout=90).status_code
        except httpx.HTTPError:
            return 0  # the replica died under it

    with ThreadPoolExecutor(max_workers=HELD) as pool:
        burst = [pool.submit(call, doomed.base_url, BODY) for _ in range(HELD)]
        deadline = time.monotonic() + 30
        while asyncio.run(_open_reservations(dsn, key_id))[0] < HELD:
            assert time.monotonic() < deadline, "the burst never got its reservations"
            time.sleep(0.1)
        held = asyncio.run(_open_reservations(dsn, key_id))[2]
        assert held > LIMIT * 1e6 / 2
        # Most of the credit is held by the doomed replica's requests: a big request is refused.
        big = {**BODY, "max_tokens": 12_000}
        assert call(survivor.base_url, big) == 402
        doomed.kill()  # SIGKILL: no graceful stop, no release, no end of lease
        killed_at = time.monotonic()
        assert all(future.result() == 0 for future in burst)
    while True:
        opened, expired, reserved = asyncio.run(_open_reservations(dsn, key_id))
        if opened == 0:
            break
        assert time.monotonic() - killed_at < LEASE * 3 + 2, "the dead replica's credit stayed held"
        time.sleep(0.1)
    freed_after = time.monotonic() - killed_at
    assert (expired, reserved) == (HELD, 0)
    assert freed_after <= LEASE * 3 + 2
    # The credit is usable again on the surviving replica.
    assert call(survivor.base_url, big) == 200
