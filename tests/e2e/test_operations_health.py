"""Readiness means config loaded, stores reachable and a provider configured, on HTTP and gRPC alike."""

from __future__ import annotations

from pathlib import Path

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc

from server.config import load_config
from siraya_app.start import RunningGateway, start_gateway
from tests.fakes.openai_upstream import FakeOpenAIUpstream

CHAT_SERVICE = "siraya.router.v1.ChatService"
UPSTREAM_KEY = "sk-upstream-health-0123456789"


async def _start(tmp_path: Path, providers: str, models: str) -> RunningGateway:
    path = tmp_path / "siraya.yaml"
    path.write_text(
        f"""
server: {{host: 127.0.0.1, http_port: 0, grpc_port: 0, data_dir: {tmp_path / "data"}}}
observability: {{admin_port: 0}}
providers: {providers}
models: {models}
"""
    )
    return await start_gateway(load_config(path, {}))


async def _grpc_health(running: RunningGateway, service: str) -> int:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.grpc_port}") as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service)
        )
        return int(reply.status)


async def test_a_gateway_without_providers_is_live_but_not_ready(tmp_path: Path) -> None:
    running = await _start(tmp_path, "{}", "[]")
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{running.http_port}") as client:
            assert (await client.get("/health/live")).status_code == 200
            assert (await client.get("/health/ready")).status_code == 503
        assert await _grpc_health(running, "") == health_pb2.HealthCheckResponse.NOT_SERVING
        assert await _grpc_health(running, CHAT_SERVICE) == health_pb2.HealthCheckResponse.NOT_SERVING
    finally:
        await running.stop()


async def test_ready_on_both_ports_and_grpc_then_not_ready_once_draining(tmp_path: Path) -> None:
    async with FakeOpenAIUpstream(api_key=UPSTREAM_KEY) as upstream:
        running = await _start(
            tmp_path,
            f"{{fake: {{type: openai, base_url: '{upstream.base_url}', api_key: {UPSTREAM_KEY}}}}}",
            "[{id: gpt-test, provider: fake}]",
        )
        try:
            assert running.admin_port
            async with httpx.AsyncClient() as client:
                for port in (running.http_port, running.admin_port):
                    assert (await client.get(f"http://127.0.0.1:{port}/health/ready")).status_code == 200
                admin_metrics = await client.get(f"http://127.0.0.1:{running.admin_port}/metrics")
                assert "siraya_requests_total" in admin_metrics.text
            assert await _grpc_health(running, "") == health_pb2.HealthCheckResponse.SERVING
            assert await _grpc_health(running, CHAT_SERVICE) == health_pb2.HealthCheckResponse.SERVING
            assert running.monitor is not None
            running.serving.draining = True
            assert await running.monitor.check() is False
            async with httpx.AsyncClient() as client:
                for port in (running.http_port, running.admin_port):
                    assert (await client.get(f"http://127.0.0.1:{port}/health/ready")).status_code == 503
            assert await _grpc_health(running, CHAT_SERVICE) == health_pb2.HealthCheckResponse.NOT_SERVING
        finally:
            await running.stop()
