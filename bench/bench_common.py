"""What the bench scripts share. They run as `python bench/<script>.py`, so this imports as `bench_common`."""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import Awaitable, Callable


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


def run_passthrough(description: str, serve: Callable[[str, int, str, int], Awaitable[None]]) -> int:
    """The command line both bare pass-throughs take: `serve(host, port, upstream, max_connections)`."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--upstream", required=True, help="base URL, e.g. http://127.0.0.1:9000/v1")
    parser.add_argument("--max-connections", type=int, default=256)
    args = parser.parse_args()
    install_uvloop()
    asyncio.run(serve(args.host, args.port, args.upstream, args.max_connections))
    return 0
