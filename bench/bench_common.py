"""What the bench scripts share. They run as `python bench/<script>.py`, so this imports as `bench_common`."""

from __future__ import annotations

import asyncio
import signal


def install_uvloop() -> None:
    """uvloop when installed: the floors and load generators must not be slowed by the default loop."""
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass


async def until_signalled() -> None:
    """Returns on SIGTERM or SIGINT, so that a server can close cleanly."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


def json_headers(items: list[str]) -> dict[str, str]:
    """Content-Type JSON plus each repeatable `--header 'Name: value'`."""
    headers = {"Content-Type": "application/json"}
    for item in items:
        name, _, value = item.partition(":")
        headers[name.strip()] = value.strip()
    return headers
