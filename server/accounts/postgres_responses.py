"""Stored Responses in Postgres (server/stored_responses.py): no money moves here."""

from __future__ import annotations

from collections.abc import Sequence

from server.accounts.postgres_connection import PostgresConnection
from server.accounts.store import STORED_RESPONSE_COLUMNS, StoredResponse

__all__ = ["PostgresResponses"]

_RESPONSE_SELECT = f"SELECT {', '.join(STORED_RESPONSE_COLUMNS)} FROM stored_responses"
_RESPONSE_INSERT = (
    f"INSERT INTO stored_responses ({', '.join(STORED_RESPONSE_COLUMNS)})"
    f" VALUES ({', '.join(f'${i}' for i in range(1, len(STORED_RESPONSE_COLUMNS) + 1))})"
)
_RESPONSE_UPDATE = (
    "UPDATE stored_responses SET status = $1, model = $2, provider = $3, response = $4, upstream_id = $5,"
    " reservation_id = $6, lease_until = $7 WHERE id = $8 AND key_id = $9 AND status = ANY($10::text[])"
)


class PostgresResponses(PostgresConnection):
    # stored responses

    async def insert_response(self, record: StoredResponse) -> None:
        await self._pool.execute(
            _RESPONSE_INSERT, *(getattr(record, column) for column in STORED_RESPONSE_COLUMNS)
        )

    async def get_response(self, response_id: str, key_id: str) -> StoredResponse | None:
        row = await self._pool.fetchrow(
            f"{_RESPONSE_SELECT} WHERE id = $1 AND key_id = $2", response_id, key_id
        )
        return None if row is None else StoredResponse(**dict(row.items()))

    async def delete_response(self, response_id: str, key_id: str) -> bool:
        deleted = await self._pool.fetchval(
            "DELETE FROM stored_responses WHERE id = $1 AND key_id = $2 RETURNING 1", response_id, key_id
        )
        return deleted is not None

    async def update_response(self, record: StoredResponse, expected: Sequence[str]) -> bool:
        updated = await self._pool.fetchval(
            _RESPONSE_UPDATE + " RETURNING 1",
            record.status,
            record.model,
            record.provider,
            record.response,
            record.upstream_id,
            record.reservation_id,
            record.lease_until,
            record.id,
            record.key_id,
            list(expected),
        )
        return updated is not None

    async def renew_response_leases(self, response_ids: Sequence[str], until: float) -> None:
        if response_ids:
            await self._pool.execute(
                "UPDATE stored_responses SET lease_until = $1 WHERE id = ANY($2::text[])"
                " AND status IN ('queued', 'in_progress')",
                until,
                list(response_ids),
            )

    async def expired_responses(self, now: float) -> list[StoredResponse]:
        rows = await self._pool.fetch(
            f"{_RESPONSE_SELECT} WHERE status IN ('queued', 'in_progress') AND lease_until < $1", now
        )
        return [StoredResponse(**dict(row.items())) for row in rows]

    async def delete_responses_before(self, before: float) -> int:
        deleted = await self._pool.execute("DELETE FROM stored_responses WHERE created_at < $1", before)
        return int(deleted.split()[-1])
