"""The grpc.aio server: every service, plus standard health and reflection.

Services are registered from the one table, siraya.router.services.SERVICES, through
server.rpc_decoding.SafeDecoding: bytes that are no valid protobuf reach the servicer's decorator and
get INVALID_ARGUMENT in our shape instead of grpc.aio's UNKNOWN with the parser's text.

A request message may be at most `server.max_body_bytes`, the limit REST puts on a body: grpc core
refuses a larger one with RESOURCE_EXHAUSTED before it is read into memory.
"""

from __future__ import annotations

from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from server.gateway import Gateway
from server.rpc_decoding import SafeDecoding
from server.services.admin import AccountServicer, KeysServicer
from server.services.chat import ChatServicer
from server.services.completions import CompletionsServicer
from server.services.embeddings import EmbeddingsServicer
from server.services.images import ImagesServicer
from server.services.messages import MessagesServicer
from server.services.models import ModelsServicer
from server.services.responses import ResponsesServicer
from server.services.teams import TeamsServicer
from server.services.usage import UsageServicer
from server.services.videos import VideosServicer
from server.startup import StartupError
from siraya.router.services import SERVICE_NAMES, SERVICES

# The largest reply the server sends (a request is bounded by `server.max_body_bytes` instead).
MAX_MESSAGE_BYTES = 64 * 1024 * 1024

# The methods that carry model traffic, registered with grpc core; the others (keys, teams, usage,
# models, stored responses...) are found by name through their generic handlers. grpc.aio's server
# keeps one pending request per registered method and wakes on `asyncio.wait` over all of them for
# every call it accepts: with all 44 methods registered that wait cost ~27 us a call against ~18 us
# for 16 (measured), paid by every request; a method served only generically costs more per call,
# which the control plane's rare calls can afford.
CORE_REGISTERED_METHODS = frozenset(
    {
        "siraya.router.v1.ChatService/CreateChatCompletion",
        "siraya.router.v1.ChatService/StreamChatCompletion",
        "siraya.router.v1.ResponsesService/CreateResponse",
        "siraya.router.v1.ResponsesService/StreamResponse",
        "siraya.router.v1.MessagesService/CreateMessage",
        "siraya.router.v1.MessagesService/StreamMessage",
        "siraya.router.v1.CompletionsService/CreateCompletion",
        "siraya.router.v1.CompletionsService/StreamCompletion",
        "siraya.router.v1.EmbeddingsService/CreateEmbedding",
        "siraya.router.v1.ImagesService/GenerateImages",
        "siraya.router.v1.VideosService/CreateVideo",
    }
)


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
        self.messages = MessagesServicer(gateway)
        self.usage = UsageServicer(gateway, admin_key)
        self.completions = CompletionsServicer(gateway)
        self.teams = TeamsServicer(gateway, admin_key)

    def each(self) -> list[Any]:
        """Every servicer, in the order of siraya.router.services.SERVICES."""
        return [getattr(self, contract.attribute) for contract in SERVICES]


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
    # A request that does not decode is INVALID_ARGUMENT, not UNKNOWN with the decoder's text.
    guarded = SafeDecoding(server, CORE_REGISTERED_METHODS)
    for contract, servicer in zip(SERVICES, servicers.each(), strict=True):
        contract.add_to_server(servicer, guarded)
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
