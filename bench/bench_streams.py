"""Many concurrent open streams against the fake upstream's slow model: the gateway's memory and CPU."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from bench_bodies import SLOW_BODY, compact_json
from bench_processes import BENCH, PYTHON, ROOT, Placement, Started, cpu_seconds


def measure_open_streams(
    placement: Placement,
    gateway: Started,
    gateway_url: str,
    key: str,
    workdir: Path,
    streams: int,
    hold: float,
) -> dict[str, Any]:
    """`streams` streams held open at once by bench/open_streams.py, released through the upstream's
    release file once all are open; the gateway's RSS before and after and its CPU per relayed chunk."""
    print(f"bench: {streams} concurrent open streams (slow upstream, one chunk per second)")
    command = [
        *placement.clients,
        PYTHON,
        str(BENCH / "open_streams.py"),
        "--url",
        gateway_url + "/v1/chat/completions",
        "--body",
        compact_json(SLOW_BODY),
        "--header",
        f"Authorization: Bearer {key}",
        "--streams",
        str(streams),
        "--hold",
        f"{hold:g}",
        "--release-file",
        str(workdir / "release"),
    ]
    before = gateway.rss_mb()
    cpu_before = cpu_seconds(gateway.process.pid)
    out = subprocess.run(command, capture_output=True, text=True, check=False, cwd=ROOT)
    if out.returncode != 0:
        raise SystemExit(f"bench: open_streams failed: {out.stderr[-1000:]}")
    result: dict[str, Any] = {
        **json.loads(out.stdout),
        "rss_before_mb": before,
        "rss_mb": gateway.rss_mb(),
        "gateway_cpu_seconds": round(cpu_seconds(gateway.process.pid) - cpu_before, 1),
    }
    chunks = result.get("chunks_total") or 0
    if chunks:
        # Opening, relaying and closing included: what one chunk costs the gateway's core.
        result["gateway_cpu_us_per_chunk"] = round(result["gateway_cpu_seconds"] / chunks * 1e6, 1)
    print(f"  {result}")
    return result
