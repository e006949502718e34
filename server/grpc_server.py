"""The grpc.aio server: every service, plus standard health and reflection.

Services are registered from their descriptors (the table `SERVICES`), not with the generated
`add_*_to_server` functions, for one reason: each method's request deserializer is wrapped by
`server.services.decoding.tolerant`, so bytes that are no valid protobuf reach the servicer's
decorator and get INVALID_ARGUMENT in our shape instead of grpc.aio's UNKNOWN with the parser's text.

A request message may be at most `server.max_body_bytes`, the limit REST puts on a body: grpc core
refuses a larger one with RESOURCE_EXHAUSTED before it is read into memory.
"""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from google.protobuf.message_factory import GetMessageClass
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from server.gateway import Gateway
from server.services.admin import AccountServicer, KeysServicer
from server.services.chat import ChatServicer
from server.services.decoding import tolerant
from server.services.embeddings import EmbeddingsServicer
from server.services.images import ImagesServicer
from server.services.models import ModelsServicer
from server.services.responses import ResponsesServicer
from server.services.videos import VideosServicer
from siraya.router.v1 import (
    admin_pb2,
    chat_pb2,
    embeddings_pb2,
    images_pb2,
    models_pb2,
    responses_pb2,
    videos_pb2,
)

# The largest reply the server sends (a request is bounded by `server.max_body_bytes` instead).
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


# (servicer attribute of `Servicers`, the service's descriptor): what the server registers.
SERVICES: tuple[tuple[str, ServiceDescriptor], ...] = (
    ("chat", chat_pb2.DESCRIPTOR.services_by_name["ChatService"]),
    ("responses", responses_pb2.DESCRIPTOR.services_by_name["ResponsesService"]),
    ("embeddings", embeddings_pb2.DESCRIPTOR.services_by_name["EmbeddingsService"]),
    ("images", images_pb2.DESCRIPTOR.services_by_name["ImagesService"]),
    ("models", models_pb2.DESCRIPTOR.services_by_name["ModelsService"]),
    ("videos", videos_pb2.DESCRIPTOR.services_by_name["VideosService"]),
    ("keys", admin_pb2.DESCRIPTOR.services_by_name["KeysService"]),
    ("account", admin_pb2.DESCRIPTOR.services_by_name["AccountService"]),
)
SERVICE_NAMES = tuple(service.full_name for _, service in SERVICES)


def _method_handler(servicer: Any, method: MethodDescriptor) -> grpc.RpcMethodHandler:
    request_class = GetMessageClass(method.input_type)
    serialize = GetMessageClass(method.output_type).SerializeToString
    deserialize = tolerant(request_class.FromString, method.input_type.full_name)
    behaviour = getattr(servicer, method.name)
    if method.client_streaming:
        raise TypeError(f"{method.full_name}: client-streaming methods are not served")
    if method.server_streaming:
        return grpc.unary_stream_rpc_method_handler(
            behaviour, request_deserializer=deserialize, response_serializer=serialize
        )
    return grpc.unary_unary_rpc_method_handler(
        behaviour, request_deserializer=deserialize, response_serializer=serialize
    )


def add_services(servicers: Servicers, server: grpc.aio.Server) -> None:
    """Register every service of `SERVICES` on `server`, as the generated `add_*` would, but with
    deserializers that never raise (see the module docstring)."""
    for attribute, service in SERVICES:
        servicer = getattr(servicers, attribute)
        handlers = {method.name: _method_handler(servicer, method) for method in service.methods}
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service.full_name, handlers),))
        server.add_registered_method_handlers(service.full_name, handlers)


def build_grpc_server(
    servicers: Servicers,
    address: str,
    *,
    reuse_port: bool = False,
    max_request_bytes: int,
) -> tuple[grpc.aio.Server, int, health.aio.HealthServicer]:
    """A server bound to `address` (host:port; port 0 picks one); returns it with the bound port.

    `reuse_port` lets worker processes share the port; off, a second server on it fails to start.
    `max_request_bytes` is the largest request message accepted: the gateway passes
    `server.max_body_bytes`, so gRPC callers get the limit REST callers do.
    """
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", max_request_bytes),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.so_reuseport", 1 if reuse_port else 0),
        ]
    )
    add_services(servicers, server)
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
