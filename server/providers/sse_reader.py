"""Parse a Server-Sent Events body into (event, data) pairs as bytes arrive.

A stream may be long, but no one event may grow past `max_event_bytes`: an upstream sending an
endless line or event would otherwise have the gateway hold all of it (a 502, the upstream's failure).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from server.errors import UpstreamError

SseEvent = tuple[str | None, bytes]
DEFAULT_MAX_EVENT_BYTES = 16 * 1024 * 1024


class SseParser:
    """Splits SSE bytes into events; `feed` returns the events the bytes completed.

    Synchronous on purpose: an adapter that reads the network itself handles the events of one read
    in a plain loop, with no generator of its own between the socket and its caller.
    """

    __slots__ = ("_event", "_data", "_tail", "_limit")

    def __init__(self, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> None:
        self._event: str | None = None
        self._data: list[bytes] = []
        self._tail = b""
        self._limit = max_event_bytes

    def feed(self, received: bytes) -> list[SseEvent]:
        lines = (self._tail + received if self._tail else received).split(b"\n")
        self._tail = lines.pop()
        events = self._lines(lines)
        # Only an event still open after this read can grow: one read is bounded by the client.
        if (self._data or len(self._tail) > self._limit) and (
            len(self._tail) + sum(map(len, self._data)) > self._limit
        ):
            self._data, self._tail = [], b""
            raise UpstreamError(f"The provider sent a stream event larger than the {self._limit}-byte limit.")
        return events

    def end(self) -> list[SseEvent]:
        """What is left when the body ends: its last event, even without a final blank line."""
        tail, self._tail = self._tail, b""
        return self._lines([tail, b""] if tail else [b""])

    def _lines(self, lines: list[bytes]) -> list[SseEvent]:
        # One loop over a read's lines, no call per line: this runs for every byte of every stream.
        events: list[SseEvent] = []
        event, data = self._event, self._data
        for line in lines:
            if line.endswith(b"\r"):
                line = line[:-1]
            if not line:
                if data:
                    events.append((event, b"\n".join(data)))
                    data = []
                event = None
            elif line.startswith(b"data:"):
                value = line[5:]
                data.append(value[1:] if value.startswith(b" ") else value)
            elif line.startswith(b"event:"):
                event = line[6:].strip().decode()
            # Comments (":" keep-alives), "id:" and "retry:" lines carry nothing we use.
        self._event, self._data = event, data
        return events


class Readable(Protocol):
    async def readany(self) -> bytes: ...


async def read_sse(
    content: Readable, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES
) -> AsyncIterator[SseEvent]:
    """Yield one (event name or None, data) per SSE event; multi-line data is joined by newlines.

    It reads whatever bytes have arrived and splits them itself: one await per network read rather
    than one per line, which matters when an upstream sends many small events in one segment.
    """
    parser = SseParser(max_event_bytes)
    while received := await content.readany():
        for event in parser.feed(received):
            yield event
    for event in parser.end():
        yield event
