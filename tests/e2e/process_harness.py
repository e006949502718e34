"""The gateway as a real `python -m server serve` process, for signals: drain, reload and workers.

Fake upstreams run on a background event loop in the test process; the gateway process reaches
them over loopback like any upstream.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import httpx

from tests.fakes.openai_upstream import FakeOpenAIUpstream

T = TypeVar("T")
UPSTREAM_KEY = "sk-upstream-process-0123456789"
ROOT = Path(__file__).resolve().parents[2]
_LISTENING = re.compile(r"REST on http://[^:]+:(\d+)/v1")


class UpstreamLoop:
    """Fake OpenAI upstreams served from a background event loop."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.upstreams: list[FakeOpenAIUpstream] = []

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start_upstream(self, **options: Any) -> FakeOpenAIUpstream:
        upstream = FakeOpenAIUpstream(api_key=UPSTREAM_KEY, **options)
        self.run(upstream.start())
        self.upstreams.append(upstream)
        return upstream

    def close(self) -> None:
        for upstream in self.upstreams:
            self.run(upstream.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)


class GatewayProcess:
    """`python -m server --config FILE serve ...` with its output captured to files."""

    def __init__(self, tmp_dir: Path, config_text: str, *serve_args: str) -> None:
        self.tmp_dir = tmp_dir
        self.config_path = tmp_dir / "siraya.yaml"
        self.config_path.write_text(config_text)
        self.serve_args = serve_args
        self.env = {**os.environ, "FAKE_UPSTREAM_KEY": UPSTREAM_KEY, "PYTHONUNBUFFERED": "1"}
        self.env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        self.process: subprocess.Popen[bytes] | None = None
        self.http_port = 0
        self.stdout_path = tmp_dir / "stdout.log"
        self.stderr_path = tmp_dir / "stderr.log"

    def cli(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "server", "--config", str(self.config_path), *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return done.stdout

    def create_key(self) -> str:
        return self.cli("keys", "create", "--name", "process-tests").strip().splitlines()[-1]

    def start(self, http_port: int | None = None, timeout: float = 60) -> GatewayProcess:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "server", "--config", str(self.config_path), "serve", *self.serve_args],
            cwd=ROOT,
            env=self.env,
            stdout=self.stdout_path.open("wb"),
            stderr=self.stderr_path.open("wb"),
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the gateway exited with {self.process.returncode}: {self.stderr()}")
            if http_port is None:
                found = _LISTENING.search(self.stdout())
                port = int(found.group(1)) if found else 0
            else:
                port = http_port
            if port and _ready(port):
                self.http_port = port
                return self
            time.sleep(0.1)
        raise TimeoutError(f"the gateway did not become ready: {self.stderr()}")

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace") if self.stdout_path.exists() else ""

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""

    def send(self, sig: signal.Signals) -> None:
        assert self.process is not None
        self.process.send_signal(sig)

    def wait(self, timeout: float = 60) -> int:
        assert self.process is not None
        return self.process.wait(timeout)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


def _ready(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
