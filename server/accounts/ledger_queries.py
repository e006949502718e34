"""Reading the usage ledger back: the filters, pages and aggregates every store answers alike.

The SQL is written once here for both dialects (SQLite's `?` and Postgres's `$n` placeholders) and
only ever built from these dataclasses: column names come from the fixed tables below, values are
always parameters.

Indexes (each store's migrations create them) keep every query a range scan at any ledger size:
    usage_ledger_time           (created_at, request_id)            the admin's newest-first list
    usage_ledger_key_time       (key_id, created_at, request_id)    a key's own list and usage
    usage_ledger_model_time     (model_requested, created_at, ...)  filtered by model
    usage_ledger_provider_time  (provider, created_at, ...)         filtered by provider
Pages are keyset pages (created_at, request_id) < cursor, never OFFSET, so page 1,000 costs what
page 1 costs. tests/unit/server/accounts/test_ledger_query_budget.py holds Postgres to that at a million rows.

Latency percentiles are linear-interpolated (Postgres's percentile_cont); SQLite, which has none,
computes the same in `percentile`.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from server.accounts.ledger_record import LEDGER_COLUMNS, LedgerAttempt, LedgerRecord

__all__ = [
    "BUCKETS",
    "GROUPS",
    "LEDGER_INDEXES",
    "MAX_BUCKETS",
    "MAX_PAGE",
    "STATUS_FILTERS",
    "Cursor",
    "GenerationFilter",
    "GenerationPage",
    "UsageQuery",
    "UsageRow",
    "attempts_from_json",
    "attempts_json",
    "generations_sql",
    "parse_time",
    "percentile",
    "usage_sql",
]

MAX_PAGE = 500
# More buckets than this in one answer is a query nobody can read (a minute over a year).
MAX_BUCKETS = 10_000
BUCKETS: dict[str, int] = {"minute": 60, "hour": 3600, "day": 86400}
# What usage may be grouped by, and the column each names.
GROUPS: dict[str, str] = {"key": "key_id", "model": "model_requested", "provider": "provider"}
# Named outcomes match `status`; "2xx".."5xx" a class of http_status; three digits one status.
STATUS_FILTERS = ("success", "error", "cancelled", "2xx", "3xx", "4xx", "5xx")

Placeholder = Callable[[int], str]

# Created by each store's migrations: the same on both dialects.
LEDGER_INDEXES = (
    "CREATE INDEX usage_ledger_time ON usage_ledger (created_at, request_id)",
    "CREATE INDEX usage_ledger_key_time ON usage_ledger (key_id, created_at, request_id)",
    "CREATE INDEX usage_ledger_model_time ON usage_ledger (model_requested, created_at, request_id)",
    "CREATE INDEX usage_ledger_provider_time ON usage_ledger (provider, created_at, request_id)",
)


def qmark(_: int) -> str:
    return "?"


def dollar(index: int) -> str:
    return f"${index}"


@dataclass(frozen=True, slots=True)
class GenerationFilter:
    """Which ledger records a list or an aggregate covers; None means any."""

    key_id: str | None = None
    model: str | None = None
    provider: str | None = None
    status: str | None = None
    # Unix seconds: since is inclusive, until exclusive.
    since: float | None = None
    until: float | None = None
    min_cost_micros: int | None = None
    max_cost_micros: int | None = None


def valid_status(status: str) -> bool:
    return status in STATUS_FILTERS or (len(status) == 3 and status.isdigit())


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a page ended: the last record's (created_at, request_id)."""

    created_at: float
    request_id: str

    def encode(self) -> str:
        raw = orjson.dumps([self.created_at, self.request_id])
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Cursor | None:
        """The cursor `encode` wrote, or None for anything else."""
        try:
            created_at, request_id = orjson.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        except (ValueError, TypeError):
            return None
        if not isinstance(created_at, (int, float)) or not isinstance(request_id, str):
            return None
        return cls(float(created_at), request_id)


@dataclass(frozen=True, slots=True)
class GenerationPage:
    records: list[LedgerRecord]
    next_cursor: Cursor | None = None


@dataclass(frozen=True, slots=True)
class UsageQuery:
    where: GenerationFilter = field(default_factory=GenerationFilter)
    # A key of GROUPS, or None for totals.
    group_by: str | None = None
    # Bucket width in seconds, or None for the whole range in one bucket.
    bucket_seconds: int | None = None


@dataclass(frozen=True, slots=True)
class UsageRow:
    """One bucket of one group. `bucket_start` is None without buckets, `group` None without groups."""

    bucket_start: float | None
    group: str | None
    requests: int
    prompt_tokens: int
    completion_tokens: int
    cost_micros: int
    errors: int
    p50_latency_ms: float
    p95_latency_ms: float
    # What the providers were paid for these requests' attempts (hedges that lost, billed failures).
    upstream_cost_micros: int = 0


def _bind(params: list[Any], mark: Placeholder, value: Any) -> str:
    """Add one parameter; its placeholder (each use gets its own, as `?` needs)."""
    params.append(value)
    return mark(len(params))


def _bucket(query: UsageQuery, mark: Placeholder, params: list[Any]) -> str:
    if query.bucket_seconds is None:
        return "NULL"
    width = query.bucket_seconds
    divided = f"created_at / {_bind(params, mark, float(width))}"
    # The bucket's start in whole seconds. SQLite's CAST truncates (the same as floor for times after
    # 1970); Postgres's rounds, so it floors first. SQLite may be built without floor().
    whole = f"CAST({divided} AS INTEGER)" if mark is qmark else f"CAST(floor({divided}) AS BIGINT)"
    return f"({whole} * {_bind(params, mark, int(width))})"


def _where(where: GenerationFilter, mark: Placeholder, params: list[Any]) -> list[str]:
    clauses: list[str] = []

    def add(sql: str, *values: Any) -> None:
        parts = sql.split("%s")
        text = parts[0]
        for value, rest in zip(values, parts[1:], strict=True):
            text += _bind(params, mark, value) + rest
        clauses.append(text)

    if where.key_id is not None:
        add("key_id = %s", where.key_id)
    if where.model is not None:
        add("model_requested = %s", where.model)
    if where.provider is not None:
        add("provider = %s", where.provider)
    status = where.status
    if status is not None:
        if status in ("success", "error", "cancelled"):
            add("status = %s", status)
        elif status.endswith("xx"):
            low = int(status[0]) * 100
            add("http_status >= %s AND http_status < %s", low, low + 100)
        else:
            add("http_status = %s", int(status))
    if where.since is not None:
        add("created_at >= %s", float(where.since))
    if where.until is not None:
        add("created_at < %s", float(where.until))
    if where.min_cost_micros is not None:
        add("cost_micros >= %s", where.min_cost_micros)
    if where.max_cost_micros is not None:
        add("cost_micros <= %s", where.max_cost_micros)
    return clauses


def generations_sql(
    where: GenerationFilter, limit: int, cursor: Cursor | None, mark: Placeholder, *, row_compare: bool
) -> tuple[str, list[Any]]:
    """A page of records, newest first, with one extra row to tell whether another page follows.

    `row_compare`: the dialect compares rows, `(a, b) < (x, y)`, which Postgres turns into one index
    range; SQLite gets the same condition spelled out.
    """
    params: list[Any] = []
    clauses = _where(where, mark, params)
    if cursor is not None:
        if row_compare:
            first, second = _bind(params, mark, cursor.created_at), _bind(params, mark, cursor.request_id)
            clauses.append(f"(created_at, request_id) < ({first}, {second})")
        else:
            before = _bind(params, mark, cursor.created_at)
            same = _bind(params, mark, cursor.created_at)
            request_id = _bind(params, mark, cursor.request_id)
            clauses.append(f"(created_at < {before} OR (created_at = {same} AND request_id < {request_id}))")
    sql = (
        f"SELECT {', '.join(LEDGER_COLUMNS)} FROM usage_ledger"
        f"{' WHERE ' + ' AND '.join(clauses) if clauses else ''}"
        f" ORDER BY created_at DESC, request_id DESC LIMIT {_bind(params, mark, limit + 1)}"
    )
    return sql, params


def usage_sql(query: UsageQuery, mark: Placeholder, *, percentiles: bool) -> tuple[str, list[Any]]:
    """Sums per (bucket, group); with `percentiles` (Postgres) p50 and p95 latency too.

    Columns: bucket, group, requests, prompt, completion, cost, errors, upstream cost[, p50, p95].
    """
    params: list[Any] = []
    bucket = _bucket(query, mark, params)
    group = GROUPS[query.group_by] if query.group_by is not None else "NULL"
    clauses = _where(query.where, mark, params)
    columns = [
        f"{bucket} AS bucket",
        f"{group} AS grp",
        "count(*)",
        "coalesce(sum(prompt_tokens), 0)",
        "coalesce(sum(completion_tokens), 0)",
        "coalesce(sum(cost_micros), 0)",
        "coalesce(sum(CASE WHEN status = 'error' THEN 1 ELSE 0 END), 0)",
        "coalesce(sum(upstream_cost_micros), 0)",
    ]
    if percentiles:
        columns.append("percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms)")
        columns.append("percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms)")
    keys = [name for name, used in (("bucket", bucket != "NULL"), ("grp", group != "NULL")) if used]
    sql = (
        f"SELECT {', '.join(columns)} FROM usage_ledger"
        f"{' WHERE ' + ' AND '.join(clauses) if clauses else ''}"
        f"{' GROUP BY ' + ', '.join(keys) if keys else ''}"
        f"{' ORDER BY ' + ', '.join(keys) if keys else ''}"
    )
    return sql, params


def latencies_sql(query: UsageQuery, mark: Placeholder) -> tuple[str, list[Any]]:
    """(bucket, group, latency_ms) of every matching record, sorted: SQLite's percentiles' input."""
    params: list[Any] = []
    bucket = _bucket(query, mark, params)
    group = GROUPS[query.group_by] if query.group_by is not None else "NULL"
    clauses = _where(query.where, mark, params)
    sql = (
        f"SELECT {bucket} AS bucket, {group} AS grp, latency_ms FROM usage_ledger"
        f"{' WHERE ' + ' AND '.join(clauses) if clauses else ''}"
        " ORDER BY bucket, grp, latency_ms"
    )
    return sql, params


def percentile(ordered: Sequence[float], fraction: float) -> float:
    """The `fraction` percentile of sorted values, linearly interpolated (as percentile_cont)."""
    if not ordered:
        return 0.0
    position = fraction * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def usage_row(row: Sequence[Any], p50: float | None = None, p95: float | None = None) -> UsageRow:
    return UsageRow(
        bucket_start=None if row[0] is None else float(row[0]),
        group=row[1],
        requests=int(row[2]),
        prompt_tokens=int(row[3]),
        completion_tokens=int(row[4]),
        cost_micros=int(row[5]),
        errors=int(row[6]),
        p50_latency_ms=float(row[8] if p50 is None else p50),
        p95_latency_ms=float(row[9] if p95 is None else p95),
        upstream_cost_micros=int(row[7]),
    )


def attempts_json(attempts: Sequence[LedgerAttempt]) -> str:
    """The attempts as the JSON array a ledger row stores (objects, for a person reading the row)."""
    return orjson.dumps([attempt._asdict() for attempt in attempts]).decode()


def attempts_from_json(text: str | bytes | None) -> tuple[LedgerAttempt, ...]:
    if not text:
        return ()
    return tuple(LedgerAttempt(**item) for item in orjson.loads(text))


def page_of(records: list[LedgerRecord], limit: int) -> GenerationPage:
    """A page from `limit + 1` fetched records: the extra one only says that more follow."""
    if len(records) <= limit:
        return GenerationPage(records)
    kept = records[:limit]
    last = kept[-1]
    return GenerationPage(kept, Cursor(last.created_at, last.request_id))


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_time(text: str, now: float) -> float | None:
    """A point in time as the API and the CLI take it: unix seconds ("1767225600"), or a duration
    back from `now` ("90s", "15m", "24h", "7d", "2w"). None when it is neither."""
    text = text.strip()
    try:
        moment = float(text)
    except ValueError:
        pass
    else:
        return moment if math.isfinite(moment) else None
    unit = _UNITS.get(text[-1:].lower())
    if unit is None:
        return None
    try:
        amount = float(text[:-1])
    except ValueError:
        return None
    if amount < 0 or not math.isfinite(amount):
        return None
    moment = now - amount * unit
    return moment if math.isfinite(moment) else None
