"""`make bench-instructions`: the instructions a request costs the gateway, counted by callgrind.

CPU time on a shared machine moves by 5-15% between runs, so `make bench-ab` sees a difference of
about 5% at best. Valgrind's callgrind counts the instructions the gateway's process executes (every
thread), which do not depend on the machine's load: one request at a time (c=1), runs of the same
code agree to about 1% (the gateway's batches are per second of wall clock, and callgrind's slowdown
varies). Its output file says where the instructions go, C function by C function
(`callgrind_annotate FILE`).

What it does not show: anything that depends on concurrency (batching, contention, the GIL moving
between threads) or on the time a system call spends in the kernel. Those still need bench-ab.

The gateway runs its usual config against the bench's fake upstream, with a credit-limited key, as
in `make bench`; under callgrind it serves ~100 requests a second. Needs valgrind and wrk.

Usage: .venv/bin/python bench/instructions.py [--ref REF|DIR] [--kind rest-chat|rest-stream]
       [--seconds 25] [--keep DIR]
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

from bench_bodies import CHAT_BODY, STREAM_BODY
from bench_gateway import Source, create_key, gateway_config, server_settings
from bench_load import Load
from bench_processes import BENCH, PYTHON, Placement, Processes, free_port, wait_http, workspace

BODIES = {"rest-chat": CHAT_BODY, "rest-stream": STREAM_BODY}
WARM_UP_SECONDS = 10
_TOTALS = re.compile(r"^(?:totals|summary):\s+(\d+)", re.MULTILINE)


def instructions_in(dump: Path) -> int:
    """The instruction count a callgrind output file records."""
    found = _TOTALS.findall(dump.read_text(errors="replace"))
    if not found:
        raise SystemExit(f"bench-instructions: no totals in {dump}")
    return int(found[-1])


def _control(*args: str) -> None:
    subprocess.run(["callgrind_control", *args], capture_output=True, check=True)


def measure(args: argparse.Namespace, workdir: Path) -> tuple[int, int, Path]:
    """(instructions, requests, the callgrind file) of `args.seconds` of requests, one at a time."""
    placement = Placement.detect()
    procs = Processes(workdir)
    try:
        upstream = procs.spawn(
            "upstream", [*placement.clients, PYTHON, str(BENCH / "fake_upstream.py")], port_line=True
        )
        source = Source.of(args.ref, workdir)
        config, http_port = workdir / "gateway.yaml", free_port()
        gateway_config(
            config,
            workdir / "data",
            upstream.port,
            http_port,
            free_port(),
            server_extra=server_settings(source),
        )
        key = create_key(config, source, 1_000_000.0)
        out = workdir / "callgrind.out"
        valgrind = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}.%p"]
        gateway = procs.spawn(
            "gateway",
            [*placement.server, *valgrind, PYTHON, "-m", "server", "--config", str(config), "serve"],
            port_line=False,
            source=source,
        )
        url = f"http://127.0.0.1:{http_port}"
        wait_http(url + "/health/ready", timeout=600)
        load = Load(placement, workdir, args.seconds, args.seconds, 1)
        body = BODIES[args.kind]
        load.wrk(url + "/v1/chat/completions", body, key, 4, WARM_UP_SECONDS, warm_up=False)
        pid = str(gateway.process.pid)
        _control("--instr=on", pid)
        sample = load.wrk(url + "/v1/chat/completions", body, key, 1, args.seconds, warm_up=False)
        _control("--instr=off", pid)
        _control("--dump", pid)
        if sample.errors or not sample.requests:
            raise SystemExit(f"bench-instructions: {sample.errors} errors in {sample.requests} requests")
        dumps = sorted(workdir.glob("callgrind.out.*"), key=lambda path: path.stat().st_size)
        return instructions_in(dumps[-1]), sample.requests, dumps[-1]
    finally:
        procs.stop_all()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ref", help="a commit, or a directory holding the code (default: the working tree)")
    parser.add_argument("--kind", choices=sorted(BODIES), default="rest-chat")
    parser.add_argument("--seconds", type=float, default=25.0)
    parser.add_argument("--keep", type=Path, help="copy the callgrind file here, for callgrind_annotate")
    args = parser.parse_args()
    for tool in ("valgrind", "callgrind_control", "wrk"):
        if shutil.which(tool) is None:
            raise SystemExit(f"bench-instructions: {tool} is not installed")
    with workspace(False) as workdir:
        instructions, requests, dump = measure(args, workdir)
        if args.keep is not None:
            args.keep.mkdir(parents=True, exist_ok=True)
            shutil.copy(dump, args.keep / f"callgrind-{args.kind}.out")
    print(
        f"{args.kind}: {instructions / requests:,.0f} instructions per request"
        f" ({instructions:,} over {requests:,} requests, one at a time)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
