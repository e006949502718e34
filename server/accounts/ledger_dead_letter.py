"""Where ledger records go that the store will not take: a JSON-lines file beside the database.

A record the store refuses while other records of its batch are written (a value the driver cannot
encode, a constraint it breaks) is poison: retrying it would stop the ledger for every key. It is
appended here instead, with the reason, logged and counted, so that nothing charged goes unrecorded.
The same file keeps what a graceful stop could not write because the store was down.

Each line is one record: its LEDGER_COLUMNS fields, plus `quarantine_reason` and `quarantined_at`.
Text that is not valid Unicode is written with backslash escapes, so every line is valid JSON and an
operator can replay it (`INSERT` the fields) once the cause is fixed.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from server.accounts.store import LedgerRecord
from server.observability import metrics

__all__ = ["DEAD_LETTER_FILE", "LedgerDeadLetter"]

DEAD_LETTER_FILE = "ledger-dead-letter.jsonl"
logger = logging.getLogger("siraya.accounts.ledger")


class LedgerDeadLetter:
    """Appends refused ledger records to a file; counts them in `siraya_ledger_quarantined_total`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.count = 0

    def write(self, records: Sequence[LedgerRecord], reason: str) -> None:
        if not records:
            return
        at = time.time()
        lines = b"".join(_line(record, reason, at) for record in records)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, lines)
            os.fsync(fd)
        finally:
            os.close(fd)
        self.count += len(records)
        metrics.LEDGER_QUARANTINED.labels(reason).inc(len(records))
        logger.error(
            "ledger: %d record(s) written to %s instead of the store (%s)", len(records), self.path, reason
        )


def _line(record: LedgerRecord, reason: str, at: float) -> bytes:
    fields: dict[str, Any] = {name: _safe(value) for name, value in record._asdict().items()}
    fields["quarantine_reason"] = reason
    fields["quarantined_at"] = at
    return orjson.dumps(fields) + b"\n"


def _safe(value: Any) -> Any:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value.encode("utf-8", "backslashreplace").decode("utf-8")
        return value
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, tuple) and all(hasattr(item, "_asdict") for item in value):
        # The attempts: objects, as the ledger row stores them.
        return [{name: _safe(field) for name, field in item._asdict().items()} for item in value]
    return repr(value)
