"""The processes `bench/run.py` starts, where they run (CPU placement) and what /proc says about them."""

from __future__ import annotations

import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bench_gateway import Source

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
PYTHON = sys.executable


@dataclass
class Started:
    name: str
    process: subprocess.Popen[str]
    port: int = 0
    log: Path | None = None

    def rss_mb(self) -> dict[str, float]:
        """Current and peak resident memory of the process, from /proc (MB)."""
        values: dict[str, float] = {}
        try:
            for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
                key, _, rest = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    values[key] = round(int(rest.split()[0]) / 1024, 1)
        except OSError:
            pass
        return values


class Processes:
    """Everything the bench started; each is stopped by its own process group id, nothing else."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.started: list[Started] = []

    def spawn(
        self, name: str, command: list[str], *, port_line: bool, source: Source | None = None
    ) -> Started:
        log = self.workdir / f"{name}.log"
        stdout: Any = subprocess.PIPE if port_line else log.open("w")
        process = subprocess.Popen(
            command,
            cwd=source.root if source else ROOT,
            env=source.env if source else None,
            stdout=stdout,
            stderr=log.open("a") if port_line else subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        started = Started(name, process, log=log)
        self.started.append(started)
        if port_line:
            assert process.stdout is not None
            line = process.stdout.readline()
            if not line.startswith("PORT "):
                raise SystemExit(f"bench: {name} did not start: {line!r}; see {log}")
            started.port = int(line.split()[1])
        return started

    def stop(self, started: Started) -> None:
        if started.process.poll() is None:
            try:
                os.killpg(started.process.pid, 15)
                started.process.wait(timeout=10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(started.process.pid, 9)
                except ProcessLookupError:
                    pass
        if started in self.started:
            self.started.remove(started)

    def stop_all(self) -> None:
        for started in reversed(list(self.started)):
            self.stop(started)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"bench: {url} did not become ready in {timeout:.0f}s")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time the process has used so far, from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def workspace(keep: bool) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="siraya-bench-"))
    try:
        yield path
    finally:
        if not keep:
            shutil.rmtree(path, ignore_errors=True)


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# CPU placement


@dataclass(frozen=True)
class Placement:
    """The gateway (and the floors) on one CPU; clients and the upstream on the others."""

    server: list[str] = field(default_factory=list)
    clients: list[str] = field(default_factory=list)
    client_cpus: int = 1
    note: str = ""

    @staticmethod
    def detect() -> Placement:
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) < 2 or shutil.which("taskset") is None:
            return Placement(note="not pinned (one CPU or no taskset): numbers include the load generator")
        others = ",".join(str(c) for c in cpus[1:])
        return Placement(
            ["taskset", "-c", str(cpus[0])],
            ["taskset", "-c", others],
            len(cpus) - 1,
            f"server pinned to CPU {cpus[0]}; upstream and load generators on CPU {others}",
        )
