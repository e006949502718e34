"""`serve --workers N`: run N gateway processes that share the HTTP and gRPC ports.

Each worker is a fresh interpreter (`python -m server ... serve`), so no gRPC or asyncio object ever
crosses a fork. The workers bind with SO_REUSEPORT and the kernel spreads connections over them.
The supervisor restarts a worker that dies, forwards SIGHUP (reload) and SIGTERM (drain) to all of
them, and exits 0 once every worker drained cleanly.

Metrics: prometheus-client's multiprocess mode. The supervisor points PROMETHEUS_MULTIPROC_DIR at a
fresh directory (unless it is already set); every worker writes its values there and any worker's
/metrics sums them all.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

__all__ = ["WORKER_ENV", "free_port", "supervise"]

logger = logging.getLogger("siraya.supervisor")
WORKER_ENV = "SIRAYA_WORKER"
POLL_SECONDS = 0.2
# A worker that dies within this long of starting is restarted after a growing pause.
MIN_UPTIME = 5.0
MAX_BACKOFF = 10.0
# A worker's exit code for "cannot start" (the CLI's start-up failure).
CANNOT_START = 2


def free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass
class _Worker:
    slot: int
    process: subprocess.Popen[bytes]
    started_at: float = field(default_factory=time.monotonic)
    failures: int = 0


class _Signals:
    def __init__(self) -> None:
        self.stop = False
        self.reload = False

    def install(self) -> None:
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)
        signal.signal(signal.SIGHUP, self._on_reload)

    def _on_stop(self, signum: int, frame: object) -> None:
        self.stop = True

    def _on_reload(self, signum: int, frame: object) -> None:
        self.reload = True


def _mark_dead(pid: int) -> None:
    from server.observability.metrics import mark_worker_dead

    mark_worker_dead(pid)


def supervise(worker_args: list[str], workers: int, drain_seconds: float) -> int:
    """Run `python -m server <worker_args>` `workers` times until SIGTERM; the exit code for the CLI."""
    own_dir = None
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        own_dir = tempfile.mkdtemp(prefix="siraya-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = own_dir
    env = {**os.environ, WORKER_ENV: "1"}
    command = [sys.executable, "-m", "server", *worker_args]
    signals = _Signals()
    signals.install()

    def spawn(slot: int, failures: int = 0) -> _Worker:
        worker = _Worker(slot, subprocess.Popen(command, env=env), failures=failures)
        print(f"worker {slot} started (pid {worker.process.pid})", flush=True)
        return worker

    pool = [spawn(slot) for slot in range(workers)]
    try:
        while not signals.stop:
            time.sleep(POLL_SECONDS)
            if signals.reload:
                signals.reload = False
                for worker in pool:
                    worker.process.send_signal(signal.SIGHUP)
            for index, worker in enumerate(pool):
                code = worker.process.poll()
                if code is None or signals.stop:
                    continue
                _mark_dead(worker.process.pid)
                quick = time.monotonic() - worker.started_at < MIN_UPTIME
                if quick and code == CANNOT_START:
                    # It said why on stderr (a busy port, a bad database): restarting cannot help.
                    print(f"worker {worker.slot} could not start; stopping", flush=True)
                    _stop_all(pool, drain_seconds)
                    return CANNOT_START
                failures = worker.failures + 1 if quick else 0
                pause = min(MAX_BACKOFF, 0.5 * 2 ** (failures - 1)) if failures else 0.0
                pid = worker.process.pid
                print(f"worker {worker.slot} (pid {pid}) exited with {code}; restarting", flush=True)
                time.sleep(pause)
                pool[index] = spawn(worker.slot, failures)
        return _stop_all(pool, drain_seconds)
    finally:
        if own_dir is not None:
            shutil.rmtree(own_dir, ignore_errors=True)


def _stop_all(pool: list[_Worker], drain_seconds: float) -> int:
    for worker in pool:
        if worker.process.poll() is None:
            worker.process.send_signal(signal.SIGTERM)
    # The workers' own drain is bounded by drain_seconds, plus the time their final events take.
    deadline = time.monotonic() + drain_seconds + 15.0
    codes = []
    for worker in pool:
        try:
            codes.append(worker.process.wait(max(0.0, deadline - time.monotonic())))
        except subprocess.TimeoutExpired:
            worker.process.kill()
            codes.append(worker.process.wait())
        _mark_dead(worker.process.pid)
    return 0 if all(code == 0 for code in codes) else 1
