"""Fixtures: one gateway per mode (in-process stub, and the loopback gRPC hop) for the e2e suite."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

from tests.e2e.clients_harness import ClientsGatewayHarness
from tests.e2e.harness import GatewayHarness


@pytest.fixture(scope="session", params=["in_process", "grpc_hop"])
def harness(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayHarness]:
    running = GatewayHarness(tmp_path_factory.mktemp(request.param), in_process=request.param == "in_process")
    running.start()
    yield running
    running.stop()


@pytest.fixture
def client(harness: GatewayHarness) -> openai.OpenAI:
    return openai.OpenAI(base_url=harness.base_url, api_key=harness.api_key, max_retries=0, timeout=20)


@pytest.fixture(scope="session", params=["in_process", "grpc_hop"])
def clients_gateway(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ClientsGatewayHarness]:
    """One gateway in front of the OpenAI-compatible, Anthropic and Gemini fakes, in each mode."""
    running = ClientsGatewayHarness(
        tmp_path_factory.mktemp(f"clients-{request.param}"), in_process=request.param == "in_process"
    )
    running.start()
    yield running
    running.stop()
