"""Time series for the console's charts, from GetUsage rows: every bucket of the range, empty ones
as zeros, so a quiet hour shows as a gap in traffic rather than being skipped."""

from __future__ import annotations

import datetime
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from siraya.router.v1 import admin_pb2

__all__ = ["RANGES", "Range", "series"]


@dataclass(frozen=True, slots=True)
class Range:
    label: str
    seconds: int
    bucket: admin_pb2.UsageBucket
    width: int  # bucket width in seconds
    time_format: str


RANGES = {
    "hour": Range("Last hour", 3600, admin_pb2.USAGE_BUCKET_MINUTE, 60, "%H:%M"),
    "day": Range("Last day", 86400, admin_pb2.USAGE_BUCKET_HOUR, 3600, "%H:00"),
    "week": Range("Last week", 7 * 86400, admin_pb2.USAGE_BUCKET_HOUR, 3600, "%a %H:00"),
    "month": Range("Last 30 days", 30 * 86400, admin_pb2.USAGE_BUCKET_DAY, 86400, "%b %d"),
}


def series(rows: Iterable[admin_pb2.UsageRow], since: float, until: float, span: Range) -> dict[str, Any]:
    """{labels, requests, cost, errors, p95}: one value per bucket from since to until (UTC)."""
    first = math.floor(since / span.width) * span.width
    count = max(1, math.ceil((until - first) / span.width))
    starts = [first + index * span.width for index in range(count)]
    by_start = {int(row.bucket_start): row for row in rows if row.HasField("bucket_start")}
    out: dict[str, list[Any]] = {"labels": [], "requests": [], "cost": [], "errors": [], "p95": []}
    for start in starts:
        row = by_start.get(start)
        moment = datetime.datetime.fromtimestamp(start, tz=datetime.UTC)
        out["labels"].append(moment.strftime(span.time_format))
        out["requests"].append(row.requests if row else 0)
        out["cost"].append(round(row.cost, 6) if row else 0)
        out["errors"].append(row.errors if row else 0)
        out["p95"].append(round(row.p95_latency_ms, 1) if row else None)
    return out
