"""Gateway keys: how a secret is made, hashed and checked. Storage is the AccountStore (store.py),
so SQLite and Postgres deployments keep keys in the same place as their credits.

A replica caches a found key for `cache_ttl` seconds: a key revoked or rotated on another replica
stops working there within that time (on this replica, at once).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Protocol

from server.accounts.budgets import Budget
from server.errors import AuthenticationFailed

KEY_PREFIX = "sk-sr-"
VISIBLE_PREFIX_LENGTH = len(KEY_PREFIX) + 4
# A cache namespace as an admin may set it: visible ASCII, no spaces (it is part of a hashed key).
CACHE_NAMESPACE = re.compile(r"[!-~]{1,128}")


@dataclass(frozen=True, slots=True)
class KeyRecord:
    id: str
    name: str
    prefix: str
    created_at: int
    expires_at: int | None = None
    revoked_at: int | None = None
    allowed_models: tuple[str, ...] = ()
    credit_limit: float | None = None
    credit_used: float = 0.0
    rpm_limit: int | None = None
    tpm_limit: int | None = None
    # The response cache's namespace as set; None: the key's own id (see `cache_namespace_of`).
    cache_namespace: str | None = None
    # The team that owns the key: its requests must also fit the team's budget and limits.
    team_id: str | None = None
    # A spending cap per day, week or month, besides the lifetime credit limit (budgets.py).
    budget: Budget | None = None


@dataclass(frozen=True, slots=True)
class NewKey:
    name: str
    expires_at: int | None = None
    allowed_models: tuple[str, ...] = ()
    credit_limit: float | None = None
    rpm_limit: int | None = None
    tpm_limit: int | None = None
    cache_namespace: str | None = None
    team_id: str | None = None
    budget: Budget | None = None


# What `KeyChanges` may change; a credit limit changes through AccountStore.set_credit_limit, which
# also moves the balance a process may hold in memory.
CHANGEABLE_KEY_FIELDS: tuple[str, ...] = (
    "name",
    "expires_at",
    "allowed_models",
    "rpm_limit",
    "tpm_limit",
    "cache_namespace",
    "team_id",
    "budget",
)


@dataclass(frozen=True, slots=True)
class KeyChanges:
    """New settings for a key: each field named in `fields` takes its value here (None clears it)."""

    fields: frozenset[str]
    name: str = ""
    expires_at: int | None = None
    allowed_models: tuple[str, ...] = ()
    rpm_limit: int | None = None
    tpm_limit: int | None = None
    cache_namespace: str | None = None
    team_id: str | None = None
    budget: Budget | None = None

    def __post_init__(self) -> None:
        unknown = self.fields - set(CHANGEABLE_KEY_FIELDS)
        if unknown:
            raise ValueError(f"not changeable through KeyChanges: {', '.join(sorted(unknown))}")

    def assignments(self) -> list[tuple[str, str | int | tuple[str, ...] | None]]:
        """(column, value) of each changed field, in CHANGEABLE_KEY_FIELDS order (a budget is three
        columns)."""
        found: list[tuple[str, str | int | tuple[str, ...] | None]] = []
        for name in CHANGEABLE_KEY_FIELDS:
            if name not in self.fields:
                continue
            if name == "budget":
                found.extend(budget_columns(self.budget))
            else:
                found.append((name, getattr(self, name)))
        return found


def budget_columns(budget: Budget | None) -> list[tuple[str, str | int | None]]:
    """The (column, value) pairs a budget is stored as, in keys and teams alike."""
    if budget is None:
        return [("budget_limit_micros", None), ("budget_period", None), ("budget_reset", None)]
    return [
        ("budget_limit_micros", budget.limit),
        ("budget_period", budget.period.value),
        ("budget_reset", budget.reset.value),
    ]


def budget_from_columns(limit: int | None, period: str | None, reset: str | None) -> Budget | None:
    if limit is None or period is None or reset is None:
        return None
    return Budget(int(limit), period, reset)  # type: ignore[arg-type]


class KeyStore(Protocol):
    """The key methods of an account store (store.AccountStore extends it): all KeyManager needs."""

    async def insert_key(self, record: KeyRecord, secret_hash: str) -> None: ...
    async def key_by_hash(self, secret_hash: str) -> tuple[KeyRecord, str] | None: ...
    async def key_by_id(self, key_id: str) -> KeyRecord | None: ...
    async def list_keys(self) -> list[KeyRecord]: ...
    async def revoke_key(self, key_id: str, at: int) -> KeyRecord | None:
        """Mark revoked (the first revocation time stays); None for an unknown key."""
        ...

    async def replace_secret(self, key_id: str, prefix: str, secret_hash: str) -> KeyRecord | None:
        """Rotate: the new record, or None when the key is unknown or revoked (nothing replaced)."""
        ...

    async def update_key(self, key_id: str, changes: KeyChanges) -> KeyRecord | None:
        """Change the settings `changes.fields` names (never credits); the new record, or None for an
        unknown key. A revoked key may still be changed (its revocation stays)."""
        ...


def cache_namespace_of(record: KeyRecord) -> str:
    """Whose cached answers `record` reads and writes: its namespace, by default its own id.

    Keys given the same namespace share answers; naming another key's id shares with that key.
    """
    return record.cache_namespace or record.id


def generate_secret() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    # Secrets carry 256 bits of entropy, so a fast hash is enough: nothing to brute-force.
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(slots=True)
class _CachedKey:
    record: KeyRecord
    stored_hash: str
    fetched_at: float


@dataclass
class KeyManager:
    """Creates keys and authenticates bearer tokens, with a short positive cache off the store."""

    store: KeyStore
    cache_ttl: float = 5.0
    _cache: dict[str, _CachedKey] = field(default_factory=dict)

    async def create(self, spec: NewKey) -> tuple[KeyRecord, str]:
        secret = generate_secret()
        record = KeyRecord(
            id="key_" + secrets.token_hex(8),
            name=spec.name,
            prefix=secret[:VISIBLE_PREFIX_LENGTH],
            created_at=int(time.time()),
            expires_at=spec.expires_at,
            allowed_models=spec.allowed_models,
            credit_limit=spec.credit_limit,
            rpm_limit=spec.rpm_limit,
            tpm_limit=spec.tpm_limit,
            cache_namespace=spec.cache_namespace,
            team_id=spec.team_id,
            budget=spec.budget,
        )
        await self.store.insert_key(record, hash_secret(secret))
        return record, secret

    async def get(self, key_id: str) -> KeyRecord | None:
        return await self.store.key_by_id(key_id)

    async def list(self) -> list[KeyRecord]:
        return await self.store.list_keys()

    async def revoke(self, key_id: str) -> KeyRecord | None:
        record = await self.store.revoke_key(key_id, int(time.time()))
        self._cache.clear()
        return record

    async def rotate(self, key_id: str) -> tuple[KeyRecord, str] | None:
        secret = generate_secret()
        record = await self.store.replace_secret(key_id, secret[:VISIBLE_PREFIX_LENGTH], hash_secret(secret))
        self._cache.clear()
        return None if record is None else (record, secret)

    async def update(self, key_id: str, changes: KeyChanges) -> KeyRecord | None:
        """Apply `changes`; the updated record, or None for an unknown key. Applies at once here."""
        record = await self.store.update_key(key_id, changes) if changes.fields else await self.get(key_id)
        self._cache.clear()
        return record

    def forget(self) -> None:
        """Drop cached keys, so that a changed limit applies at once on this replica."""
        self._cache.clear()

    async def authenticate(self, authorization: str | None) -> KeyRecord:
        """The key behind an `Authorization: Bearer ...` value, or AuthenticationFailed."""
        if not authorization:
            raise AuthenticationFailed(
                "You didn't provide an API key. You need to provide your API key in an Authorization header "
                "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
            )
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise AuthenticationFailed("The Authorization header must use Bearer auth.")
        if not token.isascii():
            # No key has such bytes; hashing the surrogates a header can carry would raise.
            raise AuthenticationFailed("Incorrect API key provided: it is not ASCII.")
        presented = hash_secret(token)
        now = time.monotonic()
        cached = self._cache.get(presented)
        if cached is None or now - cached.fetched_at > self.cache_ttl:
            found = await self.store.key_by_hash(presented)
            if found is None:
                raise AuthenticationFailed(f"Incorrect API key provided: {_mask(token)}.")
            cached = _CachedKey(found[0], found[1], now)
            self._cache[presented] = cached
        if not hmac.compare_digest(cached.stored_hash, presented):
            raise AuthenticationFailed(f"Incorrect API key provided: {_mask(token)}.")
        record = cached.record
        if record.revoked_at is not None:
            raise AuthenticationFailed("This API key has been revoked.")
        if record.expires_at is not None and record.expires_at <= time.time():
            raise AuthenticationFailed("This API key has expired.")
        return record


def _mask(token: str) -> str:
    """Enough of a presented key for its owner to recognise it, never enough to use it."""
    if len(token) <= 12:
        return "***"
    return f"{token[:6]}***{token[-4:]}"
