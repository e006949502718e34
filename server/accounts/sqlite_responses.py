"""Stored Responses in the SQLite file (server/stored_responses.py): no money moves here."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from server.accounts.sqlite_connection import SqliteConnection
from server.accounts.store import STORED_RESPONSE_COLUMNS, StoredResponse

__all__ = ["SqliteResponses"]

_RESPONSE_SELECT = f"SELECT {', '.join(STORED_RESPONSE_COLUMNS)} FROM stored_responses"
_RESPONSE_INSERT = (
    f"INSERT INTO stored_responses ({', '.join(STORED_RESPONSE_COLUMNS)})"
    f" VALUES ({', '.join('?' for _ in STORED_RESPONSE_COLUMNS)})"
)
_RESPONSE_UPDATE = (
    "UPDATE stored_responses SET status = ?, model = ?, provider = ?, response = ?, upstream_id = ?,"
    " reservation_id = ?, lease_until = ? WHERE id = ? AND key_id = ? AND status IN ({})"
)


class SqliteResponses(SqliteConnection):
    # stored responses

    async def insert_response(self, record: StoredResponse) -> None:
        await self._run(self._db.execute, _RESPONSE_INSERT, _response_row(record))

    async def get_response(self, response_id: str, key_id: str) -> StoredResponse | None:
        row = await self._run(
            self._fetchone, f"{_RESPONSE_SELECT} WHERE id = ? AND key_id = ?", (response_id, key_id)
        )
        return None if row is None else _response_from_row(row)

    async def delete_response(self, response_id: str, key_id: str) -> bool:
        cursor = await self._run(
            self._db.execute,
            "DELETE FROM stored_responses WHERE id = ? AND key_id = ?",
            (response_id, key_id),
        )
        return bool(cursor.rowcount)

    async def update_response(self, record: StoredResponse, expected: Sequence[str]) -> bool:
        if not expected:
            return False
        cursor = await self._run(
            self._db.execute,
            _RESPONSE_UPDATE.format(", ".join("?" for _ in expected)),
            (
                record.status,
                record.model,
                record.provider,
                record.response,
                record.upstream_id,
                record.reservation_id,
                record.lease_until,
                record.id,
                record.key_id,
                *expected,
            ),
        )
        return bool(cursor.rowcount)

    async def renew_response_leases(self, response_ids: Sequence[str], until: float) -> None:
        if response_ids:
            marks = ", ".join("?" for _ in response_ids)
            await self._run(
                self._db.execute,
                f"UPDATE stored_responses SET lease_until = ? WHERE id IN ({marks})"
                " AND status IN ('queued', 'in_progress')",
                (until, *response_ids),
            )

    async def expired_responses(self, now: float) -> list[StoredResponse]:
        rows = await self._run(
            lambda: self._db.execute(
                f"{_RESPONSE_SELECT} WHERE status IN ('queued', 'in_progress') AND lease_until < ?", (now,)
            ).fetchall()
        )
        return [_response_from_row(row) for row in rows]

    async def delete_responses_before(self, before: float) -> int:
        cursor = await self._run(
            self._db.execute, "DELETE FROM stored_responses WHERE created_at < ?", (before,)
        )
        return int(cursor.rowcount)


def _response_row(record: StoredResponse) -> tuple[Any, ...]:
    return tuple(getattr(record, column) for column in STORED_RESPONSE_COLUMNS)


def _response_from_row(row: Sequence[Any]) -> StoredResponse:
    values = dict(zip(STORED_RESPONSE_COLUMNS, row, strict=True))
    values["background"] = bool(values["background"])
    values["response"] = bytes(values["response"])
    values["input_items"] = bytes(values["input_items"])
    return StoredResponse(**values)
