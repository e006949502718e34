"""The service stubs the bridge calls: real grpc.aio stubs, or in-process ones of the same shape."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import grpc

from siraya.router.services import SERVICES


@dataclass(frozen=True, slots=True)
class GatewayStubs:
    """One stub per row of siraya.router.services.SERVICES, by its `attribute`."""

    chat: Any
    responses: Any
    embeddings: Any
    images: Any
    models: Any
    videos: Any
    keys: Any
    account: Any
    messages: Any
    usage: Any
    completions: Any
    teams: Any
    # `async (authorization header or None) -> key`, raising AuthenticationFailed: lets the bridge
    # answer 401 before a body error without a gRPC call (the composition root provides it).
    authenticate: Any = None
    # Whether each request is serialized onto a real gRPC channel (the loopback hop), not handed
    # over in process: a request that carries the client's own body then need not carry it twice.
    serialized: bool = False
    # `(authorization header or None) -> None`, raising what KeysService raises for a caller without
    # the admin key (AuthenticationFailed, or PermissionDenied when key administration is off).
    authorize_admin: Any = None


def stubs_for_channel(channel: grpc.aio.Channel) -> GatewayStubs:
    stubs = {contract.attribute: contract.stub(channel) for contract in SERVICES}
    return GatewayStubs(**stubs, serialized=True)
