"""A small HTTP proxy on loopback that notes what it relayed: CONNECT tunnels and absolute-form
requests, with optional Basic credentials.

It is a real proxy over real sockets, so a test can prove that a call went through it (the
`tunnels`, `forwarded` and `authorizations` it noted, and the bytes it carried each way) and that a
call it should not see did not. An absolute-form request is forwarded in origin form with
`Connection: close` and answered the same way: one request per client connection, which is all a
proxy owes a client. A tunnel relays bytes both ways until either side closes.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from dataclasses import dataclass, field
from typing import Self
from urllib.parse import urlsplit

__all__ = ["LoopbackProxy"]

_HOP_BY_HOP = frozenset({b"proxy-authorization", b"proxy-connection", b"connection", b"keep-alive"})


@dataclass
class _Seen:
    tunnels: list[str] = field(default_factory=list)
    forwarded: list[str] = field(default_factory=list)
    authorizations: list[str | None] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    bytes_up: int = 0
    bytes_down: int = 0


class LoopbackProxy:
    """Start with `async with` (or start()/stop()); `url` is `http://127.0.0.1:<port>`."""

    def __init__(self, credentials: tuple[str, str] | None = None) -> None:
        self._expected = (
            None
            if credentials is None
            else "Basic " + base64.b64encode(":".join(credentials).encode()).decode()
        )
        self.seen = _Seen()
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def calls(self) -> int:
        return len(self.seen.tunnels) + len(self.seen.forwarded)

    def reset(self) -> None:
        self.seen = _Seen()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        try:
            await self._handle(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            self._tasks.discard(task)
            self._writers.discard(writer)
            writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        request_line, *lines = head[:-4].split(b"\r\n")
        method, target, _version = request_line.decode("latin-1").split(" ", 2)
        headers = [line.split(b":", 1) for line in lines]
        authorization = next(
            (
                value.strip().decode("latin-1")
                for name, value in headers
                if name.strip().lower() == b"proxy-authorization"
            ),
            None,
        )
        self.seen.authorizations.append(authorization)
        if self._expected is not None and authorization != self._expected:
            self.seen.refused.append(target)
            writer.write(
                b'HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="test"\r\n'
                b"Content-Length: 13\r\nConnection: close\r\n\r\nlog in first."
            )
            await writer.drain()
            return
        if method == "CONNECT":
            self.seen.tunnels.append(target)
            host, _, port = target.rpartition(":")
            upstream_reader, upstream_writer = await asyncio.open_connection(host.strip("[]"), int(port))
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await writer.drain()
            await self._relay(reader, writer, upstream_reader, upstream_writer)
            return
        self.seen.forwarded.append(target)
        parts = urlsplit(target)
        assert parts.scheme == "http" and parts.hostname, f"not an absolute-form target: {target}"
        length = 0
        kept = []
        for name, value in headers:
            if name.strip().lower() == b"content-length":
                length = int(value)
            if name.strip().lower() not in _HOP_BY_HOP:
                kept.append(name + b":" + value)
        body = await reader.readexactly(length) if length else b""
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        upstream_reader, upstream_writer = await asyncio.open_connection(parts.hostname, parts.port or 80)
        upstream_writer.write(
            f"{method} {path} HTTP/1.1\r\n".encode()
            + b"\r\n".join(kept)
            + b"\r\nConnection: close\r\n\r\n"
            + body
        )
        self.seen.bytes_up += len(head) + len(body)
        # The answer's head gets `Connection: close`: this proxy serves one request per connection.
        answer = await upstream_reader.readuntil(b"\r\n\r\n")
        status_line, *answer_lines = answer[:-4].split(b"\r\n")
        kept_answer = [
            line for line in answer_lines if line.split(b":", 1)[0].strip().lower() != b"connection"
        ]
        writer.write(b"\r\n".join([status_line, *kept_answer, b"Connection: close"]) + b"\r\n\r\n")
        self.seen.bytes_down += len(answer)
        await self._pump(upstream_reader, writer, down=True)
        upstream_writer.close()

    async def _relay(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        upstream_reader: asyncio.StreamReader,
        upstream_writer: asyncio.StreamWriter,
    ) -> None:
        up = asyncio.ensure_future(self._pump(reader, upstream_writer, down=False))
        down = asyncio.ensure_future(self._pump(upstream_reader, writer, down=True))
        try:
            await asyncio.wait({up, down}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            up.cancel()
            down.cancel()
            await asyncio.gather(up, down, return_exceptions=True)
            upstream_writer.close()

    async def _pump(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter, *, down: bool) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await source.read(65536):
                if down:
                    self.seen.bytes_down += len(data)
                else:
                    self.seen.bytes_up += len(data)
                sink.write(data)
                await sink.drain()
