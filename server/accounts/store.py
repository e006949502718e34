"""The contracts every accounts backend meets: keys, credits and the ledger; and rate limits.

    AccountStore   keys, credit reservations, the usage ledger and stored responses
      SqliteAccountStore    (sqlite_accounts.py)    embedded: one file, WAL, several processes
      OwnedSqliteAccountStore (owned_sqlite_accounts.py) embedded default with one worker: credits
                            in memory, settlements journaled then batched into the same file
      PostgresAccountStore  (postgres_accounts.py)  replicas: asyncpg pool, one statement per operation
    LimitStore     requests and tokens per minute, per key (and per team, over its keys)
      MemoryLimitStore      (memory_limits.py)      in-process default
      RedisLimitStore       (redis_limits.py)       replicas: one Lua script, one round trip per hit

All money is `int` micro-dollars (see money.py). The same contract suites in
tests/unit/server/accounts/ (test_account_store_contract.py, test_limit_store_contract.py) run
against every implementation.

Credits. A request's life is `reserve` (worst case, before the upstream call) then exactly one of
`settle` (actual usage; also what a cancelled stream produced) or `release` (failure: refund all).
The first of settle/release for a request id wins; later calls are no-ops that return False, so a
retry after a timeout can never charge twice. `settle` never refuses: if the actual cost exceeds
the reservation the key is charged the actual cost, even past its limit, because the tokens were
spent.

Leases. Each store instance (one per gateway process) names itself (`holder_id`) on every
reservation it makes and vouches for them with a lease it renews (`renew_lease`). When a process
dies, another one's `reclaim_expired` releases its reservations once the lease has ended (state
`expired`), so a killed replica's credit is usable again within seconds. A settle that arrives for
an expired reservation (its process was only slow, not dead) still charges what was spent.
`release_stale` stays as the backstop: it releases any reservation open for hours (rows from before
leases have no holder), and a late settle of one charges nothing.

Levels (budgets.py, teams.py). A reservation may also have to fit spend levels besides the key's
lifetime credit: the key's period budget, its team's lifetime credit and period budget, the global
budget. `reserve_up_to(..., levels)` holds the same amount at the key and in each level's bucket, in
one atomic step, only if every level's window has room; the reservation remembers its levels, so
settle, release and the lease and stale sweeps move every level with the key.

Stored responses (ResponseStore) are the Responses API's state: each one belongs to the key that
made it, and every read, update and delete names that key, so another key's id reads as absent.
A background response holds a lease (`lease_until`) that its process renews while it runs; one
whose lease ran out was left behind by a process that died, and is failed by whoever finds it.

Rate limits use a token bucket per key and dimension (see memory_limits.py for the arithmetic):
capacity R per minute, refilled continuously at R/60 per second. R back-to-back requests pass,
then one more every 60/R seconds. `reset_*` is the time until the bucket is full again (OpenAI's
meaning of x-ratelimit-reset-*); `retry_after` is the time until the refused request would pass.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from server.accounts.budgets import Spend, SpendLevel
from server.accounts.keys import KeyStore
from server.accounts.ledger_queries import Cursor, GenerationFilter, GenerationPage, UsageQuery, UsageRow
from server.accounts.ledger_record import LEDGER_COLUMNS, LedgerAttempt, LedgerRecord, LedgerStatus
from server.accounts.teams import TeamStore

__all__ = [
    "ACTIVE_RESPONSE_STATES",
    "LEDGER_COLUMNS",
    "STORED_RESPONSE_COLUMNS",
    "AccountStore",
    "AuditEvent",
    "Balance",
    "LedgerAttempt",
    "LedgerQueries",
    "LedgerRecord",
    "LedgerSink",
    "LedgerStatus",
    "LimitDecision",
    "LimitStore",
    "NOT_LOADED",
    "NotLoaded",
    "ResponseStore",
    "StoredResponse",
    "SyncCredits",
    "TeamRates",
    "check_reserve_bounds",
    "format_reset",
]


class NotLoaded(enum.Enum):
    """A SyncCredits answer meaning: this process cannot decide without I/O; await the store."""

    NOT_LOADED = "not loaded"


NOT_LOADED = NotLoaded.NOT_LOADED


def check_reserve_bounds(minimum_micros: int, maximum_micros: int) -> None:
    if minimum_micros < 0:
        raise ValueError("a reservation cannot be negative")
    if maximum_micros < minimum_micros:
        raise ValueError("a reservation's maximum cannot be below its minimum")


@dataclass(frozen=True, slots=True)
class Balance:
    """A key's credit position in micro-dollars. `limit` None means unlimited."""

    limit: int | None
    used: int
    reserved: int

    @property
    def available(self) -> int | None:
        return None if self.limit is None else self.limit - self.used - self.reserved


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One administrative action: who did what to which target, when and from where.

    `actor` names the credential ("admin"), never a secret; `source` is the client's address as the
    bridge saw it; `detail` the changed settings as a JSON object (never a secret either).
    """

    at: float
    actor: str
    action: str
    target: str | None = None
    source: str | None = None
    via: str | None = None
    detail: str = "{}"
    id: int | None = None


class LedgerSink(Protocol):
    """Where the LedgerWriter flushes batches."""

    async def append_ledger(self, records: Sequence[LedgerRecord]) -> None: ...


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """One stored Response, as the Responses API's GET, input_items and previous_response_id need it.

    `response` is the serialized responses_pb2.Response and `input_items` the serialized
    responses_pb2.ResponseItems this response was given itself (not those of the responses before
    it): bytes, so that no backend has to understand them.
    """

    id: str
    key_id: str
    created_at: float  # unix seconds
    # queued, in_progress, completed, incomplete, failed or cancelled.
    status: str
    model: str
    provider: str | None
    previous_response_id: str | None
    background: bool
    response: bytes
    input_items: bytes
    # The upstream's own id of the response, when it serves Responses natively.
    upstream_id: str | None = None
    # The credit reservation a running background response holds (released if its process dies).
    reservation_id: str | None = None
    # Until when the process running a queued or in-progress response vouches for it.
    lease_until: float | None = None


STORED_RESPONSE_COLUMNS: tuple[str, ...] = tuple(
    name
    for name in StoredResponse.__dataclass_fields__  # declaration order: the table's columns
)
ACTIVE_RESPONSE_STATES: tuple[str, ...] = ("queued", "in_progress")


class ResponseStore(Protocol):
    """Stored responses, each scoped to the key that created it."""

    async def insert_response(self, record: StoredResponse) -> None: ...

    async def get_response(self, response_id: str, key_id: str) -> StoredResponse | None:
        """The record, only for the key that made it: another key's id gets None."""
        ...

    async def delete_response(self, response_id: str, key_id: str) -> bool:
        """Delete the key's record; False when that key has none of that id."""
        ...

    async def update_response(self, record: StoredResponse, expected: Sequence[str]) -> bool:
        """Replace the record's status, model, provider, response, upstream id, reservation and lease,
        only if its key's row is still in one of the `expected` states; whether it was replaced.

        One conditional statement, so a cancel and a completion racing each other cannot both win.
        """
        ...

    async def renew_response_leases(self, response_ids: Sequence[str], until: float) -> None:
        """Extend the leases of the named responses still queued or in progress."""
        ...

    async def expired_responses(self, now: float) -> list[StoredResponse]:
        """Queued or in-progress responses whose lease ended before `now` (their process died)."""
        ...

    async def delete_responses_before(self, before: float) -> int:
        """Delete every response created before `before` (unix seconds); how many went."""
        ...


class LedgerQueries(Protocol):
    """Reading the ledger back for people and scripts: lists, aggregates, and the audit log.

    Queries live in ledger_queries.py (one SQL text per dialect); every store answers them alike.
    """

    async def list_generations(
        self, where: GenerationFilter, limit: int, cursor: Cursor | None = None
    ) -> GenerationPage:
        """Records matching `where`, newest first; `cursor` continues after a previous page."""
        ...

    async def usage(self, query: UsageQuery) -> list[UsageRow]:
        """Aggregates of the records matching the query's filter, by bucket then group."""
        ...

    async def append_audit(self, event: AuditEvent) -> None: ...

    async def list_audit(self, limit: int, before_id: int | None = None) -> list[AuditEvent]:
        """The newest `limit` events (with their ids), before `before_id` when given."""
        ...


class AccountStore(KeyStore, TeamStore, LedgerSink, ResponseStore, LedgerQueries, Protocol):
    """Keys, credits and the usage ledger behind one async interface.

    Key methods back keys.KeyManager. KeyRecord.credit_limit/credit_used are USD floats for display
    only; `balance` is the authoritative position in micros. `insert_key` converts the record's
    `credit_limit` with money.usd_to_micros (exact for any amount written with <= 6 decimals).
    """

    async def set_credit_limit(self, key_id: str, limit_micros: int | None) -> Balance | None:
        """Change a key's limit (top-up or cap); None for an unknown key."""
        ...

    async def reserve(self, key_id: str, request_id: str, amount_micros: int) -> bool:
        """Hold `amount_micros` for a request, atomically, only if the limit covers it.

        True when limit is None or used + reserved + amount <= limit. False for an unknown key.
        Reserving an id that already has a reservation changes nothing and answers whether that
        reservation is still open.
        """
        ...

    async def reserve_up_to(
        self,
        key_id: str,
        request_id: str,
        minimum_micros: int,
        maximum_micros: int,
        levels: Sequence[SpendLevel] = (),
    ) -> int | None:
        """Hold as much of `maximum_micros` as the limit covers, atomically, if that is at least
        `minimum_micros`; the amount held, or None when refused (an unknown key too).

        With `levels` (sorted by scope), the amount also fits each level's window and is held in
        each level's bucket in the same step. An unlimited key with no limited level is granted the
        maximum. An id that already has a reservation changes nothing: its amount while it is open,
        None once it is settled or released.
        """
        ...

    async def spent(self, levels: Sequence[SpendLevel]) -> list[Spend]:
        """Each level's spend in its window now: charged, and held by requests in flight."""
        ...

    async def settle(self, key_id: str, request_id: str, actual_micros: int) -> bool:
        """Release the reservation and charge the actual cost. False if already settled/released."""
        ...

    async def release(self, key_id: str, request_id: str) -> bool:
        """Refund the whole reservation. False if there is none open."""
        ...

    async def release_stale(self, before: float) -> int:
        """Release open reservations made before `before` (unix seconds); how many were released.
        The backstop behind leases (and for rows of gateways from before them)."""
        ...

    async def renew_lease(self, until: float) -> None:
        """Vouch until `until` (unix seconds) for the open reservations this store made."""
        ...

    async def end_lease(self) -> None:
        """Stop vouching (a graceful stop): what is still open is reclaimed by the next sweep."""
        ...

    async def reclaim_expired(self, now: float) -> int:
        """Release the open reservations of other stores whose lease ended before `now` (their process
        died); how many. A late settle of one still charges what was spent."""
        ...

    async def balance(self, key_id: str) -> Balance | None: ...
    async def ledger_record(self, request_id: str, key_id: str) -> LedgerRecord | None:
        """The record, only for the key that made the request: another key's id gets None."""
        ...

    async def ledger_sum(self, key_id: str) -> int:
        """The total `cost_micros` of a key's ledger records."""
        ...

    async def close(self) -> None: ...


@runtime_checkable
class SyncCredits(Protocol):
    """A store whose credits live in this process: the same operations without suspending.

    `reserve_nowait`/`settle_nowait` answer None when they cannot decide without I/O (the key is
    not loaded yet); the caller then awaits the AccountStore method. Request ids must be fresh
    or come from this process's own reserve.
    """

    def reserve_nowait(self, key_id: str, request_id: str, amount_micros: int) -> bool | None: ...
    def reserve_up_to_nowait(
        self,
        key_id: str,
        request_id: str,
        minimum_micros: int,
        maximum_micros: int,
        levels: Sequence[SpendLevel] = (),
    ) -> int | None | NotLoaded:
        """`reserve_up_to` without suspending; NOT_LOADED when the key or a level's window is not
        loaded yet."""
        ...

    def settle_nowait(self, key_id: str, request_id: str, actual_micros: int) -> bool | None: ...
    def release_nowait(self, key_id: str, request_id: str) -> bool: ...


@dataclass(frozen=True, slots=True)
class LimitDecision:
    """The outcome of one rate-limit check, with what the x-ratelimit-* headers need.

    A `None` limit means that dimension is unlimited; its remaining is None and its reset 0.
    """

    allowed: bool
    limit_requests: int | None
    remaining_requests: int | None
    reset_requests_s: float
    limit_tokens: int | None
    remaining_tokens: int | None
    reset_tokens_s: float
    retry_after_s: float | None = None
    # On a refusal: "key" when the key's own limits refused, "team" when its team's did.
    refused_by: str | None = None

    def headers(self) -> dict[str, str]:
        """OpenAI's rate-limit headers, plus Retry-After (whole seconds, at least 1) on a refusal."""
        headers: dict[str, str] = {}
        if self.limit_requests is not None:
            headers["x-ratelimit-limit-requests"] = str(self.limit_requests)
            headers["x-ratelimit-remaining-requests"] = str(self.remaining_requests)
            headers["x-ratelimit-reset-requests"] = format_reset(self.reset_requests_s)
        if self.limit_tokens is not None:
            headers["x-ratelimit-limit-tokens"] = str(self.limit_tokens)
            headers["x-ratelimit-remaining-tokens"] = str(self.remaining_tokens)
            headers["x-ratelimit-reset-tokens"] = format_reset(self.reset_tokens_s)
        if not self.allowed and self.retry_after_s is not None:
            headers["retry-after"] = str(max(1, math.ceil(self.retry_after_s)))
        return headers


UNLIMITED = LimitDecision(True, None, None, 0.0, None, None, 0.0)


@dataclass(frozen=True, slots=True)
class TeamRates:
    """A team's rate limits, checked with each of its keys' (None: that dimension is unlimited)."""

    id: str
    rpm: int | None
    tpm: int | None


class LimitStore(Protocol):
    """Per-key requests-per-minute and tokens-per-minute buckets."""

    async def hit(
        self,
        key_id: str,
        rpm: int | None,
        tpm: int | None,
        estimated_tokens: int,
        now: float,
        team: TeamRates | None = None,
    ) -> LimitDecision:
        """Admit one request costing `estimated_tokens`, atomically on both buckets (and on its team's
        two, with `team`), or refuse it.

        A refusal consumes nothing. A request larger than the whole tpm passes when the token
        bucket is full and leaves it in debt, so a small tpm never blocks a big request forever.
        """
        ...

    async def adjust_tokens(
        self, key_id: str, delta_tokens: int, now: float, team_id: str | None = None
    ) -> None:
        """Correct the token bucket by actual minus estimated tokens (negative gives tokens back), and
        the team's, with the `team_id` given to `hit`."""
        ...

    async def close(self) -> None: ...


def format_reset(seconds: float) -> str:
    """A duration the way OpenAI writes x-ratelimit-reset-*: "20ms", "1s", "6m0s", "1h2m3.5s"."""
    millis = max(0, math.ceil(seconds * 1000))
    if millis < 1000:
        return f"{millis}ms"
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs = f"{rest / 1000:.3f}".rstrip("0").rstrip(".")
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"
