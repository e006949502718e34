"""A gRPC request that does not decode is INVALID_ARGUMENT with the gateway's Status, never UNKNOWN.

grpc.aio answers a request whose bytes its deserializer cannot parse with UNKNOWN and the decoder's
own text ("Unexpected <class 'DecodeError'>: Error parsing message ..."). That happens for garbage
bytes, and for well-formed messages nested deeper than protobuf parses (a Struct ~33 JSON levels
deep, issue #20). `SafeDecoding` stands in for the server while the generated `add_*_to_server`
functions register a service: each handler's deserializer hands back UNDECODABLE instead of
raising, and the servicer decorators (`unary_rpc`, `streaming_rpc`) refuse it with `undecodable()`,
a 400 that names no decoder internals.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

import grpc

from server.errors import InvalidRequest

__all__ = ["UNDECODABLE", "SafeDecoding", "undecodable"]


class _Undecodable:
    __slots__ = ()


UNDECODABLE = _Undecodable()


def undecodable() -> InvalidRequest:
    # Generic on purpose: the parser's own text says nothing a client can act on.
    return InvalidRequest(
        "The request message is not a valid protobuf of this method's type, or it nests deeper "
        "than protobuf parses.",
        code="invalid_protobuf",
    )


def _tolerant(deserialize: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    def decode(raw: bytes) -> Any:
        try:
            return deserialize(raw)
        except Exception:  # noqa: BLE001 - DecodeError, RecursionError: the bytes are the client's
            return UNDECODABLE

    return decode


def _guarded(handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    """The handler with a tolerant deserializer: the servicer decorators (server/services/base.py)
    refuse UNDECODABLE, so no extra layer runs per call or per streamed message."""
    return handler._replace(request_deserializer=_tolerant(handler.request_deserializer))


class SafeDecoding:
    """What the generated `add_*Servicer_to_server(servicer, server)` functions register with.

    Every method is served through a generic handler; only those named in `core_registered`
    ("package.Service/Method") are also registered with grpc core (see server/grpc_server.py).
    """

    def __init__(self, server: grpc.aio.Server, core_registered: Collection[str] = ()) -> None:
        self._server = server
        self._core_registered = frozenset(core_registered)

    def add_generic_rpc_handlers(self, handlers: Any) -> None:
        pass  # the same handlers come again, by name, through add_registered_method_handlers

    def add_registered_method_handlers(
        self, service: str, handlers: dict[str, grpc.RpcMethodHandler]
    ) -> None:
        guarded = {name: _guarded(handler) for name, handler in handlers.items()}
        self._server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, guarded),))
        registered = {
            name: handler for name, handler in guarded.items() if f"{service}/{name}" in self._core_registered
        }
        if registered:
            self._server.add_registered_method_handlers(service, registered)
