"""The ledger's read queries stay index range scans at a million rows on Postgres.

A budget that cannot flake: not a wall-clock time (which depends on the machine and its load) but
the query plan and the pages it touches. Each query the API sends (built by the store's own SQL
builders, with the parameters it would bind) is run under EXPLAIN (ANALYZE, BUFFERS): it must not
scan usage_ledger sequentially, must go through one of the ledger's indexes, and must touch no more
shared buffers than its budget. A million rows are 100 days of 10,000 requests; a sequential scan
touches every one of the table's pages (tens of thousands), so each budget below is far under it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import asyncpg
import orjson
import pytest

from server.accounts.ledger_queries import (
    LEDGER_INDEXES,
    Cursor,
    GenerationFilter,
    UsageQuery,
    dollar,
    generations_sql,
    usage_sql,
)
from server.accounts.postgres_accounts import PostgresAccountStore
from tests.unit.server.accounts.accounts_backends import postgres_unavailable, run_sync, temporary_database

ROWS = 1_000_000
DAYS = 100
NOW = 1_767_225_600.0  # the newest record's time
STEP = DAYS * 86400 / ROWS  # 8.64 s between records
KEYS = 100
DAY = 86400.0

# Rows in time order, as a gateway writes them; 100 keys, 5 models, 3 providers, 2% errors.
LOAD = f"""
INSERT INTO usage_ledger (request_id, key_id, created_at, model_requested, status, http_status,
    model_served, provider, error_code, prompt_tokens, completion_tokens, cached_tokens,
    reasoning_tokens, cost_micros, latency_ms, ttft_ms, streamed, attempts)
SELECT 'req-' || i, 'key-' || (i % {KEYS}), {NOW} - ({ROWS} - i) * {STEP}, 'model-' || (i % 5),
    CASE WHEN i % 50 = 0 THEN 'error' ELSE 'success' END,
    CASE WHEN i % 50 = 0 THEN 502 ELSE 200 END,
    'upstream-' || (i % 5), 'provider-' || (i % 3),
    CASE WHEN i % 50 = 0 THEN 'provider_error' END,
    100 + i % 400, 20 + i % 300, 0, 0, (i % 1000) * 7, 50 + (i % 977), NULL, false,
    '[{{"provider": "provider-0", "model": "m", "upstream_model": "u", "outcome": "ok",
       "start_ms": 0.1, "latency_ms": 50, "error_code": null, "http_status": null}}]'::jsonb
FROM generate_series(1, {ROWS}) AS i
"""


@pytest.fixture(scope="module")
def dsn() -> Iterator[str]:
    reason = postgres_unavailable()
    if reason:
        pytest.skip(reason)
    with temporary_database() as dsn:
        yield dsn


async def _load(dsn: str) -> None:
    store = await PostgresAccountStore.open(dsn)  # creates the tables and their indexes
    await store.close()
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute("SET synchronous_commit = off")
        # Loading first and indexing after is several times faster; the indexes are the migration's.
        for index in LEDGER_INDEXES:
            await connection.execute(f"DROP INDEX {index.split()[2]}")
        await connection.execute(LOAD)
        for index in LEDGER_INDEXES:
            await connection.execute(index)
        await connection.execute("ANALYZE usage_ledger")
        assert await connection.fetchval("SELECT count(*) FROM usage_ledger") == ROWS
    finally:
        await connection.close()


@pytest.fixture(scope="module")
def loaded(dsn: str) -> str:
    run_sync(lambda: _load(dsn))
    return dsn


async def _plan(dsn: str, sql: str, params: list[Any]) -> dict[str, Any]:
    connection = await asyncpg.connect(dsn)
    try:
        raw = await connection.fetchval(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}", *params)
    finally:
        await connection.close()
    plan: dict[str, Any] = orjson.loads(raw)[0]["Plan"]
    return plan


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", ()):
        yield from _nodes(child)


def _check(plan: dict[str, Any], budget: int) -> None:
    nodes = list(_nodes(plan))
    scans = [(node["Node Type"], node.get("Index Name")) for node in nodes]
    assert not any(kind == "Seq Scan" for kind, _ in scans), scans
    assert any(index and index.startswith("usage_ledger_") for _, index in scans), scans
    touched = plan["Shared Hit Blocks"] + plan["Shared Read Blocks"]
    assert touched <= budget, f"{touched} buffers touched (budget {budget}); plan: {scans}"


LISTS = [
    pytest.param(GenerationFilter(), None, 100, id="admin-newest-page"),
    pytest.param(
        GenerationFilter(), Cursor(NOW - 30 * DAY, "req-500000"), 100, id="admin-page-deep-in-history"
    ),
    pytest.param(GenerationFilter(key_id="key-7"), None, 300, id="one-key-newest-page"),
    pytest.param(
        GenerationFilter(key_id="key-7"), Cursor(NOW - 50 * DAY, "req-x"), 300, id="one-key-deep-page"
    ),
    pytest.param(GenerationFilter(model="model-3", since=NOW - DAY), None, 300, id="one-model-last-day"),
    pytest.param(GenerationFilter(provider="provider-1"), None, 300, id="one-provider"),
    pytest.param(GenerationFilter(status="5xx", since=NOW - DAY), None, 3_000, id="errors-last-day"),
    pytest.param(GenerationFilter(provider="provider-1", status="error"), None, 3_000, id="provider-errors"),
]


@pytest.mark.parametrize(("where", "cursor", "budget"), LISTS)
async def test_a_page_of_generations_is_an_index_range(
    loaded: str, where: GenerationFilter, cursor: Cursor | None, budget: int
) -> None:
    sql, params = generations_sql(where, 50, cursor, dollar, row_compare=True)
    _check(await _plan(loaded, sql, params), budget)


USAGE = [
    pytest.param(
        UsageQuery(GenerationFilter(since=NOW - DAY, until=NOW), "model", 3600), 2_000, id="day-by-model"
    ),
    pytest.param(
        UsageQuery(GenerationFilter(since=NOW - 3600, until=NOW), None, 60), 200, id="hour-by-minute"
    ),
    pytest.param(
        UsageQuery(GenerationFilter(key_id="key-7", since=NOW - 7 * DAY, until=NOW), "provider", 86400),
        2_000,
        id="one-key-week-by-provider",
    ),
    pytest.param(
        UsageQuery(GenerationFilter(model="model-2", since=NOW - DAY, until=NOW), "key", None),
        2_000,
        id="one-model-day-by-key",
    ),
]


@pytest.mark.parametrize(("query", "budget"), USAGE)
async def test_usage_over_a_range_is_an_index_range(loaded: str, query: UsageQuery, budget: int) -> None:
    sql, params = usage_sql(query, dollar, percentiles=True)
    _check(await _plan(loaded, sql, params), budget)


async def test_the_store_answers_from_the_million_rows(loaded: str) -> None:
    store = await PostgresAccountStore.open(loaded)
    try:
        page = await store.list_generations(GenerationFilter(key_id="key-7"), 50)
        assert len(page.records) == 50 and page.next_cursor is not None
        assert all(record.key_id == "key-7" for record in page.records)
        times = [record.created_at for record in page.records]
        assert times == sorted(times, reverse=True) and times[0] >= NOW - KEYS * STEP
        assert page.records[0].attempts[0].provider == "provider-0"
        (day,) = await store.usage(UsageQuery(GenerationFilter(since=NOW - DAY, until=NOW + 1)))
        assert day.requests == pytest.approx(DAY / STEP, abs=2)
        assert day.errors == pytest.approx(day.requests / 50, abs=2)
    finally:
        await store.close()
