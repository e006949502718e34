"""`make bench-ab`: is one commit faster than another? CPU per request, alternated, on this machine.

A keep-or-drop decision on the hot path needs a difference of a few percent, and on a shared
machine one `make bench` run moves by 10-15% (README, "Benchmarks"). This tool measures what such a
decision rests on instead: the gateway's own CPU time per request (every thread, from /proc), at
a fixed load, for two versions of the code running side by side, each measured `--runs` times in
turn (A, B, A, B, ...), so a drift in the machine's speed lands on both. It prints, per kind of
request, each version's median CPU microseconds per request with its spread, and B/A.

Both gateways run the same generated config against one fast fake upstream, each with a key that
has a credit limit (credits reserved and settled, ledger written, as in `make bench`), pinned to
the same CPU; wrk or bench/grpc_load.py load them from the other CPUs.

Usage: .venv/bin/python bench/ab.py --a HEAD~1 [--b HEAD] [--kinds rest-chat,rest-stream]
       [--runs 5] [--duration 4] [--concurrency 32]
--b defaults to the working tree; either may also be a directory holding a copy of the code.
Kinds: rest-chat, rest-stream, grpc-unary, grpc-stream.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace

from bench_bodies import CHAT_BODY, STREAM_BODY
from bench_gateway import Gateway, start_gateway
from bench_load import GRPC_WARMUP, Load, Sample
from bench_processes import BENCH, PYTHON, Placement, Processes, cpu_seconds, raise_fd_limit, workspace

KINDS = ("rest-chat", "rest-stream", "grpc-unary", "grpc-stream")


@dataclass
class Runs:
    """One version's measurements of one kind of request."""

    cpu_us: list[float] = field(default_factory=list)
    rps: list[float] = field(default_factory=list)

    def add(self, cpu_us: float, rps: float) -> None:
        self.cpu_us.append(cpu_us)
        self.rps.append(rps)

    def summary(self) -> str:
        low, high = min(self.cpu_us), max(self.cpu_us)
        return (
            f"{statistics.median(self.cpu_us):7.1f} us/req ({low:.1f}-{high:.1f}), "
            f"{statistics.median(self.rps):8,.0f} req/s"
        )


def _probe(load: Load, gateway: Gateway, kind: str, concurrency: int) -> Callable[[float], Sample]:
    url = gateway.url + "/v1/chat/completions"
    if kind == "rest-chat":
        return lambda seconds: load.wrk(url, CHAT_BODY, gateway.key, concurrency, seconds, warm_up=False)
    if kind == "rest-stream":
        return lambda seconds: load.wrk(url, STREAM_BODY, gateway.key, concurrency, seconds, warm_up=False)
    grpc_kind = "unary" if kind == "grpc-unary" else "stream"
    return lambda seconds: load.grpc(gateway.target, grpc_kind, gateway.key, concurrency, seconds)


def measure(
    gateway: Gateway, kind: str, probe: Callable[[float], Sample], seconds: float
) -> tuple[float, float]:
    """(CPU microseconds per request, req/s) of one loaded window.

    wrk counts from its start, so the CPU is read around it. grpc_load counts only the calls started
    in its window, after its warm-up: the CPU is read at that window's ends, from timers."""
    pid = gateway.started.process.pid
    if kind.startswith("rest"):
        before = cpu_seconds(pid)
        sample = probe(seconds)
        used = cpu_seconds(pid) - before
    else:
        readings: list[float] = []
        opens = GRPC_WARMUP + 0.5
        timers = [
            threading.Timer(delay, lambda: readings.append(cpu_seconds(pid)))
            for delay in (opens, opens + seconds)
        ]
        for timer in timers:
            timer.start()
        started = time.monotonic()
        sample = probe(seconds)
        for timer in timers:
            timer.join()
        if len(readings) != 2 or time.monotonic() - started < opens + seconds:
            raise SystemExit("bench-ab: the gRPC window was not read")
        used = readings[1] - readings[0]
    if sample.errors or not sample.requests:
        raise SystemExit(f"bench-ab: {sample.errors} errors in {sample.requests} requests")
    return used / sample.requests * 1e6, sample.rps


def run(args: argparse.Namespace) -> dict[str, tuple[Runs, Runs]]:
    raise_fd_limit()
    placement = Placement.detect()
    kinds = [kind for kind in args.kinds.split(",") if kind]
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        raise SystemExit(f"bench-ab: unknown kinds {unknown}; known: {', '.join(KINDS)}")
    results: dict[str, tuple[Runs, Runs]] = {kind: (Runs(), Runs()) for kind in kinds}
    with workspace(False) as workdir:
        procs = Processes(workdir)
        try:
            upstream = procs.spawn(
                "upstream",
                [*placement.clients, PYTHON, str(BENCH / "fake_upstream.py"), "--workers", "2"],
                port_line=True,
            )
            load = Load(placement, workdir, args.duration, args.duration, args.concurrency)
            gateways = []
            for name, ref in (("a", args.a), ("b", args.b)):
                home = workdir / name
                home.mkdir()
                options = SimpleNamespace(ref=ref, no_access_log=False, no_credit_limit=False)
                gateways.append(start_gateway(procs, placement, home, upstream.port, options, {}))
            for kind in kinds:
                probes = [_probe(load, gateway, kind, args.concurrency) for gateway in gateways]
                for probe in probes:  # warm each up once: pools filled, lazy paths woken
                    probe(1)
                for _ in range(args.runs):
                    for gateway, probe, runs in zip(gateways, probes, results[kind], strict=True):
                        runs.add(*measure(gateway, kind, probe, args.duration))
                print(f"bench-ab: {kind} measured {args.runs} times each", file=sys.stderr)
        finally:
            procs.stop_all()
    return results


def report(args: argparse.Namespace, results: dict[str, tuple[Runs, Runs]]) -> str:
    lines = [f"A = {args.a}, B = {args.b or 'the working tree'}; median of {args.runs} alternated runs"]
    for kind, (a, b) in results.items():
        ratio = statistics.median(b.cpu_us) / statistics.median(a.cpu_us)
        lines.append(f"{kind:12s} A {a.summary()}")
        lines.append(f"{'':12s} B {b.summary()}   B/A CPU per request {ratio:.3f}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--a", required=True, help="the baseline: a commit (git archive)")
    parser.add_argument("--b", default=None, help="the change: a commit (default: the working tree)")
    parser.add_argument(
        "--kinds", default="rest-chat,rest-stream", help=f"comma-separated: {','.join(KINDS)}"
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--duration", type=float, default=4.0, help="seconds per measured run")
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    print(report(args, run(args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
