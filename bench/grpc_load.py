"""A multi-process gRPC load generator for `make bench`: closed-loop calls, latency percentiles.

Each worker process opens its own channel and runs `concurrency / processes` callers in a loop for
the same wall-clock window (the parent hands every worker one start time). Requests and replies stay
raw bytes, so the client's cost is the same whether it drives the gateway or the bare pass-through.
For server-streaming calls it also records the time to the first message.

Usage: python bench/grpc_load.py --target 127.0.0.1:50051 --kind unary|stream [--processes 2]
       [--concurrency 32] [--duration 5] [--warmup 1] [--metadata 'authorization=Bearer sk-...']
It prints one JSON object: requests, errors, rps, p50_ms, p99_ms, ttfc_p50_ms, ttfc_p99_ms, messages.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Any

from bench_common import install_uvloop

METHODS = {
    "unary": "/siraya.router.v1.ChatService/CreateChatCompletion",
    "stream": "/siraya.router.v1.ChatService/StreamChatCompletion",
}


def request_bytes(kind: str, model: str) -> bytes:
    """The serialized Create/StreamChatCompletionRequest the bench sends."""
    from siraya.router.v1 import chat_pb2

    params = chat_pb2.ChatCompletionParams(
        model=model,
        messages=[chat_pb2.ChatMessage(role=chat_pb2.CHAT_ROLE_USER, text="What is the meaning of life?")],
    )
    if kind == "stream":
        params.stream_options.include_usage = True
        return chat_pb2.StreamChatCompletionRequest(params=params).SerializeToString()
    return chat_pb2.CreateChatCompletionRequest(params=params).SerializeToString()


def percentile(samples: list[float], q: float) -> float | None:
    if not samples:
        return None
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


async def _worker(args: argparse.Namespace) -> dict[str, Any]:
    import grpc

    metadata = tuple(tuple(item.split("=", 1)) for item in args.metadata)
    body = request_bytes(args.kind, args.model)
    latencies: list[float] = []
    firsts: list[float] = []
    counts = {"requests": 0, "errors": 0, "messages": 0}
    errors: list[str] = []
    async with grpc.aio.insecure_channel(args.target) as channel:
        if args.kind == "unary":
            call = channel.unary_unary(METHODS["unary"])

            async def one() -> tuple[float | None, int]:
                await call(body, metadata=metadata)
                return None, 1
        else:
            stream = channel.unary_stream(METHODS["stream"])

            async def one() -> tuple[float | None, int]:
                first: float | None = None
                messages = 0
                async for _ in stream(body, metadata=metadata):
                    if first is None:
                        first = time.perf_counter()
                    messages += 1
                return first, messages

        async def caller(measure_from: float, until: float) -> None:
            while True:
                started = time.perf_counter()
                if started >= until:
                    return
                try:
                    first, messages = await one()
                except Exception as error:  # noqa: BLE001 - every failure counts, the first few are shown
                    if started >= measure_from:
                        counts["errors"] += 1
                        if len(errors) < 3:
                            errors.append(f"{type(error).__name__}: {str(error)[:300]}")
                    continue
                if started >= measure_from:
                    ended = time.perf_counter()
                    latencies.append(ended - started)
                    if first is not None:
                        firsts.append(first - started)
                    counts["requests"] += 1
                    counts["messages"] += messages

        # Callers run through the warm-up into the measured window; only calls started in it count.
        now_wall, now = time.time(), time.perf_counter()
        measure_from = now + (args.start_at - now_wall)
        until = measure_from + args.duration
        await asyncio.gather(*(caller(measure_from, until) for _ in range(args.callers)))
    return {**counts, "latencies": latencies, "firsts": firsts, "error_samples": errors}


def _run_workers(args: argparse.Namespace) -> dict[str, Any]:
    processes = max(1, min(args.processes, args.concurrency))
    start_at = time.time() + args.warmup + 0.5
    share = [
        args.concurrency // processes + (1 if i < args.concurrency % processes else 0)
        for i in range(processes)
    ]
    children = []
    outputs: list[str] = []
    for index, callers in enumerate(share):
        # Each worker writes its result to a file: a result over 64 KB read back from a pipe came
        # back with a stray line break in it.
        output = os.path.join(tempfile.gettempdir(), f"grpc-load-{os.getpid()}-{index}.json")
        outputs.append(output)
        command = [
            sys.executable,
            os.path.abspath(__file__),
            "--worker",
            "--target",
            args.target,
            "--kind",
            args.kind,
            "--model",
            args.model,
            "--duration",
            str(args.duration),
            "--start-at",
            repr(start_at),
            "--callers",
            str(callers),
            "--result-file",
            output,
        ]
        for item in args.metadata:
            command += ["--metadata", item]
        children.append(subprocess.Popen(command))
    results = []
    for child, output in zip(children, outputs, strict=True):
        if child.wait() != 0:
            raise SystemExit(f"grpc_load worker failed with exit code {child.returncode}")
        with open(output) as file:
            results.append(json.load(file))
        os.unlink(output)
    latencies = [x for r in results for x in r["latencies"]]
    firsts = [x for r in results for x in r["firsts"]]
    requests = sum(r["requests"] for r in results)

    def ms(value: float | None) -> float | None:
        return None if value is None else round(value * 1000, 3)

    return {
        "requests": requests,
        "errors": sum(r["errors"] for r in results),
        "error_samples": [e for r in results for e in r["error_samples"]][:3],
        "messages": sum(r["messages"] for r in results),
        "rps": round(requests / args.duration, 1),
        "p50_ms": ms(percentile(latencies, 50)),
        "p99_ms": ms(percentile(latencies, 99)),
        "ttfc_p50_ms": ms(percentile(firsts, 50)),
        "ttfc_p99_ms": ms(percentile(firsts, 99)),
        "processes": processes,
        "concurrency": args.concurrency,
        "duration_s": args.duration,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", required=True)
    parser.add_argument("--kind", choices=sorted(METHODS), default="unary")
    parser.add_argument("--model", default="bench-chat")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--metadata", action="append", default=[], help="key=value, repeatable")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--start-at", type=float, default=0.0, help=argparse.SUPPRESS)
    parser.add_argument("--callers", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--result-file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        install_uvloop()
        result = asyncio.run(_worker(args))
        with open(args.result_file, "w") as file:
            json.dump(result, file)
    else:
        print(json.dumps(_run_workers(args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
