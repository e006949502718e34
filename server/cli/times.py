"""Times on the command line: read as ISO 8601 dates or unix seconds, shown as ISO 8601 in UTC."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

__all__ = ["format_time", "parse_time"]


def parse_time(text: str) -> int:
    """Unix seconds from `1798761600`, `2027-01-01` (midnight UTC) or `2027-01-01T12:00:00Z`.

    A date or time without a zone is UTC, so the same command means the same instant anywhere.
    """
    value = text.strip()
    if value.isdigit():
        return int(value)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"'{text}' is not a date: use 2027-01-01, 2027-01-01T12:00:00Z or unix seconds"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


def format_time(seconds: int | None) -> str:
    """`2027-01-01 12:00Z` (seconds shown only when not zero), or "" for no time."""
    if seconds is None:
        return ""
    moment = datetime.fromtimestamp(seconds, UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%SZ" if moment.second else "%Y-%m-%d %H:%MZ")
