"""Time-to-first-chunk of an SSE endpoint, one request at a time, for `make bench`.

wrk times whole responses; this measures how long a client waits for the first `data:` line,
sequentially (concurrency 1) for a fixed time. It prints one JSON object: requests, errors,
ttfc_p50_ms, ttfc_p99_ms, total_p50_ms.

Usage: python bench/stream_probe.py --url URL --body JSON [--header 'Authorization: Bearer ...']
       [--duration 3] [--warmup 0.5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

import aiohttp
from bench_common import install_uvloop, json_headers


def percentile(samples: list[float], q: float) -> float | None:
    if not samples:
        return None
    ordered = sorted(samples)
    return round(ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))] * 1000, 3)


async def probe(
    url: str, body: bytes, headers: dict[str, str], duration: float, warmup: float
) -> dict[str, object]:
    firsts: list[float] = []
    totals: list[float] = []
    errors: list[str] = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) as session:
        measure_from = time.perf_counter() + warmup
        until = measure_from + duration
        while (started := time.perf_counter()) < until:
            first: float | None = None
            try:
                async with session.post(url, data=body, headers=headers) as response:
                    if response.status != 200:
                        raise RuntimeError(f"HTTP {response.status}: {(await response.read())[:200]!r}")
                    async for line in response.content:
                        if first is None and line.startswith(b"data:"):
                            first = time.perf_counter()
            except Exception as error:  # noqa: BLE001 - counted and shown
                if len(errors) < 3:
                    errors.append(f"{type(error).__name__}: {error}")
                if started >= measure_from:
                    firsts.append(float("nan"))
                continue
            if started >= measure_from and first is not None:
                firsts.append(first - started)
                totals.append(time.perf_counter() - started)
    good = [x for x in firsts if x == x]
    return {
        "requests": len(good),
        "errors": len(firsts) - len(good),
        "error_samples": errors,
        "ttfc_p50_ms": percentile(good, 50),
        "ttfc_p99_ms": percentile(good, 99),
        "total_p50_ms": percentile(totals, 50),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--body", required=True)
    parser.add_argument("--header", action="append", default=[], help="'Name: value', repeatable")
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--warmup", type=float, default=0.5)
    args = parser.parse_args()
    headers = json_headers(args.header)
    install_uvloop()
    result = asyncio.run(probe(args.url, args.body.encode(), headers, args.duration, args.warmup))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
