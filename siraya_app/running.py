"""A started gateway process: what operations (drain, reload, readiness) act on."""

from __future__ import annotations

from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from http_bridge.app import READY
from server.gateway import Gateway
from server.lifecycle import ServingState

# How long `stop` lets HTTP handlers still running finish (aiohttp would wait 60 s).
STOP_SECONDS = 5.0


@dataclass
class RunningGateway:
    """A started gateway; `http_port` and `grpc_port` are the bound ports."""

    gateway: Gateway
    http_port: int
    grpc_port: int
    _stack: AsyncExitStack
    _app: web.Application
    servicers: Any = None
    serving: ServingState = field(default_factory=ServingState)
    # The gRPC health servicer and the names it reports (operations.ReadinessMonitor sets them).
    health: Any = None
    health_services: tuple[str, ...] = ()
    monitor: Any = None
    admin_port: int | None = None

    async def stop(self) -> None:
        """Stop serving now: handlers still running after STOP_SECONDS are cancelled (a graceful
        stop drains first, see `drain`)."""
        self._app[READY][0] = False
        await self._stack.aclose()
