"""Key creation, hashing and authentication against the SQLite store."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from server.accounts.keys import KeyManager, NewKey, hash_secret
from server.accounts.sqlite_store import SqliteStore
from server.errors import AuthenticationFailed


@pytest.fixture
def manager(tmp_path: Path) -> KeyManager:
    return KeyManager(SqliteStore(tmp_path / "keys.db"), cache_ttl=0)


def test_secret_is_stored_only_as_hash(manager: KeyManager, tmp_path: Path) -> None:
    record, secret = manager.create(NewKey(name="app"))
    assert secret.startswith("sk-sr-") and record.prefix == secret[:10]
    raw = (tmp_path / "keys.db").read_bytes() + b"".join(p.read_bytes() for p in tmp_path.glob("keys.db-*"))
    assert secret.encode() not in raw
    assert hash_secret(secret).encode() in raw
    assert manager.authenticate(f"Bearer {secret}").id == record.id


def test_bad_missing_revoked_and_expired_keys_fail(manager: KeyManager) -> None:
    record, secret = manager.create(NewKey(name="app"))
    for header in (None, "", "Bearer", "Token abc", "Bearer sk-sr-wrong"):
        with pytest.raises(AuthenticationFailed):
            manager.authenticate(header)
    manager.revoke(record.id)
    with pytest.raises(AuthenticationFailed, match="revoked"):
        manager.authenticate(f"Bearer {secret}")
    _, expired = manager.create(NewKey(name="old", expires_at=int(time.time()) - 1))
    with pytest.raises(AuthenticationFailed, match="expired"):
        manager.authenticate(f"Bearer {expired}")


def test_error_never_echoes_the_whole_key(manager: KeyManager) -> None:
    presented = "sk-sr-" + "A" * 40
    with pytest.raises(AuthenticationFailed) as caught:
        manager.authenticate(f"Bearer {presented}")
    assert presented not in caught.value.message


def test_rotate_replaces_the_secret(manager: KeyManager) -> None:
    record, old = manager.create(NewKey(name="app"))
    rotated = manager.rotate(record.id)
    assert rotated is not None
    with pytest.raises(AuthenticationFailed):
        manager.authenticate(f"Bearer {old}")
    assert manager.authenticate(f"Bearer {rotated[1]}").id == record.id


def test_keys_survive_reopening_the_store(tmp_path: Path) -> None:
    _, secret = KeyManager(SqliteStore(tmp_path / "k.db")).create(NewKey(name="app"))
    assert KeyManager(SqliteStore(tmp_path / "k.db")).authenticate(f"Bearer {secret}").name == "app"
