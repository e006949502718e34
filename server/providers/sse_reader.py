"""Parse a Server-Sent Events body into (event, data) pairs as bytes arrive."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp


async def read_sse(content: aiohttp.StreamReader) -> AsyncIterator[tuple[str | None, bytes]]:
    """Yield one (event name or None, data) per SSE event; multi-line data is joined by newlines.

    It reads whatever bytes have arrived and splits them itself: one await per network read rather
    than one per line, which matters when an upstream sends many small events in one segment.
    """
    event: str | None = None
    data: list[bytes] = []
    tail = b""
    while True:
        received = await content.readany()
        if not received:
            break
        lines = (tail + received if tail else received).split(b"\n")
        tail = lines.pop()
        for line in lines:
            if line.endswith(b"\r"):
                line = line[:-1]
            if not line:
                if data:
                    yield event, b"\n".join(data)
                event, data = None, []
            elif line.startswith(b"data:"):
                value = line[5:]
                data.append(value[1:] if value.startswith(b" ") else value)
            elif line.startswith(b"event:"):
                event = line[6:].strip().decode()
            # Comments (":" keep-alives), "id:" and "retry:" lines carry nothing we use.
    line = tail.rstrip(b"\r")
    if line.startswith(b"data:"):
        value = line[5:]
        data.append(value[1:] if value.startswith(b" ") else value)
    elif line.startswith(b"event:"):
        event = line[6:].strip().decode()
    if data:
        yield event, b"\n".join(data)
