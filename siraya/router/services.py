"""The gateway's gRPC services: the one table that registration, reflection, health and every stub read.

Adding a service is one row here, its servicer in server/services/, and a field of the same name on
http_bridge.stubs.GatewayStubs and server.grpc_server.Servicers (tests check that all three agree).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import grpc
from google.protobuf.descriptor import ServiceDescriptor

from siraya.router.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    chat_pb2,
    chat_pb2_grpc,
    completions_pb2,
    completions_pb2_grpc,
    embeddings_pb2,
    embeddings_pb2_grpc,
    images_pb2,
    images_pb2_grpc,
    messages_pb2,
    messages_pb2_grpc,
    models_pb2,
    models_pb2_grpc,
    responses_pb2,
    responses_pb2_grpc,
    videos_pb2,
    videos_pb2_grpc,
)

__all__ = ["SERVICES", "SERVICE_NAMES", "ServiceContract"]


@dataclass(frozen=True, slots=True)
class ServiceContract:
    """One service: the name it goes by on the servicer and stub sets, and its generated code."""

    attribute: str
    descriptor: ServiceDescriptor
    stub: Callable[[grpc.aio.Channel], Any]
    add_to_server: Callable[[Any, grpc.aio.Server], None]

    @property
    def full_name(self) -> str:
        return self.descriptor.full_name


def _contract(attribute: str, messages: ModuleType, services: ModuleType, name: str) -> ServiceContract:
    return ServiceContract(
        attribute,
        messages.DESCRIPTOR.services_by_name[name],
        getattr(services, f"{name}Stub"),
        getattr(services, f"add_{name}Servicer_to_server"),
    )


SERVICES: tuple[ServiceContract, ...] = (
    _contract("chat", chat_pb2, chat_pb2_grpc, "ChatService"),
    _contract("responses", responses_pb2, responses_pb2_grpc, "ResponsesService"),
    _contract("embeddings", embeddings_pb2, embeddings_pb2_grpc, "EmbeddingsService"),
    _contract("images", images_pb2, images_pb2_grpc, "ImagesService"),
    _contract("models", models_pb2, models_pb2_grpc, "ModelsService"),
    _contract("videos", videos_pb2, videos_pb2_grpc, "VideosService"),
    _contract("keys", admin_pb2, admin_pb2_grpc, "KeysService"),
    _contract("account", admin_pb2, admin_pb2_grpc, "AccountService"),
    _contract("messages", messages_pb2, messages_pb2_grpc, "MessagesService"),
    _contract("usage", admin_pb2, admin_pb2_grpc, "UsageService"),
    _contract("completions", completions_pb2, completions_pb2_grpc, "CompletionsService"),
    _contract("teams", admin_pb2, admin_pb2_grpc, "TeamsService"),
)
SERVICE_NAMES: tuple[str, ...] = tuple(contract.full_name for contract in SERVICES)
