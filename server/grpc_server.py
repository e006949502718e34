"""The grpc.aio server: every service, plus standard health and reflection."""

from __future__ import annotations

from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from server.gateway import Gateway
from server.services.admin import AccountServicer, KeysServicer
from server.services.chat import ChatServicer
from server.services.embeddings import EmbeddingsServicer
from server.services.images import ImagesServicer
from server.services.models import ModelsServicer
from server.services.responses import ResponsesServicer
from server.services.usage import UsageServicer
from server.services.videos import VideosServicer
from siraya.router.services import SERVICE_NAMES, SERVICES

MAX_MESSAGE_BYTES = 64 * 1024 * 1024


class Servicers:
    """One instance of every servicer, shared by the gRPC server and the in-process stubs."""

    def __init__(self, gateway: Gateway, *, admin_key: str | None = None) -> None:
        self.keys = KeysServicer(gateway, admin_key)
        self.account = AccountServicer(gateway)
        self.chat = ChatServicer(gateway)
        self.responses = ResponsesServicer(gateway)
        self.embeddings = EmbeddingsServicer(gateway)
        self.images = ImagesServicer(gateway)
        self.models = ModelsServicer(gateway, admin_key)
        self.videos = VideosServicer(gateway)
        self.usage = UsageServicer(gateway, admin_key)

    def each(self) -> list[Any]:
        """Every servicer, in the order of siraya.router.services.SERVICES."""
        return [getattr(self, contract.attribute) for contract in SERVICES]


def build_grpc_server(
    servicers: Servicers, address: str, *, reuse_port: bool = False
) -> tuple[grpc.aio.Server, int, health.aio.HealthServicer]:
    """A server bound to `address` (host:port; port 0 picks one); returns it with the bound port.

    `reuse_port` lets worker processes share the port; off, a second server on it fails to start.
    """
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.so_reuseport", 1 if reuse_port else 0),
        ]
    )
    for contract, servicer in zip(SERVICES, servicers.each(), strict=True):
        contract.add_to_server(servicer, server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    port = server.add_insecure_port(address)
    if port == 0:
        raise OSError(f"cannot bind the gRPC server to {address}")
    return server, port, health_servicer


async def mark_serving(health_servicer: health.aio.HealthServicer) -> None:
    for name in ("", *SERVICE_NAMES):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
