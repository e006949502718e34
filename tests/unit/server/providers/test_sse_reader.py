"""read_sse: the same events however the bytes are split across network reads."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from aiohttp.base_protocol import BaseProtocol

from server.providers.sse_reader import read_sse

BODY = (
    b": keep-alive comment\n\n"
    b'data: {"a":1}\n\n'
    b"event: response.created\r\n"
    b'data: {"b":2}\r\n\r\n'
    b"id: 7\nretry: 100\n"
    b"data: line one\n"
    b"data:line two\n"
    b"data: \n\n"
    b"event: ping\n\n"
    b"data: [DONE]\n\n"
    b"event: last\n"
    b"data: no blank line at the end"
)
EXPECTED = [
    (None, b'{"a":1}'),
    ("response.created", b'{"b":2}'),
    (None, b"line one\nline two\n"),
    (None, b"[DONE]"),
    ("last", b"no blank line at the end"),
]


class _Transport(asyncio.Transport):
    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def _events(pieces: list[bytes]) -> list[tuple[str | None, bytes]]:
    loop = asyncio.get_running_loop()
    protocol = BaseProtocol(loop)
    protocol.transport = _Transport()
    reader = aiohttp.StreamReader(protocol, 2**16, loop=loop)

    async def feed() -> None:
        for piece in pieces:
            reader.feed_data(piece)
            await asyncio.sleep(0)
        reader.feed_eof()

    feeding = asyncio.create_task(feed())
    events = [event async for event in read_sse(reader)]
    await feeding
    return events


async def test_whole_body_in_one_read() -> None:
    assert await _events([BODY]) == EXPECTED


async def test_one_byte_per_read() -> None:
    assert await _events([BODY[i : i + 1] for i in range(len(BODY))]) == EXPECTED


@pytest.mark.parametrize("cut", [1, 5, 17, 18, 19, 40, 41, 42, 60, 100, len(BODY) - 3])
async def test_split_anywhere(cut: int) -> None:
    assert await _events([BODY[:cut], BODY[cut:]]) == EXPECTED


async def test_empty_body_has_no_events() -> None:
    assert await _events([]) == []
