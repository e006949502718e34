"""The report: the machine it ran on, the overhead over the direct upstream, the targets, the table."""

from __future__ import annotations

import os
import platform
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench_processes import ROOT

# Targets of issue #6, raised by #14 (ratios against floors measured in the same run).
REST_RATIO = 0.75
STREAM_RATIO = 0.75
GRPC_RATIO = 0.75
P50_OVERHEAD_MS = 0.5
P99_OVERHEAD_MS = 5.0
TTFC_OVERHEAD_MS = 1.0
OPEN_STREAMS_RSS_MB = 600
UPSTREAM_HEADROOM = 5.0


def machine() -> dict[str, Any]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=False
        ).stdout.strip()

    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "commit": git("rev-parse", "--short", "HEAD"),
        "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
        "loadavg_at_start": os.getloadavg(),
    }


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def overheads(result: dict[str, Any]) -> dict[str, dict[str, float | None]]:
    """Per row, at concurrency 1: its p50/p99 minus the direct upstream's for the same kind of request."""
    rows = result["rows"]
    out: dict[str, dict[str, float | None]] = {}
    for name, row in rows.items():
        direct = rows.get(f"upstream {row['kind']}")
        if name.startswith("upstream") or direct is None or row["c1"] is None:
            continue
        p50 = row["c1"]["p50_ms"] - direct["c1"]["p50_ms"] if row["c1"]["p50_ms"] is not None else None
        p99 = row["c1"]["p99_ms"] - direct["c1"]["p99_ms"] if row["c1"]["p99_ms"] is not None else None
        ttfc = None
        mine = row["ttfc"] or (
            {"ttfc_p50_ms": row["c1"]["ttfc_p50_ms"]} if row["c1"].get("ttfc_p50_ms") else None
        )
        if mine and direct.get("ttfc") and mine.get("ttfc_p50_ms") is not None:
            ttfc = mine["ttfc_p50_ms"] - direct["ttfc"]["ttfc_p50_ms"]
        out[name] = {"p50_ms": p50, "p99_ms": p99, "ttfc_p50_ms": ttfc}
    return out


def targets(result: dict[str, Any]) -> list[tuple[str, bool | None, str]]:
    rows = result["rows"]
    over = result["overhead_c1"]
    checks: list[tuple[str, bool | None, str]] = []

    def rps(name: str) -> float | None:
        row = rows.get(name)
        return row["load"]["rps"] if row and row["load"] else None

    def ratio(name: str, floor: str, target: float, label: str) -> None:
        mine, base = rps(name), rps(floor)
        if mine is None or base is None or base == 0:
            checks.append((label, None, "not measured"))
            return
        checks.append(
            (
                label,
                mine / base >= target,
                f"{mine:,.0f} / {base:,.0f} req/s = {mine / base:.0%} (target >= {target:.0%})",
            )
        )

    gateway_best = max((rps(n) or 0) for n in ("REST chat", "gRPC chat"))
    if rps("upstream chat") and gateway_best:
        up = rps("upstream chat") or 0
        checks.append(
            (
                "fake upstream >= 5x the gateway",
                up >= UPSTREAM_HEADROOM * gateway_best,
                f"{up:,.0f} vs {gateway_best:,.0f} req/s = {up / gateway_best:.1f}x",
            )
        )
    ratio("REST chat", "bare pass-through", REST_RATIO, "REST chat vs bare aiohttp pass-through")
    if "REST chat" in over:
        p50, p99 = over["REST chat"]["p50_ms"], over["REST chat"]["p99_ms"]
        checks.append(
            (
                "REST chat p50 overhead at c=1",
                p50 is not None and p50 <= P50_OVERHEAD_MS,
                f"{_fmt(p50, 3)} ms (target <= {P50_OVERHEAD_MS} ms)",
            )
        )
        checks.append(
            (
                "REST chat p99 overhead at c=1",
                p99 is not None and p99 <= P99_OVERHEAD_MS,
                f"{_fmt(p99, 3)} ms (target <= {P99_OVERHEAD_MS} ms)",
            )
        )
    ratio(
        "REST chat stream",
        "bare stream pass-through",
        STREAM_RATIO,
        "REST stream vs bare stream pass-through",
    )
    if "REST chat stream" in over:
        ttfc = over["REST chat stream"]["ttfc_p50_ms"]
        checks.append(
            (
                "REST stream time-to-first-chunk overhead",
                ttfc is not None and ttfc <= TTFC_OVERHEAD_MS,
                f"{_fmt(ttfc, 3)} ms p50 (target <= {TTFC_OVERHEAD_MS} ms)",
            )
        )
    ratio("gRPC chat", "bare grpc.aio pass-through", GRPC_RATIO, "gRPC unary vs bare grpc.aio pass-through")
    ratio(
        "gRPC chat stream",
        "bare grpc.aio pass-through stream",
        GRPC_RATIO,
        "gRPC stream vs bare grpc.aio stream pass-through",
    )
    streams = result.get("open_streams")
    if streams:
        peak = streams["rss_mb"].get("VmHWM")
        ok = (
            streams["errors"] == 0
            and streams["completed"] == streams["streams"]
            and streams["peak_open"] == streams["streams"]
            and peak is not None
            and peak < OPEN_STREAMS_RSS_MB
        )
        checks.append(
            (
                f"{streams['streams']:,} concurrent open streams",
                ok,
                f"peak open {streams['peak_open']:,}, completed {streams['completed']:,}, "
                f"errors {streams['errors']}, gateway peak RSS {peak} MB (target < {OPEN_STREAMS_RSS_MB})",
            )
        )
    errors = sum((r["load"] or {}).get("errors", 0) + (r["c1"] or {}).get("errors", 0) for r in rows.values())
    checks.append(("no errors in any load run", errors == 0, f"{errors} errors"))
    return checks


def table(result: dict[str, Any]) -> str:
    info = result["machine"]
    c = result["settings"]["concurrency"]
    over = result["overhead_c1"]
    lines = [
        f"Machine: {info['cpu_model']}, nproc {info['nproc']}, Python {info['python']}; {info['placement']}.",
        f"Key: {info.get('key', '-')}; "
        f"access log {'off' if result['settings'].get('no_access_log') else 'on'}.",
        f"Commit {info['commit']}{' (with uncommitted changes)' if info['dirty'] else ''}, {info['date']}, "
        f"load average at start {', '.join(f'{x:.2f}' for x in info['loadavg_at_start'])}.",
        "",
        f"| measured | req/s c={c} | p50 / p99 ms c={c} | req/s c=1 | p50 / p99 ms c=1 "
        "| overhead p50 / p99 ms c=1 "
        "| TTFC p50 ms (overhead) | peak RSS MB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, row in result["rows"].items():
        load, single = row["load"], row["c1"]
        o = over.get(name)
        overhead = f"{_fmt(o['p50_ms'], 3)} / {_fmt(o['p99_ms'], 3)}" if o else "-"
        ttfc_value = (row["ttfc"] or {}).get("ttfc_p50_ms") or single.get("ttfc_p50_ms")
        ttfc = "-"
        if ttfc_value is not None:
            ttfc = f"{ttfc_value:.3f}" + (
                f" ({o['ttfc_p50_ms']:+.3f})" if o and o["ttfc_p50_ms"] is not None else ""
            )
        lines.append(
            f"| {name} | {_fmt(load['rps'], 0)} | {_fmt(load['p50_ms'])} / {_fmt(load['p99_ms'])} "
            f"| {_fmt(single['rps'], 0)} | {_fmt(single['p50_ms'], 3)} / {_fmt(single['p99_ms'], 3)} "
            f"| {overhead} "
            f"| {ttfc} | {row['rss_mb'].get('VmHWM', '-')} |"
        )
    lines += ["", "| target | result | measured |", "|---|---|---|"]
    for label, ok, detail in result["targets"]:
        lines.append(f"| {label} | {'n/a' if ok is None else 'PASS' if ok else 'FAIL'} | {detail} |")
    streams = result.get("open_streams")
    if streams:
        lines += [
            "",
            f"Open streams: {streams['peak_open']:,} of {streams['streams']:,} open at once after "
            f"{streams['all_opened_after_s']} s, held {streams['held_all_open_s']} s; gateway RSS "
            f"{streams['rss_before_mb'].get('VmHWM')} -> {streams['rss_mb'].get('VmHWM')} MB peak; "
            f"{streams.get('gateway_cpu_us_per_chunk', '-')} us of gateway CPU per relayed chunk.",
        ]
    workers = result.get("workers")
    if workers and "rps" in workers:
        lines += [
            "",
            f"`serve --workers {workers['workers']}` (not pinned, c={workers['concurrency']}): "
            f"{workers['rps']:,.0f} req/s REST chat; requests per worker (access log) "
            f"{list(workers['access_log_requests_per_worker'].values())}, CPU share per worker "
            f"{workers['share_per_worker']}.",
        ]
    return "\n".join(lines)
