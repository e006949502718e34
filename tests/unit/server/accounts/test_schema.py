"""The accounts schema is declared once (server/accounts/schema.py) for both stores: the same steps in
the same order, the names every existing database has recorded, and fresh databases exactly as the
stores made them before (schema_snapshot.json, written from those stores by schema_description.py)."""

from __future__ import annotations

import json
from pathlib import Path

from server.accounts.schema import MIGRATIONS, POSTGRES_MIGRATIONS, SQLITE_MIGRATIONS, TYPES, both
from tests.unit.server.accounts.accounts_backends import run_sync
from tests.unit.server.accounts.schema_description import postgres_schema, sqlite_schema

SNAPSHOT = json.loads((Path(__file__).parent / "schema_snapshot.json").read_text())

# Steps of one dialect only: the first release named its 0001 step per dialect (SQLite extends the
# `keys` table sqlite_store.py made, Postgres creates it), and 0012 orders Postgres rows made in one
# second (SQLite has the rowid).
SQLITE_ONLY = ["accounts/0001_credits_reservations_ledger"]
POSTGRES_ONLY = ["accounts/0001_keys_credits_ledger", "accounts/0012_creation_order"]


def names(steps: tuple[tuple[str, tuple[str, ...]], ...]) -> list[str]:
    return [name for name, _ in steps]


def test_both_dialects_apply_the_same_steps_in_the_same_order() -> None:
    shared = [m.name for m in MIGRATIONS if m.sqlite is not None and m.postgres is not None]
    assert names(SQLITE_MIGRATIONS) == [*SQLITE_ONLY, *shared]
    assert names(POSTGRES_MIGRATIONS) == [POSTGRES_ONLY[0], *shared, POSTGRES_ONLY[1]]
    numbers = [m.name.split("/")[1][:4] for m in MIGRATIONS]
    assert numbers == sorted(numbers), "a new step goes at the end"
    assert len({m.name for m in MIGRATIONS}) == len(MIGRATIONS)


def test_the_recorded_names_are_those_existing_databases_have() -> None:
    assert names(SQLITE_MIGRATIONS) == SNAPSHOT["sqlite"]["migrations"]
    assert names(POSTGRES_MIGRATIONS) == sorted(SNAPSHOT["postgres"]["migrations"])


def test_a_step_of_both_renders_each_dialects_types() -> None:
    step = both("accounts/x", "ALTER TABLE t ADD COLUMN c {bigint} NOT NULL, d {real}, e {json}")
    assert step.sqlite == ("ALTER TABLE t ADD COLUMN c INTEGER NOT NULL, d REAL, e TEXT",)
    assert step.postgres == ("ALTER TABLE t ADD COLUMN c BIGINT NOT NULL, d DOUBLE PRECISION, e JSONB",)
    assert TYPES["sqlite"].keys() == TYPES["postgres"].keys()


def test_a_fresh_sqlite_file_has_the_schema_it_had(tmp_path: Path) -> None:
    described = sqlite_schema(tmp_path / "gateway.db")
    expected = SNAPSHOT["sqlite"]
    assert described["tables"].keys() == expected["tables"].keys()
    for table, columns in expected["tables"].items():
        assert described["tables"][table] == columns, table
    assert described == expected


def test_a_fresh_postgres_schema_has_the_schema_it_had(postgres_dsn: str) -> None:
    described = run_sync(lambda: postgres_schema(postgres_dsn))
    expected = SNAPSHOT["postgres"]
    assert described["tables"].keys() == expected["tables"].keys()
    for table, columns in expected["tables"].items():
        assert described["tables"][table] == columns, table
    assert described == expected
