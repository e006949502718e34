"""Wiring: build the core from config, then serve gRPC and the REST bridge in one process."""

from __future__ import annotations

import errno
import logging
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from aiohttp import web

from http_bridge.app import READY, build_app
from http_bridge.stubs import GatewayStubs, stubs_for_channel
from server.accounts.backends import DATABASE_FILE, Accounts, open_accounts
from server.accounts.sqlite_store import SqliteStore
from server.config import GatewayConfig
from server.gateway import Gateway
from server.grpc_server import SERVICE_NAMES, Servicers, build_grpc_server, mark_serving
from server.inprocess import InProcessStub
from server.lifecycle import ServingState, attach
from server.providers.base import Provider
from server.providers.registry import build_provider
from server.routing.catalogue import Catalogue
from server.routing.dispatch import build_dispatcher
from server.startup import StartupError, database_label, ensure_ports_free, port_in_use
from siraya.router.v1 import (
    admin_pb2,
    chat_pb2,
    embeddings_pb2,
    images_pb2,
    models_pb2,
    responses_pb2,
    videos_pb2,
)

logger = logging.getLogger("siraya.server")
# How long `stop` lets HTTP handlers still running finish (aiohttp would wait 60 s).
STOP_SECONDS = 5.0


def open_store(config: GatewayConfig) -> SqliteStore:
    return SqliteStore(Path(config.server.data_dir) / DATABASE_FILE)


async def _open_accounts(config: GatewayConfig) -> Accounts:
    """The accounts backends, or a StartupError naming the database (never its password) and why."""
    try:
        return await open_accounts(config)
    except Exception as error:
        where = database_label(
            config.accounts.database_url, str(Path(config.server.data_dir) / DATABASE_FILE)
        )
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise StartupError(f"cannot open the accounts database {where}: {reason}") from error


async def build_gateway(config: GatewayConfig) -> Gateway:
    accounts = await _open_accounts(config)
    providers: dict[str, Provider] = {}
    try:
        accounts.metering.start()
        for name, provider in config.providers.items():
            providers[name] = build_provider(provider)
        store = open_store(config)
        catalogue = Catalogue(config)
        dispatcher = build_dispatcher(config, providers, catalogue)
    except BaseException:
        # Nothing half-built may outlive a failed start: a model loading on its thread would.
        for built in providers.values():
            await built.close()
        await accounts.metering.close()
        raise
    return Gateway(
        catalogue, providers, accounts.keys, store, metering=accounts.metering, dispatcher=dispatcher
    )


def in_process_stubs(servicers: Servicers) -> GatewayStubs:
    def stub(servicer: object, module: object, service: str) -> InProcessStub:
        return InProcessStub(servicer, module.DESCRIPTOR.services_by_name[service])  # type: ignore[attr-defined]

    return GatewayStubs(
        chat=stub(servicers.chat, chat_pb2, "ChatService"),
        responses=stub(servicers.responses, responses_pb2, "ResponsesService"),
        embeddings=stub(servicers.embeddings, embeddings_pb2, "EmbeddingsService"),
        images=stub(servicers.images, images_pb2, "ImagesService"),
        models=stub(servicers.models, models_pb2, "ModelsService"),
        videos=stub(servicers.videos, videos_pb2, "VideosService"),
        keys=stub(servicers.keys, admin_pb2, "KeysService"),
        account=stub(servicers.account, admin_pb2, "AccountService"),
    )


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

    async def drain(self, grace: float) -> None:
        """SIGTERM's graceful stop: see server/operations.py."""
        from server import operations

        await operations.drain(self, grace)


async def start_gateway(config: GatewayConfig, *, in_process: bool | None = None) -> RunningGateway:
    """Start gRPC and HTTP on the configured host and ports (0 picks free ports).

    A failure (StartupError for a busy port or an unreachable database) leaves nothing running:
    ports are checked before anything is opened, and whatever was started is stopped again.
    """
    server_config = config.server
    ensure_ports_free(
        server_config.host,
        (
            ("HTTP", server_config.http_port, "server.http_port or --port"),
            ("gRPC", server_config.grpc_port, "server.grpc_port or --grpc-port"),
            ("admin", config.observability.admin_port or 0, "observability.admin_port"),
        ),
        reuse_port=server_config.workers > 1,
    )
    stack = AsyncExitStack()
    try:
        return await _start(config, stack, in_process)
    except BaseException:
        await stack.aclose()
        raise


async def _start(config: GatewayConfig, stack: AsyncExitStack, in_process: bool | None) -> RunningGateway:
    gateway = await build_gateway(config)
    serving = ServingState(gateway)
    # Closes whichever gateway is current by then (a reload may have swapped it).
    stack.push_async_callback(serving.close_gateways)
    servicers = Servicers(gateway, admin_key=config.server.admin_key)
    attach(servicers, serving)
    host = config.server.host
    shared_ports = config.server.workers > 1
    server, grpc_port, health_servicer = build_grpc_server(
        servicers, f"{host}:{config.server.grpc_port}", reuse_port=shared_ports
    )
    await server.start()
    await mark_serving(health_servicer)
    stack.push_async_callback(server.stop, 1.0)
    if in_process if in_process is not None else config.server.in_process:
        stubs = in_process_stubs(servicers)
    else:
        channel = grpc.aio.insecure_channel(f"{host}:{grpc_port}")
        stack.push_async_callback(channel.close)
        stubs = stubs_for_channel(channel)
    app = build_app(stubs, config.server.max_body_bytes)
    runner = web.AppRunner(app, handler_cancellation=True, access_log=None, shutdown_timeout=STOP_SECONDS)
    await runner.setup()
    stack.push_async_callback(runner.cleanup)
    site = web.TCPSite(
        runner, host, config.server.http_port, reuse_address=True, reuse_port=shared_ports or None
    )
    try:
        await site.start()
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise port_in_use("HTTP", host, config.server.http_port, "server.http_port or --port") from None
        raise StartupError(f"cannot listen for HTTP on {host}:{config.server.http_port}: {error}") from None
    http_port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    running = RunningGateway(
        gateway, http_port, grpc_port, stack, app, servicers, serving, health_servicer, ("", *SERVICE_NAMES)
    )
    from server.operations import start_operations

    await start_operations(running, config, stack)
    return running


async def serve_forever(
    config: GatewayConfig,
    reload_config: Callable[[], GatewayConfig] | None = None,
    command: str = "siraya-router",
) -> None:
    """Serve until SIGTERM/SIGINT, then drain; SIGHUP reloads from `reload_config` when given.

    `command` is how to run this CLI with the gateway's own --config, for the banner's next steps.
    """
    from server.banner import banner
    from server.operations import configure_process, serve_until_signalled

    configure_process(config)
    running = await start_gateway(config)
    print("\n".join(banner(config, running.http_port, running.grpc_port, command)), flush=True)
    await serve_until_signalled(running, config.server.drain_seconds, reload_config)
