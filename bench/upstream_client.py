"""CPU per upstream call of the transport's lean client (server/providers/transport/), on its own.

Starts bench/fake_upstream.py (another process, so its CPU is not counted), then sends pooled
keep-alive POSTs of a chat body from this process and reports the client process's CPU time per
call (time.process_time), the median of `--rounds` rounds. `--client-file` loads `Http1Client` from
another copy of the client (an older commit's file, say) to compare them on the same machine:

    git show <commit>:server/providers/http1_client.py > /tmp/old_client.py
    python bench/upstream_client.py --client-file /tmp/old_client.py

`--stream` reads a streamed reply (11 SSE chunks) to its end instead of a unary one.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench_common import install_uvloop

ROOT = Path(__file__).resolve().parents[1]
BODY = (
    b'{"model":"bench-model","messages":[{"role":"user","content":"What is the meaning of life?"}],'
    b'"max_tokens":64}'
)
STREAM_BODY = BODY[:-1] + b',"stream":true}'
HEADERS = {"Content-Type": "application/json", "Authorization": "Bearer sk-bench"}


def client_class(path: str | None) -> Any:
    if path is None:
        sys.path.insert(0, str(ROOT))
        from server.providers.transport import Http1Client

        return Http1Client
    spec = importlib.util.spec_from_file_location("client_under_test", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.Http1Client


async def measure(client: Any, url: str, body: bytes, calls: int, concurrency: int) -> float:
    async def worker(count: int) -> None:
        for _ in range(count):
            async with client.request("POST", url, HEADERS, body) as reply:
                while await reply.content.readany():
                    pass

    started = time.process_time()
    await asyncio.gather(*(worker(calls // concurrency) for _ in range(concurrency)))
    return (time.process_time() - started) / (calls // concurrency * concurrency) * 1e6


async def run(args: argparse.Namespace, url: str) -> list[float]:
    client = client_class(args.client_file)(64, 10.0, 60.0)
    body = STREAM_BODY if args.stream else BODY
    try:
        await measure(client, url, body, 2000, args.concurrency)  # warm the pool and the caches
        return [await measure(client, url, body, args.calls, args.concurrency) for _ in range(args.rounds)]
    finally:
        await client.close()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--client-file", help="a copy of the client module to measure instead")
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--stream", action="store_true")
    args = parser.parse_args()
    install_uvloop()
    upstream = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "fake_upstream.py"), "--workers", "1"],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "bench")},
    )
    try:
        assert upstream.stdout is not None
        line = upstream.stdout.readline()
        port = int(line.split()[1])
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        rounds = asyncio.run(run(args, url))
    finally:
        upstream.terminate()
        upstream.wait(10)
    shown = ", ".join(f"{value:.1f}" for value in rounds)
    print(f"{statistics.median(rounds):.1f} us of CPU per call (median; rounds: {shown})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
