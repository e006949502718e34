"""`make bench`: measure the gateway against its floors on this machine, in one run.

It starts a fast fake upstream, the gateway (auth, routing and accounting on, SQLite store, one
process pinned to CPU 0 where the machine has more than one), the bare aiohttp and grpc.aio
pass-throughs (pinned the same way), then drives each with wrk (HTTP) or bench/grpc_load.py (gRPC)
from the other CPUs. It prints a table and the targets of issues #6 and #14 as PASS/FAIL, and writes JSON to
bench-results/.

Usage: .venv/bin/python bench/run.py [--duration 5] [--latency-duration 5] [--concurrency 32]
       [--streams 5000] [--skip-streams] [--only rest,grpc,...]
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench_gateway import cli_supports, gateway_config, start_gateway
from bench_load import Load
from bench_processes import BENCH, PYTHON, ROOT, Placement, Processes, raise_fd_limit, workspace
from bench_report import machine, overheads, table, targets
from bench_rounds import measure_rounds, plan_rows, row_dict
from bench_streams import measure_open_streams
from bench_workers import measure_workers

__all__ = ["gateway_config", "main", "run"]  # gateway_config: still importable from here


def run(args: argparse.Namespace) -> dict[str, Any]:
    raise_fd_limit()
    placement = Placement.detect()
    info = machine()
    info["placement"] = placement.note
    info["fd_limit"] = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    print(
        f"bench: {info['cpu_model']}, {info['nproc']} CPUs, {placement.note}; "
        f"load average {info['loadavg_at_start']}"
    )
    only = set(args.only.split(",")) if args.only else None

    def wanted(group: str) -> bool:
        return only is None or group in only

    extra: dict[str, Any] = {}
    with workspace(args.keep) as workdir:
        procs = Processes(workdir)
        try:
            upstream_workers = max(2, placement.client_cpus)
            upstream = procs.spawn(
                "upstream",
                [
                    *placement.clients,
                    PYTHON,
                    str(BENCH / "fake_upstream.py"),
                    "--workers",
                    str(upstream_workers),
                    "--slow-chunks",
                    "3600",
                    "--release-file",
                    str(workdir / "release"),
                ],
                port_line=True,
            )
            upstream_url = f"http://127.0.0.1:{upstream.port}/v1"
            load = Load(placement, workdir, args.duration, args.latency_duration, args.concurrency)

            # Every server is started first, so that each round measures a gateway figure and its
            # floor back to back: on a shared machine the load drifts, and a ratio of two numbers
            # taken minutes apart would measure the drift.
            gateway = start_gateway(procs, placement, workdir, upstream.port, args, info)
            bare = bare_grpc = None
            if wanted("rest"):
                bare = procs.spawn(
                    "passthrough",
                    [*placement.server, PYTHON, str(BENCH / "passthrough.py"), "--upstream", upstream_url],
                    port_line=True,
                )
            if wanted("grpc"):
                bare_grpc = procs.spawn(
                    "grpc-passthrough",
                    [
                        *placement.server,
                        PYTHON,
                        str(BENCH / "grpc_passthrough.py"),
                        "--upstream",
                        upstream_url,
                    ],
                    port_line=True,
                )
            plan = plan_rows(load, upstream_url, gateway, bare, bare_grpc)
            rows = measure_rounds(
                plan,
                load,
                args.rounds,
                args.concurrency,
                args.duration,
                args.latency_duration,
                args.ttfc_duration,
            )
            for server in (bare, bare_grpc):
                if server is not None:
                    procs.stop(server)

            # 4. many open streams against the slow upstream
            if wanted("streams") and not args.skip_streams:
                extra["open_streams"] = measure_open_streams(
                    placement, gateway.started, gateway.url, gateway.key, workdir, args.streams, args.hold
                )
            # 5. --workers N: how one port's load spreads over processes (reported, not a target)
            if wanted("workers") and args.workers > 1:
                procs.stop(gateway.started)
                if cli_supports(gateway.source, ["serve"], "--workers"):
                    print(
                        f"bench: --workers {args.workers} "
                        "(not pinned; shares the CPUs with the load generator)"
                    )
                    extra["workers"] = measure_workers(
                        procs,
                        load,
                        gateway.source,
                        gateway.config,
                        args.workers,
                        gateway.url,
                        gateway.key,
                        args.concurrency * 2,
                        args.duration,
                    )
                    print(f"  {extra['workers']}")
                else:
                    extra["workers"] = {"skipped": "this gateway's CLI has no serve --workers"}
            info["gateway_log_tail"] = (workdir / "gateway.log").read_text()[-2000:]
        finally:
            procs.stop_all()
    return {
        "machine": info,
        "settings": vars(args),
        "rows": {k: row_dict(v) for k, v in rows.items()},
        **extra,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=4.0, help="seconds per throughput measurement")
    parser.add_argument(
        "--latency-duration", type=float, default=3.0, help="seconds per concurrency-1 measurement"
    )
    parser.add_argument(
        "--ttfc-duration", type=float, default=3.0, help="seconds per time-to-first-chunk probe"
    )
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument(
        "--rounds", type=int, default=2, help="measure everything N times, keep each row's best"
    )
    parser.add_argument("--streams", type=int, default=5000, help="concurrent open streams to hold")
    parser.add_argument(
        "--hold", type=float, default=5.0, help="seconds to hold all the streams open at once"
    )
    parser.add_argument("--skip-streams", action="store_true", help="skip the open-streams test")
    parser.add_argument("--only", help="comma-separated groups: rest, grpc, streams, workers (default: all)")
    parser.add_argument("--workers", type=int, default=2, help="also measure `serve --workers N` (1: skip)")
    parser.add_argument(
        "--no-credit-limit",
        action="store_true",
        help="create the bench key without a credit limit (no credit reservation per request)",
    )
    parser.add_argument(
        "--no-access-log", action="store_true", help="run the gateway with observability.access_log: false"
    )
    parser.add_argument("--out", default=str(ROOT / "bench-results"))
    parser.add_argument("--keep", action="store_true", help="keep the temporary workdir (logs, config)")
    parser.add_argument(
        "--ref", help="measure this commit (exported with git archive) instead of the working tree"
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print(
            "bench: wrk is not installed (make bench installs it from Debian: apt-get install wrk)",
            file=sys.stderr,
        )
        return 2
    result = run(args)
    result["overhead_c1"] = overheads(result)
    result["targets"] = targets(result)
    text = table(result)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    (out / f"bench-{stamp}.json").write_text(json.dumps(result, indent=2))
    (out / "latest.json").write_text(json.dumps(result, indent=2))
    (out / "latest.md").write_text(text + "\n")
    print()
    print(text)
    print(f"\nbench: wrote {out / f'bench-{stamp}.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
