"""The load generators: wrk (HTTP), bench/grpc_load.py (gRPC), bench/stream_probe.py (time to first chunk).

Each runs on the client CPUs of the placement and returns what it measured.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench_bodies import compact_json
from bench_processes import BENCH, PYTHON, ROOT, Placement


@dataclass
class Sample:
    """One load measurement: throughput and latency (ms)."""

    rps: float
    p50_ms: float | None
    p99_ms: float | None
    requests: int
    errors: int
    concurrency: int
    ttfc_p50_ms: float | None = None
    ttfc_p99_ms: float | None = None
    error_samples: list[str] = field(default_factory=list)


_WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = [==[{body}]==]
wrk.headers["Content-Type"] = "application/json"
{auth}
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {{"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d,' ..
    '"p50_us":%d,"p99_us":%d}}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


# Seconds bench/grpc_load.py loads before its measured window, which opens half a second later still.
GRPC_WARMUP = 1.0


class Load:
    def __init__(
        self, placement: Placement, workdir: Path, duration: float, latency_duration: float, concurrency: int
    ) -> None:
        self.placement = placement
        self.workdir = workdir
        self.duration = duration
        self.latency_duration = latency_duration
        self.concurrency = concurrency
        self._scripts: dict[tuple[str, str], Path] = {}

    def _script(self, body: dict[str, Any], key: str | None) -> Path:
        cache_key = (compact_json(body), key or "")
        if cache_key not in self._scripts:
            path = self.workdir / f"wrk-{len(self._scripts)}.lua"
            auth = f'wrk.headers["Authorization"] = "Bearer {key}"' if key else ""
            path.write_text(_WRK_SCRIPT.format(body=compact_json(body), auth=auth))
            self._scripts[cache_key] = path
        return self._scripts[cache_key]

    def wrk(
        self,
        url: str,
        body: dict[str, Any],
        key: str | None,
        concurrency: int,
        duration: float,
        *,
        warm_up: bool = True,
    ) -> Sample:
        script = self._script(body, key)
        threads = max(1, min(self.placement.client_cpus, concurrency))
        base = [
            *self.placement.clients,
            "wrk",
            "-t",
            str(threads),
            "-c",
            str(concurrency),
            "-s",
            str(script),
            url,
        ]
        if warm_up:  # fills connection pools and wakes lazy paths before the measured window
            subprocess.run([*base[:-1], "-d", "1s", url], capture_output=True, text=True, check=False)
        out = subprocess.run(
            [*base[:-1], "-d", f"{max(1, round(duration))}s", "--timeout", "10s", url],
            capture_output=True,
            text=True,
            check=False,
        )
        line = next((x for x in out.stdout.splitlines() if x.startswith("BENCH_JSON ")), None)
        if line is None:
            raise SystemExit(f"bench: wrk failed on {url}: {out.stdout[-500:]} {out.stderr[-500:]}")
        data = json.loads(line[len("BENCH_JSON ") :])
        errors = data["connect"] + data["read"] + data["write"] + data["status"] + data["timeout"]
        return Sample(
            rps=round(data["requests"] / (data["duration_us"] / 1e6), 1),
            p50_ms=round(data["p50_us"] / 1000, 3),
            p99_ms=round(data["p99_us"] / 1000, 3),
            requests=data["requests"],
            errors=errors,
            concurrency=concurrency,
        )

    def grpc(self, target: str, kind: str, key: str | None, concurrency: int, duration: float) -> Sample:
        """bench/grpc_load.py's run: it loads for GRPC_WARMUP seconds (plus its start) before counting."""
        processes = max(1, min(concurrency, 2 * self.placement.client_cpus))
        command = [
            *self.placement.clients,
            PYTHON,
            str(BENCH / "grpc_load.py"),
            "--target",
            target,
            "--kind",
            kind,
            "--processes",
            str(processes),
            "--concurrency",
            str(concurrency),
            "--duration",
            f"{duration:g}",
            "--warmup",
            f"{GRPC_WARMUP:g}",
        ]
        if key:
            command += ["--metadata", f"authorization=Bearer {key}"]
        data = _json_of(command, "grpc_load")
        return Sample(
            rps=data["rps"],
            p50_ms=data["p50_ms"],
            p99_ms=data["p99_ms"],
            requests=data["requests"],
            errors=data["errors"],
            concurrency=concurrency,
            ttfc_p50_ms=data["ttfc_p50_ms"],
            ttfc_p99_ms=data["ttfc_p99_ms"],
            error_samples=data["error_samples"],
        )

    def ttfc(self, url: str, body: dict[str, Any], key: str | None, duration: float) -> dict[str, Any]:
        command = [
            *self.placement.clients,
            PYTHON,
            str(BENCH / "stream_probe.py"),
            "--url",
            url,
            "--body",
            compact_json(body),
            "--duration",
            f"{duration:g}",
        ]
        if key:
            command += ["--header", f"Authorization: Bearer {key}"]
        return _json_of(command, "stream_probe")


def _json_of(command: list[str], name: str) -> dict[str, Any]:
    """The JSON object a bench script prints; its exit code other than 0 stops the bench."""
    out = subprocess.run(command, capture_output=True, text=True, check=False, cwd=ROOT)
    if out.returncode != 0:
        raise SystemExit(f"bench: {name} failed: {out.stderr[-1000:]}")
    result: dict[str, Any] = json.loads(out.stdout)
    return result


# One row's measurement: (concurrency, seconds) -> what the load generator saw.
Probe = Callable[[int, float], Sample]
