"""`serve --workers N` under load: how one port's requests and CPU spread over the worker processes."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from bench_bodies import CHAT_BODY
from bench_gateway import Source
from bench_load import Load
from bench_processes import PYTHON, Processes, cpu_seconds, wait_http


def measure_workers(
    procs: Processes,
    load: Load,
    source: Source,
    config: Path,
    workers: int,
    url: str,
    key: str,
    concurrency: int,
    duration: float,
) -> dict[str, Any]:
    """REST chat through `serve --workers N`; the split is each worker's CPU time during the run."""
    supervisor = procs.spawn(
        "gateway-workers",
        [PYTHON, "-m", "server", "--config", str(config), "serve", "--workers", str(workers)],
        port_line=False,
        source=source,
    )
    try:
        wait_http(url + "/health/ready")
        deadline = time.monotonic() + 30
        pids: list[int] = []
        while time.monotonic() < deadline:
            pids = [p for p in _children(supervisor.process.pid) if _is_gateway(p)]
            if len(pids) >= workers:
                break
            time.sleep(0.2)
        before = {pid: cpu_seconds(pid) for pid in pids}
        sample = load.wrk(url + "/v1/chat/completions", CHAT_BODY, key, concurrency, duration)
        cpu = {pid: round(cpu_seconds(pid) - before[pid], 2) for pid in pids}
        total = sum(cpu.values()) or 1.0
        requests = _requests_per_pid(supervisor.log) if supervisor.log else {}
        return {
            "workers": workers,
            "processes_found": len(pids),
            "concurrency": concurrency,
            "rps": sample.rps,
            "p50_ms": sample.p50_ms,
            "p99_ms": sample.p99_ms,
            "errors": sample.errors,
            "cpu_seconds_per_worker": list(cpu.values()),
            "share_per_worker": [round(v / total, 2) for v in cpu.values()],
            "access_log_requests_per_worker": requests,
        }
    finally:
        procs.stop(supervisor)


def _requests_per_pid(log: Path) -> dict[str, int]:
    """Requests per worker from the gateway's JSON access log, when it writes one with a pid."""
    counts: dict[str, int] = {}
    try:
        lines = log.read_text().splitlines()
    except OSError:
        return counts
    for line in lines:
        if '"siraya.access"' not in line:
            continue
        try:
            pid = str(json.loads(line).get("pid"))
        except ValueError:
            continue
        counts[pid] = counts.get(pid, 0) + 1
    return counts


def _is_gateway(pid: int) -> bool:
    try:
        return b"server" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def _children(pid: int) -> list[int]:
    """Every descendant of `pid`, from /proc."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            parents.setdefault(ppid, []).append(int(entry.name))
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found
