"""The composition root: build the core from config, then serve gRPC, the REST bridge and operations
in one process. The only package that imports both `server` and `http_bridge`."""

from __future__ import annotations

import errno
import logging
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import replace
from pathlib import Path
from typing import Any

import grpc
from aiohttp import web

from http_bridge.app import build_app
from http_bridge.console import console_options
from http_bridge.edge import EdgeAppRunner, EdgeSettings
from http_bridge.stubs import GatewayStubs, stubs_for_channel
from server.build import build_gateway
from server.config import GatewayConfig, ServerConfig
from server.grpc_server import MAX_MESSAGE_BYTES, Servicers, build_grpc_server, mark_serving
from server.inprocess import InProcessStub
from server.lifecycle import ServingState, attach
from server.startup import StartupError, ensure_ports_free, port_in_use
from siraya.router.services import SERVICE_NAMES, SERVICES
from siraya_app.operations import configure_process, serve_until_signalled, start_operations
from siraya_app.running import STOP_SECONDS, RunningGateway

__all__ = ["RunningGateway", "build_gateway", "in_process_stubs", "serve_forever", "start_gateway"]

logger = logging.getLogger("siraya.server")


def in_process_stubs(servicers: Servicers) -> GatewayStubs:
    stubs: dict[str, Any] = {
        contract.attribute: InProcessStub(servicer, contract.descriptor)
        for contract, servicer in zip(SERVICES, servicers.each(), strict=True)
    }
    return GatewayStubs(**stubs)


def edge_settings(server: ServerConfig) -> EdgeSettings:
    return EdgeSettings(
        header_timeout=server.header_timeout,
        body_timeout=server.body_timeout,
        keepalive_timeout=server.keepalive_timeout,
        max_connections=server.max_connections,
        max_header_bytes=server.max_header_bytes,
        max_headers=server.max_headers,
    )


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
        servicers,
        f"{host}:{config.server.grpc_port}",
        reuse_port=shared_ports,
        max_request_bytes=config.server.max_body_bytes,
    )
    await server.start()
    await mark_serving(health_servicer)
    stack.push_async_callback(server.stop, 1.0)
    if in_process if in_process is not None else config.server.in_process:
        stubs = in_process_stubs(servicers)
    else:
        # Replies as large as the server sends (grpc's 4 MiB default would refuse a big completion).
        channel = grpc.aio.insecure_channel(
            f"{host}:{grpc_port}", options=[("grpc.max_receive_message_length", MAX_MESSAGE_BYTES)]
        )
        stack.push_async_callback(channel.close)
        stubs = stubs_for_channel(channel)

    async def authenticate(authorization: str | None) -> object:
        # The gateway serving now (a reload swaps it); used by the bridge only to answer a request it
        # refuses anyway, so the gRPC hop mode takes this in-process shortcut too.
        return await serving.gateway.authenticate(authorization)

    ui = config.ui
    console = (
        console_options(
            ui.session_secret, Path(config.server.data_dir), ui.session_hours, ui.login_failures_per_minute
        )
        if ui.enabled
        else None
    )
    app = build_app(
        replace(stubs, authenticate=authenticate, authorize_admin=servicers.keys.check_admin),
        config.server.max_body_bytes,
        config.limits.max_json_depth,
        console,
    )
    runner = EdgeAppRunner(
        app,
        edge_settings(config.server),
        handler_cancellation=True,
        access_log=None,
        shutdown_timeout=STOP_SECONDS,
    )
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
    configure_process(config)
    running = await start_gateway(config)
    print("\n".join(banner(config, running.http_port, running.grpc_port, command)), flush=True)
    if config.ui.enabled:
        print(f"Console: http://{config.server.host}:{running.http_port}/", flush=True)
    await serve_until_signalled(running, config.server.drain_seconds, reload_config)
