"""Turn a model's timeouts and the request's deadline into the bound for one wait."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TypeVar

T = TypeVar("T")


def earliest(*moments: float | None) -> float | None:
    """The earliest of the given absolute times; None when none is set."""
    found = [m for m in moments if m is not None]
    return min(found) if found else None


def bound(limit: float | None, end: float | None, now: float) -> float | None:
    """Seconds to wait: `limit`, cut to what is left until `end`; None means unbounded."""
    if end is None:
        return limit
    left = max(end - now, 0.0)
    return left if limit is None else min(limit, left)


async def next_within(items: AsyncIterator[T], timeout: float | None) -> T:
    """The next item, or TimeoutError after `timeout` seconds (the pending read is cancelled)."""
    if timeout is None:
        return await items.__anext__()
    async with asyncio.timeout(timeout):
        return await items.__anext__()


# A request's own total timeout in seconds, as an HTTP header (gRPC callers set a deadline instead);
# the bridge passes it on as call metadata of the same name.
TIMEOUT_HEADER = "x-siraya-timeout"
# The request's own time-to-first-token and idle-between-chunks limits; they replace the model's.
FIRST_TOKEN_TIMEOUT_HEADER = "x-siraya-first-token-timeout"
IDLE_TIMEOUT_HEADER = "x-siraya-idle-timeout"
TIMEOUT_HEADERS = (TIMEOUT_HEADER, FIRST_TOKEN_TIMEOUT_HEADER, IDLE_TIMEOUT_HEADER)


def parse_timeout(value: str) -> float | None:
    """The seconds in a timeout header, or None when it is not a positive finite number."""
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if 0 < seconds < float("inf") else None
