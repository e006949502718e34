"""Running a started gateway in production: readiness, graceful drain, and configuration reload.

- Readiness: config loaded, stores reachable, at least one provider. A monitor re-checks it every
  few seconds and sets both GET /health/ready and the gRPC health service from the one answer.
- Drain (SIGTERM): readiness turns false, new requests get a 503, open requests and streams get up to
  `server.drain_seconds` to finish; streams still open then end with a final SSE error event; the
  servers stop and the gateway closes (which flushes the ledger).
- Reload (SIGHUP): a new gateway is built from the re-read file and swapped in; requests already in
  flight finish on the old one, which closes after them. A bad file is refused, logged, and the old
  configuration stays in force.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from contextlib import AsyncExitStack
from typing import Any

from aiohttp import web
from grpc_health.v1 import health_pb2

from http_bridge.app import READY, live, ready
from http_bridge.observe import BRIDGE_STATE, metrics_handler
from server.build import build_gateway
from server.config import ConfigError, GatewayConfig
from server.lifecycle import swap_gateway
from server.observability import metrics, tracing
from server.observability.logs import configure_logging, remember_secrets
from siraya_app.running import RunningGateway

__all__ = [
    "ReadinessMonitor",
    "config_secrets",
    "configure_process",
    "drain",
    "readiness_problems",
    "reload",
    "serve_until_signalled",
    "start_operations",
]

logger = logging.getLogger("siraya.server")
READINESS_INTERVAL = 2.0
PROBE_TIMEOUT = 2.0
# After the grace, how long cut streams get to write their final error event.
CUT_SECONDS = 5.0


def config_secrets(config: GatewayConfig) -> list[str | None]:
    """Every secret the configuration holds, for the log redactor to know by value."""
    values: list[str | None] = [config.server.admin_key]
    for provider in config.providers.values():
        values.extend(provider.secrets())
    return values


def configure_process(config: GatewayConfig) -> None:
    """Process-wide set-up for serving: redacting JSON logs at the configured level, and tracing."""
    settings = config.observability
    configure_logging(
        settings.log_level,
        settings.log_format,
        access_log=settings.access_log,
        secrets=config_secrets(config),
    )
    if tracing.configure_tracing(settings.tracing, settings.service_name, settings.otlp_endpoint):
        logger.info("tracing on")


async def start_operations(running: RunningGateway, config: GatewayConfig, stack: AsyncExitStack) -> None:
    """Start the readiness monitor and, if configured, the admin port; `stack` stops them."""
    monitor = ReadinessMonitor(running)
    running.monitor = monitor
    await monitor.start()
    stack.push_async_callback(monitor.stop)
    port = config.observability.admin_port
    if port is None:
        return
    admin = web.Application()
    admin[READY] = running._app[READY]
    admin.router.add_get("/metrics", metrics_handler)
    admin.router.add_get("/health/live", live)
    admin.router.add_get("/health/ready", ready)
    runner = web.AppRunner(admin, access_log=None)
    await runner.setup()
    stack.push_async_callback(runner.cleanup)
    site = web.TCPSite(
        runner, config.server.host, port, reuse_address=True, reuse_port=config.server.workers > 1 or None
    )
    await site.start()
    running.admin_port = runner.addresses[0][1]


async def _probe(probe: Callable[[], Any]) -> None:
    result = probe()
    if asyncio.iscoroutine(result):
        await asyncio.wait_for(result, PROBE_TIMEOUT)


def _store_probes(gateway: Any) -> list[tuple[str, Callable[[], Any]]]:
    probes: list[tuple[str, Callable[[], Any]]] = []
    ping = getattr(gateway.metering, "ping", None)
    if ping is not None:
        probes.append(("accounts stores", ping))
    else:
        get_key = getattr(gateway.keys, "get", None)
        if get_key is not None:
            probes.append(("account store", lambda: get_key("key_readiness_probe")))
    store = getattr(gateway, "store", None)
    if store is not None and hasattr(store, "video_job"):
        probes.append(("video job store", lambda: store.video_job("video_readiness_probe")))
    return probes


async def readiness_problems(gateway: Any) -> list[str]:
    """What keeps `gateway` from being ready; empty when it is."""
    problems: list[str] = []
    if not gateway.providers:
        problems.append("no provider is configured")
    for name, probe in _store_probes(gateway):
        try:
            await _probe(probe)
        except Exception as error:  # noqa: BLE001 - any failure means not ready
            problems.append(f"{name} unreachable ({type(error).__name__})")
    return problems


class ReadinessMonitor:
    """Re-checks readiness on a timer and publishes it to HTTP and gRPC health."""

    def __init__(self, running: RunningGateway, interval: float = READINESS_INTERVAL) -> None:
        self._running = running
        self._interval = interval
        self._task: asyncio.Task[None] | None = None
        self._ready: bool | None = None

    async def check(self) -> bool:
        running = self._running
        problems = await readiness_problems(running.gateway)
        ready = not problems and not running.serving.draining
        if ready != self._ready:
            if problems:
                logger.warning("not ready: %s", "; ".join(problems))
            await self.publish(ready)
        return ready

    async def publish(self, ready: bool) -> None:
        self._ready = ready
        self._running._app[READY][0] = ready
        if self._running.health is not None:
            status = (
                health_pb2.HealthCheckResponse.SERVING
                if ready
                else health_pb2.HealthCheckResponse.NOT_SERVING
            )
            for name in self._running.health_services:
                await self._running.health.set(name, status)

    async def start(self) -> None:
        await self.check()
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            if self._running.serving.draining:
                return
            try:
                await self.check()
            except Exception:  # noqa: BLE001 - the monitor must outlive one failed check
                logger.exception("readiness check failed")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


async def _wait_idle(running: RunningGateway, timeout: float) -> bool:
    bridge = running._app[BRIDGE_STATE]
    deadline = asyncio.get_running_loop().time() + timeout
    if not await running.serving.wait_idle(timeout):
        return False
    while bridge.in_flight > 0:
        if asyncio.get_running_loop().time() >= deadline:
            return False
        await asyncio.sleep(0.05)
    return True


async def drain(running: RunningGateway, grace: float) -> None:
    """Stop taking requests, let open ones finish for up to `grace` seconds, then stop everything."""
    running.serving.draining = True
    running._app[BRIDGE_STATE].draining = True
    if running.monitor is not None:
        await running.monitor.stop()
        await running.monitor.publish(False)
    else:
        running._app[READY][0] = False
    logger.info("draining: %d requests in flight, grace %.1fs", running.serving.in_flight, grace)
    if not await _wait_idle(running, grace):
        cut = running.serving.cut_streams()
        logger.warning("drain grace ran out: ending %d open streams with an error event", cut)
        await _wait_idle(running, CUT_SECONDS)
    await running.stop()
    logger.info("stopped")


async def reload(running: RunningGateway, load: Callable[[], GatewayConfig]) -> bool:
    """Swap in a gateway built from `load()`; on any failure keep the current one and return False."""
    try:
        config = load()
        gateway = await build_gateway(config)
    except ConfigError as error:
        problems = "; ".join(error.problems)
        logger.error("configuration reload refused, the old configuration stays in force: %s", problems)
        metrics.record_reload(False)
        return False
    except Exception as error:  # noqa: BLE001 - a reload must never take the serving gateway down
        logger.error("configuration reload failed, the old configuration stays in force: %r", error)
        metrics.record_reload(False)
        return False
    remember_secrets(config_secrets(config))
    old = swap_gateway(running.servicers, running.serving, gateway)
    running.gateway = gateway
    running.serving.retire(old, old.close)
    metrics.record_reload(True)
    logger.info(
        "configuration reloaded from %s: %d providers, %d models",
        config.source,
        len(config.providers),
        len(config.models),
    )
    return True


async def serve_until_signalled(
    running: RunningGateway, grace: float, load: Callable[[], GatewayConfig] | None
) -> None:
    """Serve until SIGTERM or SIGINT, then drain; SIGHUP reloads with `load` when given."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    lock = asyncio.Lock()
    reloads: set[asyncio.Task[bool]] = set()

    async def locked_reload() -> bool:
        async with lock:
            assert load is not None
            return await reload(running, load)

    def on_hup() -> None:
        task = loop.create_task(locked_reload())
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if load is not None:
        loop.add_signal_handler(signal.SIGHUP, on_hup)
    await stop.wait()
    # A second SIGTERM or SIGINT (a supervisor passing on a Ctrl-C the worker already got) must not
    # kill the drain; it is bounded by the grace anyway.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(sig, lambda: None)
    if reloads:
        await asyncio.gather(*reloads, return_exceptions=True)
    await drain(running, grace)
