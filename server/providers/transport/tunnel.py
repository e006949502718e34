"""A CONNECT tunnel through an HTTP proxy: the TCP connection to the proxy, the proxy's answer, and
the connection handed over to the protocol that speaks through it (with TLS started on it for an
https upstream).

The proxy's answer is read up to its blank line and no further: a 2xx opens the tunnel, anything
else is a ProxyError naming the proxy and its status (407: it wants credentials, or refused them).
"""

from __future__ import annotations

import asyncio
import ssl

from server.providers.transport.errors import ConnectError, ProxyError
from server.providers.transport.proxies import Proxy

__all__ = ["open_tunnel"]

# A proxy's answer to CONNECT is a status line and a few headers.
_MAX_HEAD_BYTES = 16 * 1024


class _ProxyAnswer(asyncio.Protocol):
    """Collects the proxy's answer to CONNECT (up to its blank line, and whatever came with it); the
    caller then gives the transport to another protocol."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.head: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._buffer = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.head.done():
            return
        self._buffer += data
        end = self._buffer.find(b"\r\n\r\n")
        if end != -1:
            self.head.set_result(bytes(self._buffer))
        elif len(self._buffer) > _MAX_HEAD_BYTES:
            self.head.set_exception(ConnectionError("the proxy's answer has no end"))

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.head.done():
            self.head.set_exception(exc or ConnectionError("the proxy closed the connection"))


def _status(head: bytes) -> int:
    parts = head.split(b"\r\n", 1)[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        return 0
    return int(parts[1])


async def open_tunnel(
    proxy: Proxy,
    authority: str,
    protocol: asyncio.Protocol,
    tls: ssl.SSLContext | None,
    server_hostname: str,
) -> asyncio.Transport:
    """A transport to `authority` (`host:port`) through `proxy`, already attached to `protocol`.

    With `tls`, the TLS handshake runs inside the tunnel and verifies `server_hostname`, so the
    proxy carries bytes it cannot read. The caller bounds the time all this takes.
    """
    loop = asyncio.get_running_loop()
    try:
        transport, answer = await loop.create_connection(_ProxyAnswer, proxy.host, proxy.port)
    except OSError as error:
        raise ProxyError(proxy.shown, f"could not be connected to ({type(error).__name__})") from error
    try:
        lines = [f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n"]
        if proxy.authorization is not None:
            lines.append(f"Proxy-Authorization: {proxy.authorization}\r\n")
        lines.append("\r\n")
        transport.write("".join(lines).encode("latin-1"))
        try:
            received = await answer.head
        except OSError as error:
            raise ProxyError(proxy.shown, "closed the connection instead of opening a tunnel") from error
        head, _, past_head = received.partition(b"\r\n\r\n")
        status = _status(head)
        if status == 407:
            raise ProxyError(proxy.shown, "asked for credentials, or refused the ones given (HTTP 407)", 407)
        if not 200 <= status < 300:
            shown = f"HTTP {status}" if status else "not an HTTP answer"
            raise ProxyError(
                proxy.shown, f"would not open a tunnel to the upstream ({shown})", status or None
            )
        if past_head:
            # Bytes before we spoke through the tunnel: no upstream speaks first.
            raise ProxyError(proxy.shown, "sent bytes past its answer to CONNECT")
        if tls is None:
            transport.set_protocol(protocol)
            protocol.connection_made(transport)
            return transport
        try:
            secured = await loop.start_tls(transport, protocol, tls, server_hostname=server_hostname)
        except (OSError, ssl.SSLError) as error:
            raise ConnectError(f"TLS through the proxy failed: {type(error).__name__}") from error
        if secured is None:
            raise ConnectError("TLS through the proxy failed: the connection closed")
        protocol.connection_made(secured)
        return secured  # type: ignore[return-value]
    except BaseException:
        transport.close()
        raise
