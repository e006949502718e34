"""The usage ledger and the audit log in Postgres: PostgresAccountStore's writes and queries of them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from server.accounts.ledger_queries import (
    Cursor,
    GenerationFilter,
    GenerationPage,
    UsageQuery,
    UsageRow,
    attempts_from_json,
    attempts_json,
    dollar,
    generations_sql,
    page_of,
    usage_row,
    usage_sql,
)
from server.accounts.postgres_connection import PostgresConnection
from server.accounts.store import LEDGER_COLUMNS, AuditEvent, LedgerRecord

__all__ = ["PostgresLedger"]

_LEDGER_INSERT = (
    f"INSERT INTO usage_ledger ({', '.join(LEDGER_COLUMNS)})"
    f" VALUES ({', '.join(f'${i}' for i in range(1, len(LEDGER_COLUMNS) + 1))})"
    " ON CONFLICT (key_id, request_id) DO NOTHING"
)


class PostgresLedger(PostgresConnection):
    # ledger

    async def append_ledger(self, records: Sequence[LedgerRecord]) -> None:
        if records:
            await self._pool.executemany(
                _LEDGER_INSERT, [(*record[:-1], attempts_json(record.attempts)) for record in records]
            )

    async def ledger_record(self, request_id: str, key_id: str) -> LedgerRecord | None:
        row = await self._pool.fetchrow(
            f"SELECT {', '.join(LEDGER_COLUMNS)} FROM usage_ledger WHERE key_id = $1 AND request_id = $2",
            key_id,
            request_id,
        )
        return None if row is None else _ledger_from_row(row)

    async def ledger_sum(self, key_id: str) -> int:
        total = await self._pool.fetchval(
            "SELECT COALESCE(sum(cost_micros), 0) FROM usage_ledger WHERE key_id = $1", key_id
        )
        return int(total)

    async def list_generations(
        self, where: GenerationFilter, limit: int, cursor: Cursor | None = None
    ) -> GenerationPage:
        sql, params = generations_sql(where, limit, cursor, dollar, row_compare=True)
        rows = await self._pool.fetch(sql, *params)
        return page_of([_ledger_from_row(row) for row in rows], limit)

    async def usage(self, query: UsageQuery) -> list[UsageRow]:
        sql, params = usage_sql(query, dollar, percentiles=True)
        # Totals over no records are one row of zeros in SQL: no row at all here, as per group.
        return [usage_row(tuple(row)) for row in await self._pool.fetch(sql, *params) if row[2]]

    async def append_audit(self, event: AuditEvent) -> None:
        await self._pool.execute(
            "INSERT INTO audit_log (at, actor, action, target, source, via, detail)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7)",
            event.at,
            event.actor,
            event.action,
            event.target,
            event.source,
            event.via,
            event.detail,
        )

    async def list_audit(self, limit: int, before_id: int | None = None) -> list[AuditEvent]:
        columns = "id, at, actor, action, target, source, via, detail::text"
        if before_id is None:
            rows = await self._pool.fetch(f"SELECT {columns} FROM audit_log ORDER BY id DESC LIMIT $1", limit)
        else:
            rows = await self._pool.fetch(
                f"SELECT {columns} FROM audit_log WHERE id < $1 ORDER BY id DESC LIMIT $2", before_id, limit
            )
        return [
            AuditEvent(
                id=row[0],
                at=row[1],
                actor=row[2],
                action=row[3],
                target=row[4],
                source=row[5],
                via=row[6],
                detail=row[7],
            )
            for row in rows
        ]


def _ledger_from_row(row: Any) -> LedgerRecord:
    values = dict(row.items())
    values["attempts"] = attempts_from_json(values["attempts"])
    return LedgerRecord(**values)
