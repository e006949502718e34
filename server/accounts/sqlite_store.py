"""The embedded store's file (WAL) and its numbered migrations; here, the video jobs.

Keys, credits and the ledger in the same file are served by sqlite_accounts.SqliteAccountStore.

Queries are single indexed lookups of a few microseconds, so they run on the event loop thread.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

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
