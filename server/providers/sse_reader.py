"""Parse a Server-Sent Events body into (event, data) pairs as bytes arrive."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp


async def read_sse(content: aiohttp.StreamReader) -> AsyncIterator[tuple[str | None, bytes]]:
    """Yield one (event name or None, data) per SSE event; multi-line data is joined by newlines."""
    event: str | None = None
    data: list[bytes] = []
    async for raw_line in content:
        line = raw_line.rstrip(b"\r\n")
        if not line:
            if data:
                yield event, b"\n".join(data)
            event, data = None, []
            continue
        if line.startswith(b"data:"):
            value = line[5:]
            data.append(value[1:] if value.startswith(b" ") else value)
        elif line.startswith(b"event:"):
            event = line[6:].strip().decode()
        # Comments (":" keep-alives), "id:" and "retry:" lines carry nothing we use.
    if data:
        yield event, b"\n".join(data)
