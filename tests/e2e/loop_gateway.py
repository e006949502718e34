"""The life cycle the e2e harnesses share: one gateway and the fake upstreams it calls, on an event loop
thread of their own, so that synchronous tests (the SDKs, httpx) can drive them."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any, Protocol, Self, TypeVar

from server.accounts.keys import KeyRecord, NewKey
from server.config import load_config
from siraya_app.start import RunningGateway, start_gateway

T = TypeVar("T")


class Upstream(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class LoopGateway:
    """`upstreams` start before the gateway and stop after it; subclasses write `_start`."""

    run_timeout: float = 30

    def __init__(self, tmp_dir: Path, *, in_process: bool, upstreams: Sequence[Upstream] = ()) -> None:
        self.tmp_dir = tmp_dir
        self.in_process = in_process
        self.upstreams = list(upstreams)
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.running: RunningGateway | None = None
        self.api_key = ""

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        wait = self.run_timeout if timeout is None else timeout
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(wait)

    def start(self) -> Self:
        self._thread.start()
        self.run(self._start())
        return self

    async def _start(self) -> None:
        raise NotImplementedError

    async def _start_upstreams(self) -> None:
        for upstream in self.upstreams:
            await upstream.start()

    async def _start_gateway(
        self, config_text: str, env: dict[str, str], key_name: str, *, file_name: str = "siraya.yaml"
    ) -> KeyRecord:
        """Write and load the config, start the gateway, and create `api_key` (its record is returned)."""
        path = self.tmp_dir / file_name
        path.write_text(config_text)
        self.running = await start_gateway(load_config(path, env), in_process=self.in_process)
        record, self.api_key = await self.running.gateway.keys.create(NewKey(name=key_name))
        return record

    @property
    def root_url(self) -> str:
        assert self.running is not None
        return f"http://127.0.0.1:{self.running.http_port}"

    @property
    def base_url(self) -> str:
        return self.root_url + "/v1"

    @property
    def grpc_target(self) -> str:
        assert self.running is not None
        return f"127.0.0.1:{self.running.grpc_port}"

    def stop(self) -> None:
        async def _stop() -> None:
            if self.running is not None:
                await self.running.stop()
            for upstream in self.upstreams:
                await upstream.stop()

        self.run(_stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
