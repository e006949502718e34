"""The owned store's keys, teams, ledger and stored responses: the file's, through the inner
SqliteAccountStore, with each key's balance overlaid from memory (owned_sqlite_accounts.py)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from server.accounts.keys import KeyChanges, KeyRecord
from server.accounts.ledger_queries import Cursor, GenerationFilter, GenerationPage, UsageQuery, UsageRow
from server.accounts.money import micros_to_usd
from server.accounts.owned_balances import Account
from server.accounts.sqlite_accounts import SqliteAccountStore
from server.accounts.store import AuditEvent, LedgerRecord, StoredResponse
from server.accounts.teams import TeamChanges, TeamDeletion, TeamRecord

__all__ = ["OwnedFileRecords"]


class OwnedFileRecords:
    """Everything of the AccountStore contract that moves no money: straight to the file."""

    _inner: SqliteAccountStore
    _accounts: dict[str, Account]

    # keys and the ledger: the file, with balances overlaid from memory

    def _overlay(self, record: KeyRecord) -> KeyRecord:
        account = self._accounts.get(record.id)
        if account is None:
            return record
        return dataclasses.replace(
            record,
            credit_limit=None if account.limit is None else micros_to_usd(account.limit),
            credit_used=micros_to_usd(account.used),
        )

    async def insert_key(self, record: KeyRecord, secret_hash: str) -> None:
        await self._inner.insert_key(record, secret_hash)

    async def key_by_hash(self, secret_hash: str) -> tuple[KeyRecord, str] | None:
        found = await self._inner.key_by_hash(secret_hash)
        return None if found is None else (self._overlay(found[0]), found[1])

    async def key_by_id(self, key_id: str) -> KeyRecord | None:
        found = await self._inner.key_by_id(key_id)
        return None if found is None else self._overlay(found)

    async def list_keys(self) -> list[KeyRecord]:
        return [self._overlay(record) for record in await self._inner.list_keys()]

    async def revoke_key(self, key_id: str, at: int) -> KeyRecord | None:
        found = await self._inner.revoke_key(key_id, at)
        return None if found is None else self._overlay(found)

    async def replace_secret(self, key_id: str, prefix: str, secret_hash: str) -> KeyRecord | None:
        found = await self._inner.replace_secret(key_id, prefix, secret_hash)
        return None if found is None else self._overlay(found)

    async def update_key(self, key_id: str, changes: KeyChanges) -> KeyRecord | None:
        found = await self._inner.update_key(key_id, changes)
        return None if found is None else self._overlay(found)

    # teams: settings only; what a team spent is a level, in memory like the keys' balances

    async def insert_team(self, record: TeamRecord) -> None:
        await self._inner.insert_team(record)

    async def team_by_id(self, team_id: str) -> TeamRecord | None:
        return await self._inner.team_by_id(team_id)

    async def list_teams(self) -> list[TeamRecord]:
        return await self._inner.list_teams()

    async def update_team(self, team_id: str, changes: TeamChanges) -> TeamRecord | None:
        return await self._inner.update_team(team_id, changes)

    async def delete_team(self, team_id: str) -> TeamDeletion:
        return await self._inner.delete_team(team_id)

    async def append_ledger(self, records: Sequence[LedgerRecord]) -> None:
        await self._inner.append_ledger(records)

    async def ledger_record(self, request_id: str, key_id: str) -> LedgerRecord | None:
        return await self._inner.ledger_record(request_id, key_id)

    async def ledger_sum(self, key_id: str) -> int:
        return await self._inner.ledger_sum(key_id)

    # stored responses: no money moves, so they go straight to the file

    async def insert_response(self, record: StoredResponse) -> None:
        await self._inner.insert_response(record)

    async def get_response(self, response_id: str, key_id: str) -> StoredResponse | None:
        return await self._inner.get_response(response_id, key_id)

    async def delete_response(self, response_id: str, key_id: str) -> bool:
        return await self._inner.delete_response(response_id, key_id)

    async def update_response(self, record: StoredResponse, expected: Sequence[str]) -> bool:
        return await self._inner.update_response(record, expected)

    async def renew_response_leases(self, response_ids: Sequence[str], until: float) -> None:
        await self._inner.renew_response_leases(response_ids, until)

    async def expired_responses(self, now: float) -> list[StoredResponse]:
        return await self._inner.expired_responses(now)

    async def delete_responses_before(self, before: float) -> int:
        return await self._inner.delete_responses_before(before)

    async def list_generations(
        self, where: GenerationFilter, limit: int, cursor: Cursor | None = None
    ) -> GenerationPage:
        return await self._inner.list_generations(where, limit, cursor)

    async def usage(self, query: UsageQuery) -> list[UsageRow]:
        return await self._inner.usage(query)

    async def append_audit(self, event: AuditEvent) -> None:
        await self._inner.append_audit(event)

    async def list_audit(self, limit: int, before_id: int | None = None) -> list[AuditEvent]:
        return await self._inner.list_audit(limit, before_id)
