"""Key creation, hashing and authentication, on the accounts store (SQLite here; the store contract
covers Postgres)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from server.accounts.keys import KeyManager, NewKey, hash_secret
from server.accounts.sqlite_accounts import SqliteAccountStore
from server.errors import AuthenticationFailed


@pytest.fixture
async def manager(tmp_path: Path) -> AsyncIterator[KeyManager]:
    store = SqliteAccountStore(tmp_path / "keys.db")
    yield KeyManager(store, cache_ttl=0)
    await store.close()


async def test_secret_is_stored_only_as_hash(manager: KeyManager, tmp_path: Path) -> None:
    record, secret = await manager.create(NewKey(name="app"))
    assert secret.startswith("sk-sr-") and record.prefix == secret[:10]
    raw = (tmp_path / "keys.db").read_bytes() + b"".join(p.read_bytes() for p in tmp_path.glob("keys.db-*"))
    assert secret.encode() not in raw
    assert hash_secret(secret).encode() in raw
    assert (await manager.authenticate(f"Bearer {secret}")).id == record.id


async def test_bad_missing_revoked_and_expired_keys_fail(manager: KeyManager) -> None:
    record, secret = await manager.create(NewKey(name="app"))
    for header in (None, "", "Bearer", "Token abc", "Bearer sk-sr-wrong"):
        with pytest.raises(AuthenticationFailed):
            await manager.authenticate(header)
    await manager.revoke(record.id)
    with pytest.raises(AuthenticationFailed, match="revoked"):
        await manager.authenticate(f"Bearer {secret}")
    _, expired = await manager.create(NewKey(name="old", expires_at=int(time.time()) - 1))
    with pytest.raises(AuthenticationFailed, match="expired"):
        await manager.authenticate(f"Bearer {expired}")


async def test_revocation_applies_at_once_despite_the_cache(tmp_path: Path) -> None:
    store = SqliteAccountStore(tmp_path / "keys.db")
    manager = KeyManager(store, cache_ttl=60)
    try:
        record, secret = await manager.create(NewKey(name="app"))
        await manager.authenticate(f"Bearer {secret}")  # cached now
        await manager.revoke(record.id)
        with pytest.raises(AuthenticationFailed, match="revoked"):
            await manager.authenticate(f"Bearer {secret}")
    finally:
        await store.close()


async def test_error_never_echoes_the_whole_key(manager: KeyManager) -> None:
    presented = "sk-sr-" + "A" * 40
    with pytest.raises(AuthenticationFailed) as caught:
        await manager.authenticate(f"Bearer {presented}")
    assert presented not in caught.value.message


async def test_rotate_replaces_the_secret(manager: KeyManager) -> None:
    record, old = await manager.create(NewKey(name="app"))
    rotated = await manager.rotate(record.id)
    assert rotated is not None and rotated[0].prefix == rotated[1][:10]
    with pytest.raises(AuthenticationFailed):
        await manager.authenticate(f"Bearer {old}")
    assert (await manager.authenticate(f"Bearer {rotated[1]}")).id == record.id
    await manager.revoke(record.id)
    assert await manager.rotate(record.id) is None


async def test_keys_survive_reopening_the_store(tmp_path: Path) -> None:
    first = SqliteAccountStore(tmp_path / "k.db")
    _, secret = await KeyManager(first).create(NewKey(name="app", credit_limit=1.5))
    await first.close()
    second = SqliteAccountStore(tmp_path / "k.db")
    try:
        key = await KeyManager(second).authenticate(f"Bearer {secret}")
        assert key.name == "app" and key.credit_limit == 1.5
    finally:
        await second.close()
