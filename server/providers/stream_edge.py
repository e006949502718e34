"""What every adapter says when an upstream's event stream fails at its edges, said in one place.

- before the first event: the reply is not an event stream (`require_event_stream`);
- while events flow (`StreamEdge`, around the loop that reads them): the upstream went silent past
  the read timeout or the deadline (a 408, "stalled mid-stream"), the connection broke or the body
  was cut (a 502, "cut the stream short"), or an event's data is not JSON (a 502);
- at its end: the stream stopped before the event that closes it (`ended_early`).

`StreamEdge` is one object entered once per stream, not a layer per chunk: the adapters read the
network in their own loop, and a generator between the socket and the caller costs every chunk.
"""

from __future__ import annotations

from types import TracebackType

import orjson

from server.errors import RequestTimeout, UpstreamError
from server.providers.transport import Reply, TransportError

__all__ = ["StreamEdge", "ended_early", "require_event_stream"]


def require_event_stream(provider: str, reply: Reply) -> None:
    """An UpstreamError unless `reply` is a `text/event-stream`."""
    if "text/event-stream" not in reply.headers.get("Content-Type", ""):
        raise UpstreamError(f"Provider '{provider}' did not answer with an event stream.")


def ended_early(provider: str, closing_event: str) -> UpstreamError:
    """The error for a stream whose body ended before `closing_event` ([DONE], message_stop)."""
    return UpstreamError(f"Provider '{provider}' ended the stream before {closing_event}.")


class StreamEdge:
    """`with StreamEdge(name):` around a stream's read loop maps its failures on the wire (and an
    event that is not JSON) to the gateway's errors; everything else passes through unchanged."""

    __slots__ = ("_provider",)

    def __init__(self, provider: str) -> None:
        self._provider = provider

    def __enter__(self) -> StreamEdge:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if kind is None:
            return
        if issubclass(kind, TimeoutError):
            raise RequestTimeout(f"Provider '{self._provider}' stalled mid-stream.") from None
        if issubclass(kind, TransportError):
            raise UpstreamError(f"Provider '{self._provider}' cut the stream short.") from None
        if issubclass(kind, orjson.JSONDecodeError):
            raise UpstreamError(f"Provider '{self._provider}' sent a malformed stream event.") from None
