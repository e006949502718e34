"""The six service stubs the bridge calls: real grpc.aio stubs, or in-process ones of the same shape."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import grpc

from siraya.router.v1 import (
    admin_pb2_grpc,
    chat_pb2_grpc,
    embeddings_pb2_grpc,
    images_pb2_grpc,
    models_pb2_grpc,
    responses_pb2_grpc,
    videos_pb2_grpc,
)


@dataclass(frozen=True, slots=True)
class GatewayStubs:
    chat: Any
    responses: Any
    embeddings: Any
    images: Any
    models: Any
    videos: Any
    keys: Any = None
    account: Any = None
    # `async (authorization header or None) -> key`, raising AuthenticationFailed: lets the bridge
    # answer 401 before a body error without a gRPC call (the composition root provides it).
    authenticate: Any = None


def stubs_for_channel(channel: grpc.aio.Channel) -> GatewayStubs:
    return GatewayStubs(
        chat=chat_pb2_grpc.ChatServiceStub(channel),
        responses=responses_pb2_grpc.ResponsesServiceStub(channel),
        embeddings=embeddings_pb2_grpc.EmbeddingsServiceStub(channel),
        images=images_pb2_grpc.ImagesServiceStub(channel),
        models=models_pb2_grpc.ModelsServiceStub(channel),
        videos=videos_pb2_grpc.VideosServiceStub(channel),
        keys=admin_pb2_grpc.KeysServiceStub(channel),
        account=admin_pb2_grpc.AccountServiceStub(channel),
    )
