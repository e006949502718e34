"""Hold thousands of SSE streams open at once through the gateway, for `make bench`.

Each stream asks the fake upstream's slow model (one chunk per second). Streams are opened at most
`--connect-concurrency` at a time (a burst of 5,000 connects would overflow listen backlogs and
measure SYN retries instead of the gateway). Once all are open they are held `--hold` seconds, then
`--release-file` is created, which tells the fake upstream to finish them; every stream must then
deliver its last chunks and [DONE]. It prints one JSON object: streams, completed, errors, peak_open
(streams past their first chunk and not yet finished, at the same moment), held_all_open_s,
chunks_min, seconds, error_samples.

Usage: python bench/open_streams.py --url URL --body JSON [--header ...] [--streams 5000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time

import aiohttp
from bench_common import install_uvloop, json_headers


class Tally:
    def __init__(self) -> None:
        self.open = 0
        self.peak_open = 0
        self.completed = 0
        self.errors = 0
        self.chunks_min: int | None = None
        self.last_opened = 0.0
        self.chunks_total = 0
        self.samples: list[str] = []

    def failed(self, error: BaseException | str) -> None:
        self.errors += 1
        if len(self.samples) < 5:
            self.samples.append(error if isinstance(error, str) else f"{type(error).__name__}: {error}")


async def one_stream(
    session: aiohttp.ClientSession,
    url: str,
    body: bytes,
    headers: dict[str, str],
    gate: asyncio.Semaphore,
    tally: Tally,
) -> None:
    opened = False
    chunks = 0
    done = False
    try:
        await gate.acquire()
        released = False
        try:
            async with session.post(url, data=body, headers=headers) as response:
                if response.status != 200:
                    tally.failed(f"HTTP {response.status}: {(await response.read())[:200]!r}")
                    return
                async for line in response.content:
                    if not line.startswith(b"data:"):
                        continue
                    if not opened:
                        opened = True
                        gate.release()
                        released = True
                        tally.open += 1
                        tally.peak_open = max(tally.peak_open, tally.open)
                        tally.last_opened = time.perf_counter()
                    if line.startswith(b"data: [DONE]"):
                        done = True
                    elif b'"error"' in line[:20]:
                        tally.failed(f"error event: {line[:200]!r}")
                        return
                    else:
                        chunks += 1
        finally:
            if not released:
                gate.release()
    except Exception as error:  # noqa: BLE001 - counted and shown
        tally.failed(error)
        return
    finally:
        if opened:
            tally.open -= 1
    if not done:
        tally.failed("stream ended without [DONE]")
        return
    tally.completed += 1
    tally.chunks_total += chunks
    tally.chunks_min = chunks if tally.chunks_min is None else min(tally.chunks_min, chunks)


async def run(args: argparse.Namespace, headers: dict[str, str]) -> dict[str, object]:
    tally = Tally()
    gate = asyncio.Semaphore(args.connect_concurrency)
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=120, sock_read=60)
    started = time.perf_counter()
    held = 0.0
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        streams = asyncio.gather(
            *(
                one_stream(session, args.url, args.body.encode(), headers, gate, tally)
                for _ in range(args.streams)
            )
        )
        # Hold every stream open at once for `--hold` seconds, then let the upstream finish them.
        deadline = started + args.ramp_timeout
        while tally.open + tally.completed + tally.errors < args.streams and time.perf_counter() < deadline:
            await asyncio.sleep(0.1)
        if tally.open == args.streams:
            all_open = time.perf_counter()
            while tally.open == args.streams and time.perf_counter() - all_open < args.hold:
                await asyncio.sleep(0.1)
            held = time.perf_counter() - all_open
        if args.release_file:
            open(args.release_file, "w").close()
        await streams
    return {
        "streams": args.streams,
        "completed": tally.completed,
        "errors": tally.errors,
        "peak_open": tally.peak_open,
        "chunks_min": tally.chunks_min,
        "chunks_total": tally.chunks_total,
        "seconds": round(time.perf_counter() - started, 1),
        "held_all_open_s": round(held, 1),
        "all_opened_after_s": round(tally.last_opened - started, 1) if tally.last_opened else None,
        "error_samples": tally.samples,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--body", required=True)
    parser.add_argument("--header", action="append", default=[], help="'Name: value', repeatable")
    parser.add_argument("--streams", type=int, default=5000)
    parser.add_argument("--connect-concurrency", type=int, default=64)
    parser.add_argument("--hold", type=float, default=5.0, help="seconds to hold all streams open at once")
    parser.add_argument(
        "--ramp-timeout", type=float, default=240.0, help="give up waiting for all to open after"
    )
    parser.add_argument(
        "--release-file", help="created when the hold is over (the fake upstream then ends them)"
    )
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < args.streams + 100:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    headers = json_headers(args.header)
    install_uvloop()
    print(json.dumps(asyncio.run(run(args, headers))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
