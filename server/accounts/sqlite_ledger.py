"""The usage ledger and the audit log in the SQLite file: SqliteAccountStore's writes and queries of them."""

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
    generations_sql,
    latencies_sql,
    page_of,
    percentile,
    qmark,
    usage_row,
    usage_sql,
)
from server.accounts.sqlite_connection import SqliteConnection
from server.accounts.store import LEDGER_COLUMNS, AuditEvent, LedgerRecord

__all__ = ["SqliteLedger"]

_LEDGER_SELECT = f"SELECT {', '.join(LEDGER_COLUMNS)} FROM usage_ledger"
_LEDGER_INSERT = (
    f"INSERT OR IGNORE INTO usage_ledger ({', '.join(LEDGER_COLUMNS)})"
    f" VALUES ({', '.join('?' for _ in LEDGER_COLUMNS)})"
)


class SqliteLedger(SqliteConnection):
    # ledger

    async def append_ledger(self, records: Sequence[LedgerRecord]) -> None:
        if records:
            await self._run(self._append_ledger, records)

    def _append_ledger(self, rows: Sequence[LedgerRecord]) -> None:
        with self._immediate() as db:
            db.executemany(_LEDGER_INSERT, [(*row[:-1], attempts_json(row.attempts)) for row in rows])

    async def ledger_record(self, request_id: str, key_id: str) -> LedgerRecord | None:
        row = await self._run(
            self._fetchone, f"{_LEDGER_SELECT} WHERE key_id = ? AND request_id = ?", (key_id, request_id)
        )
        return None if row is None else _ledger_from_row(row)

    async def ledger_sum(self, key_id: str) -> int:
        row = await self._run(
            self._fetchone,
            "SELECT COALESCE(SUM(cost_micros), 0) FROM usage_ledger WHERE key_id = ?",
            (key_id,),
        )
        return int(row[0])

    async def list_generations(
        self, where: GenerationFilter, limit: int, cursor: Cursor | None = None
    ) -> GenerationPage:
        sql, params = generations_sql(where, limit, cursor, qmark, row_compare=False)
        rows = await self._run(lambda: self._db.execute(sql, params).fetchall())
        return page_of([_ledger_from_row(row) for row in rows], limit)

    async def usage(self, query: UsageQuery) -> list[UsageRow]:
        return await self._run(self._usage, query)

    def _usage(self, query: UsageQuery) -> list[UsageRow]:
        sql, params = usage_sql(query, qmark, percentiles=False)
        sums = self._db.execute(sql, params).fetchall()
        sql, params = latencies_sql(query, qmark)
        latencies: dict[tuple[Any, Any], list[float]] = {}
        for bucket, group, latency in self._db.execute(sql, params):
            latencies.setdefault((bucket, group), []).append(latency)
        rows = []
        for row in sums:
            if not row[2]:
                continue  # totals over no records: no row, as in every store
            ordered = latencies.get((row[0], row[1]), [])
            rows.append(usage_row(row, percentile(ordered, 0.5), percentile(ordered, 0.95)))
        return rows

    async def append_audit(self, event: AuditEvent) -> None:
        await self._run(
            self._db.execute,
            "INSERT INTO audit_log (at, actor, action, target, source, via, detail)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (event.at, event.actor, event.action, event.target, event.source, event.via, event.detail),
        )

    async def list_audit(self, limit: int, before_id: int | None = None) -> list[AuditEvent]:
        sql = "SELECT id, at, actor, action, target, source, via, detail FROM audit_log"
        params: tuple[Any, ...] = (limit,)
        if before_id is not None:
            sql += " WHERE id < ?"
            params = (before_id, limit)
        rows = await self._run(lambda: self._db.execute(sql + " ORDER BY id DESC LIMIT ?", params).fetchall())
        return [_audit_from_row(row) for row in rows]


def _audit_from_row(row: Sequence[Any]) -> AuditEvent:
    return AuditEvent(
        id=row[0],
        at=row[1],
        actor=row[2],
        action=row[3],
        target=row[4],
        source=row[5],
        via=row[6],
        detail=row[7],
    )


def _ledger_from_row(row: Sequence[Any]) -> LedgerRecord:
    values = dict(zip(LEDGER_COLUMNS, row, strict=True))
    values["streamed"] = bool(values["streamed"])
    values["attempts"] = attempts_from_json(values["attempts"])
    return LedgerRecord(**values)
