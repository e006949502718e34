"""The grpc.aio server: every service, plus standard health and reflection."""

from __future__ import annotations

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
from server.services.videos import VideosServicer
from server.startup import StartupError
from siraya.router.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    chat_pb2,
    chat_pb2_grpc,
    embeddings_pb2,
    embeddings_pb2_grpc,
    images_pb2,
    images_pb2_grpc,
    models_pb2,
    models_pb2_grpc,
    responses_pb2,
    responses_pb2_grpc,
    videos_pb2,
    videos_pb2_grpc,
)

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
        self.models = ModelsServicer(gateway)
        self.videos = VideosServicer(gateway)


SERVICE_NAMES = tuple(
    module.DESCRIPTOR.services_by_name[name].full_name
    for module, name in (
        (chat_pb2, "ChatService"),
        (responses_pb2, "ResponsesService"),
        (embeddings_pb2, "EmbeddingsService"),
        (images_pb2, "ImagesService"),
        (models_pb2, "ModelsService"),
        (videos_pb2, "VideosService"),
        (admin_pb2, "KeysService"),
        (admin_pb2, "AccountService"),
    )
)


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
    chat_pb2_grpc.add_ChatServiceServicer_to_server(servicers.chat, server)
    responses_pb2_grpc.add_ResponsesServiceServicer_to_server(servicers.responses, server)
    embeddings_pb2_grpc.add_EmbeddingsServiceServicer_to_server(servicers.embeddings, server)
    images_pb2_grpc.add_ImagesServiceServicer_to_server(servicers.images, server)
    models_pb2_grpc.add_ModelsServiceServicer_to_server(servicers.models, server)
    videos_pb2_grpc.add_VideosServiceServicer_to_server(servicers.videos, server)
    admin_pb2_grpc.add_KeysServiceServicer_to_server(servicers.keys, server)
    admin_pb2_grpc.add_AccountServiceServicer_to_server(servicers.account, server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    try:
        port = server.add_insecure_port(address)
    except RuntimeError:  # grpc's only word for any bind failure; ports were checked free just before
        port = 0
    if port == 0:
        raise StartupError(
            f"cannot listen for gRPC on {address}: the port is in use or the address is not available "
            "(choose another with server.grpc_port or --grpc-port)"
        )
    return server, port, health_servicer


async def mark_serving(health_servicer: health.aio.HealthServicer) -> None:
    for name in ("", *SERVICE_NAMES):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
