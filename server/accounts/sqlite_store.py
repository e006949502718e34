"""The embedded store: keys and video jobs in one SQLite file (WAL), with numbered migrations.

Queries are single indexed lookups of a few microseconds, so they run on the event loop thread.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

from server.accounts.keys import KeyRecord

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE keys (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        prefix TEXT NOT NULL,
        secret_hash TEXT NOT NULL UNIQUE,
        created_at INTEGER NOT NULL,
        expires_at INTEGER,
        revoked_at INTEGER,
        allowed_models TEXT NOT NULL DEFAULT '[]',
        credit_limit REAL,
        credit_used REAL NOT NULL DEFAULT 0,
        rpm_limit INTEGER,
        tpm_limit INTEGER
    );
    CREATE TABLE video_jobs (
        id TEXT PRIMARY KEY,
        key_id TEXT NOT NULL,
        provider TEXT NOT NULL,
        upstream_id TEXT NOT NULL,
        model TEXT NOT NULL,
        created_at INTEGER NOT NULL
    );
    """,
)

_KEY_COLUMNS = (
    "id, name, prefix, created_at, expires_at, revoked_at, allowed_models,"
    " credit_limit, credit_used, rpm_limit, tpm_limit"
)


@dataclass(frozen=True, slots=True)
class VideoJob:
    id: str
    key_id: str
    provider: str
    upstream_id: str
    model: str
    created_at: int


class SqliteStore:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._lock = threading.Lock()
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._migrate()

    def _migrate(self) -> None:
        with self._lock:
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                self._db.executescript(f"BEGIN; {script}; PRAGMA user_version={number}; COMMIT;")

    def close(self) -> None:
        self._db.close()

    # keys

    def insert_key(self, record: KeyRecord, secret_hash: str) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO keys (id, name, prefix, secret_hash, created_at, expires_at, allowed_models,"
                " credit_limit, rpm_limit, tpm_limit) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    record.id,
                    record.name,
                    record.prefix,
                    secret_hash,
                    record.created_at,
                    record.expires_at,
                    json.dumps(list(record.allowed_models)),
                    record.credit_limit,
                    record.rpm_limit,
                    record.tpm_limit,
                ),
            )

    def key_by_hash(self, secret_hash: str) -> tuple[KeyRecord, str] | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {_KEY_COLUMNS}, secret_hash FROM keys WHERE secret_hash = ?", (secret_hash,)
            ).fetchone()
        return None if row is None else (_key_from_row(row[:-1]), row[-1])

    def key_by_id(self, key_id: str) -> KeyRecord | None:
        with self._lock:
            row = self._db.execute(f"SELECT {_KEY_COLUMNS} FROM keys WHERE id = ?", (key_id,)).fetchone()
        return None if row is None else _key_from_row(row)

    def list_keys(self) -> list[KeyRecord]:
        with self._lock:
            rows = self._db.execute(f"SELECT {_KEY_COLUMNS} FROM keys ORDER BY created_at, id").fetchall()
        return [_key_from_row(row) for row in rows]

    def revoke_key(self, key_id: str, at: int) -> KeyRecord | None:
        with self._lock:
            self._db.execute(
                "UPDATE keys SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?", (at, key_id)
            )
        return self.key_by_id(key_id)

    def replace_secret(self, key_id: str, prefix: str, secret_hash: str) -> KeyRecord | None:
        with self._lock:
            cursor = self._db.execute(
                "UPDATE keys SET prefix = ?, secret_hash = ? WHERE id = ? AND revoked_at IS NULL",
                (prefix, secret_hash, key_id),
            )
        # A revoked (or unknown) key has nothing to rotate.
        return None if cursor.rowcount == 0 else self.key_by_id(key_id)

    # video jobs

    def insert_video_job(self, job: VideoJob) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO video_jobs (id, key_id, provider, upstream_id, model, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (job.id, job.key_id, job.provider, job.upstream_id, job.model, job.created_at),
            )

    def video_job(self, job_id: str) -> VideoJob | None:
        with self._lock:
            row = self._db.execute(
                "SELECT id, key_id, provider, upstream_id, model, created_at FROM video_jobs WHERE id = ?",
                (job_id,),
            ).fetchone()
        return None if row is None else VideoJob(*row)


def _key_from_row(row: tuple) -> KeyRecord:  # type: ignore[type-arg]
    return KeyRecord(
        id=row[0],
        name=row[1],
        prefix=row[2],
        created_at=row[3],
        expires_at=row[4],
        revoked_at=row[5],
        allowed_models=tuple(json.loads(row[6])),
        credit_limit=row[7],
        credit_used=row[8],
        rpm_limit=row[9],
        tpm_limit=row[10],
    )
