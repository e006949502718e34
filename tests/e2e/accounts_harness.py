"""Gateways with accounts turned on (prices, an admin key, moderation) in front of fake upstreams.

`AccountsHarness` runs one gateway on a background loop, like harness.GatewayHarness.
`GatewayProcess` runs `siraya-router serve` in a child process, for the multi-replica tests.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self

import httpx
import openai
import pytest
from aiohttp import web

from server.accounts.keys import NewKey
from server.config import load_config
from siraya_app.start import start_gateway
from tests.e2e.loop_gateway import LoopGateway
from tests.fakes.openai_upstream import FakeOpenAIUpstream
from tests.unit.server.accounts.accounts_backends import REDIS_URL, temporary_database

UPSTREAM_KEY = "sk-upstream-secret-0123456789"
ADMIN_KEY = "sk-admin-test-secret-987654321"
IMAGE_PRICE = 0.04  # USD per image
INPUT_PER_MILLION = 1.0
OUTPUT_PER_MILLION = 2.0
# gpt-dear's reply tokens: 50 times gpt-priced's (its prompt tokens cost the same).
DEAR_OUTPUT_PER_MILLION = 100.0

CONFIG = """
server:
  host: 127.0.0.1
  http_port: 0
  grpc_port: 0
  data_dir: {data_dir}
  admin_key: {admin_key}
accounts:
{accounts}  ledger_flush_interval: {flush}
  key_cache_ttl: 0.5
  moderation:
    - name: rules
      models: [gpt-moderated]
      patterns:
        violence: "(?i)\\\\bkill (him|her|them)\\\\b"
    - name: upstream
      models: [gpt-upstream-moderated]
      upstream: {{base_url: "{moderation_url}", api_key: sk-moderation-key, model: omni-moderation-latest}}
      fail_open: {fail_open}
providers:
  fake:
    type: openai
    base_url: {upstream_url}
    api_key: {upstream_key}
  listed:
    type: openai
    base_url: {upstream_url}
    api_key: {upstream_key}
    price_catalogue: openai
  dead:
    type: openai
    base_url: http://127.0.0.1:{dead_port}/v1
    api_key: {upstream_key}
    connect_timeout: 2
models:
  - id: gpt-dead
    provider: dead
    pricing: {{input_per_million: {input_price}, output_per_million: {output_price}}}
  - id: gpt-priced
    provider: fake
    upstream_model: gpt-4o-mini
    pricing: {{input_per_million: {input_price}, output_per_million: {output_price}}}
  - id: gpt-dear
    provider: fake
    upstream_model: gpt-4o
    pricing: {{input_per_million: {input_price}, output_per_million: {dear_output_price}}}
  - id: gpt-free
    provider: fake
    upstream_model: gpt-4o-mini
    pricing: free
  - id: gpt-moderated
    provider: fake
    upstream_model: gpt-4o-mini
    pricing: free
  - id: gpt-upstream-moderated
    provider: fake
    upstream_model: gpt-4o-mini
    pricing: free
  - id: gpt-unpriced
    provider: fake
    upstream_model: gpt-4o-mini
  - id: gpt-listed
    provider: listed
    upstream_model: gpt-4o-mini
  - id: image-priced
    provider: fake
    upstream_model: gpt-image-1
    kind: image
    pricing: {{per_image: {image_price}}}
"""


class FakeModerations:
    """POST /v1/moderations, OpenAI's shape: flags any input containing "forbidden"; can be made to fail,
    or to answer with a valid reply far too large (`oversized`)."""

    def __init__(self) -> None:
        self.failing = False
        self.oversized = False
        self.calls = 0
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/moderations", self._moderate)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"http://127.0.0.1:{port}/v1"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _moderate(self, request: web.Request) -> web.Response:
        self.calls += 1
        if self.failing:
            return web.json_response({"error": {"message": "down", "type": "server_error"}}, status=503)
        if request.headers.get("Authorization") != "Bearer sk-moderation-key":
            return web.json_response(
                {"error": {"message": "bad key", "type": "invalid_request_error"}}, status=401
            )
        body = await request.json()
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        results = []
        for text in inputs:
            flagged = "forbidden" in text
            results.append(
                {
                    "flagged": flagged,
                    "categories": {"harassment": flagged, "violence": False},
                    "category_scores": {"harassment": 0.99 if flagged else 0.01, "violence": 0.0},
                }
            )
        padding = "x" * (8 << 20) if self.oversized else ""
        return web.json_response(
            {"id": "modr-1", "model": body.get("model", ""), "results": results, "padding": padding}
        )


def render_config(
    data_dir: Path,
    upstream_url: str,
    moderation_url: str,
    *,
    database_url: str | None = None,
    redis_url: str | None = None,
    flush: float = 0.05,
    fail_open: bool = False,
) -> str:
    accounts = ""
    if database_url:
        accounts += f"  database_url: {database_url}\n"
    if redis_url:
        accounts += f"  redis_url: {redis_url}\n"
    return CONFIG.format(
        data_dir=data_dir,
        admin_key=ADMIN_KEY,
        accounts=accounts,
        flush=flush,
        moderation_url=moderation_url,
        fail_open="true" if fail_open else "false",
        upstream_url=upstream_url,
        upstream_key=UPSTREAM_KEY,
        dead_port=_unused_port(),
        input_price=INPUT_PER_MILLION,
        output_price=OUTPUT_PER_MILLION,
        dear_output_price=DEAR_OUTPUT_PER_MILLION,
        image_price=IMAGE_PRICE,
    )


def _unused_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class AccountsHarness(LoopGateway):
    """A fake upstream, a fake moderation upstream and one gateway, on a loop thread."""

    def __init__(self, tmp_dir: Path, *, in_process: bool, flush: float = 0.05) -> None:
        self.flush = flush
        self.upstream = FakeOpenAIUpstream(api_key=UPSTREAM_KEY, native_responses=True)
        self.moderations = FakeModerations()
        super().__init__(tmp_dir, in_process=in_process, upstreams=(self.upstream, self.moderations))
        self.config_path = tmp_dir / "siraya.yaml"

    def start(self, *, gateway: bool = True) -> Self:
        """Start the fake upstreams, and the gateway unless `gateway` is False (for replica tests)."""
        self._thread.start()
        self.run(self._start_upstreams())
        self.config_path.write_text(self.config())
        if gateway:
            self.start_gateway()
        return self

    def config(self, *, database_url: str | None = None, redis_url: str | None = None) -> str:
        return render_config(
            self.tmp_dir / "data",
            self.upstream.base_url,
            self.moderations.base_url,
            database_url=database_url,
            redis_url=redis_url,
            flush=self.flush,
        )

    def start_gateway(self) -> None:
        config = load_config(self.config_path)
        self.running = self.run(start_gateway(config, in_process=self.in_process))

    def stop_gateway(self) -> None:
        if self.running is not None:
            self.run(self.running.stop())
            self.running = None

    def create_key(self, name: str = "test", **spec: Any) -> tuple[str, str]:
        """(key id, secret), straight through the gateway's KeyManager."""
        assert self.running is not None
        record, secret = self.run(self.running.gateway.keys.create(NewKey(name=name, **spec)))
        return record.id, secret


_LISTENING = re.compile(r"REST on (http://\S+/v1)")


class GatewayProcess:
    """`python -m server serve` in a child process; `stop()` sends SIGTERM (a graceful stop)."""

    def __init__(self, config_path: Path) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "server", "--config", str(config_path), "serve"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            cwd=Path(__file__).resolve().parents[2],
        )
        self.base_url = ""
        output: list[str] = []
        assert self.process.stdout is not None
        for line in self.process.stdout:
            output.append(line)
            found = _LISTENING.search(line)
            if found:
                self.base_url = found.group(1)
                break
        if not self.base_url:
            self.process.wait(5)
            raise RuntimeError("gateway process did not start:\n" + "".join(output))
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        assert self.process.stdout is not None
        for _ in self.process.stdout:
            pass

    def ready(self) -> bool:
        return httpx.get(self.base_url.removesuffix("/v1") + "/health/ready", timeout=5).status_code == 200

    def stop(self, timeout: float = 20) -> int:
        self.process.terminate()
        return self.process.wait(timeout)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(10)


@contextmanager
def postgres_replicas(
    upstreams: AccountsHarness, edit: Callable[[str], str] = lambda text: text, count: int = 2
) -> Iterator[tuple[str, list[GatewayProcess]]]:
    """`count` gateway processes on one fresh Postgres database and Redis, in front of `upstreams`'
    fakes (`edit` may change their config text); those still running are stopped afterwards."""
    with temporary_database() as dsn:
        config = upstreams.tmp_dir / "replicas.yaml"
        config.write_text(edit(upstreams.config(database_url=dsn, redis_url=REDIS_URL)))
        gateways = [GatewayProcess(config) for _ in range(count)]
        try:
            yield dsn, gateways
        finally:
            for gateway in gateways:
                if gateway.process.poll() is None:
                    gateway.stop()


def running_accounts(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AccountsHarness]:
    """Body of a module fixture parametrised with "in_process" / "grpc_hop"."""
    running = AccountsHarness(
        tmp_path_factory.mktemp("accounts-" + request.param), in_process=request.param == "in_process"
    )
    running.start()
    yield running
    running.stop()


def sdk(harness: AccountsHarness, secret: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=harness.base_url, api_key=secret, max_retries=0, timeout=20)


def generation(
    harness: AccountsHarness, secret: str, request_id: str, *, wait: float = 10.0
) -> httpx.Response:
    """GET /v1/generation, retried while the record is not there yet (the ledger is written in batches)."""
    deadline = time.monotonic() + wait
    while True:
        response = httpx.get(
            f"{harness.base_url}/generation",
            params={"id": request_id},
            headers={"Authorization": f"Bearer {secret}"},
        )
        if response.status_code != 404 or time.monotonic() > deadline:
            return response
        time.sleep(0.05)


def current_key(harness: AccountsHarness, secret: str) -> dict[str, Any]:
    response = httpx.get(f"{harness.base_url}/key", headers={"Authorization": f"Bearer {secret}"})
    assert response.status_code == 200, response.text
    return response.json()["data"]  # type: ignore[no-any-return]


def admin(method: str, url: str, **kwargs: Any) -> httpx.Response:
    return httpx.request(method, url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=20, **kwargs)
