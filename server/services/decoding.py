"""Request bytes that are no valid protobuf become a 400, not grpc.aio's UNKNOWN with the parser's text.

grpc.aio calls a method's `request_deserializer` before the servicer runs, and turns anything it
raises into UNKNOWN with the exception's text (and a logged traceback). So the server registers
each method with `tolerant`'s deserializer instead of the bare `FromString`: it never raises, and
hands bytes it cannot parse to the servicer as an `Undecodable`, which the `unary_rpc` /
`streaming_rpc` decorators answer with INVALID_ARGUMENT in our error shape. The decorators already
see every call, so this costs one isinstance test per request and no extra layer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from server.errors import InvalidRequest

__all__ = ["Undecodable", "tolerant"]


class Undecodable:
    """What a method receives for request bytes that are not a valid `expected` message."""

    __slots__ = ("expected",)

    def __init__(self, expected: str) -> None:
        self.expected = expected

    def error(self) -> InvalidRequest:
        # Generic on purpose: the parser's own text says nothing a client can act on.
        return InvalidRequest(
            f"The request message is not a valid {self.expected} protobuf.", code="invalid_protobuf"
        )


def tolerant(parse: Callable[[bytes], Any], expected: str) -> Callable[[bytes], Any]:
    """`parse`, returning one shared `Undecodable` instead of raising on bytes it cannot read."""
    undecodable = Undecodable(expected)

    def deserialize(data: bytes) -> Any:
        try:
            return parse(data)
        except Exception:  # noqa: BLE001 - DecodeError in practice; whatever it is, the bytes are unreadable
            return undecodable

    return deserialize
