"""The life cycle the fake upstreams share: an aiohttp app on 127.0.0.1 and a free port."""

from __future__ import annotations

import ssl
from typing import Any, Self

from aiohttp import web


class LoopbackServer:
    """Subclasses build the app; `base_url` is the server's root followed by `api_prefix`.

    Set `tls` before `start()` to serve https (and `host_name` to the name its certificate covers,
    for `base_url`); the server listens on 127.0.0.1 either way.
    """

    api_prefix = ""

    def __init__(self) -> None:
        self.port = 0
        self.base_url = ""
        self.tls: ssl.SSLContext | None = None
        self.host_name = "127.0.0.1"
        self._runner: web.AppRunner | None = None

    def _build_app(self) -> web.Application:
        raise NotImplementedError

    async def start(self) -> None:
        # handler_cancellation: a client that goes away cancels its handler, as behind a real LB.
        self._runner = web.AppRunner(
            self._build_app(), handler_cancellation=True, shutdown_timeout=0.1, access_log=None
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=self.tls)
        await site.start()
        self.port = self._runner.addresses[0][1]
        scheme = "https" if self.tls is not None else "http"
        self.base_url = f"{scheme}://{self.host_name}:{self.port}{self.api_prefix}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.stop()
