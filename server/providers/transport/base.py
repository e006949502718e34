"""The transport seam: what every outbound HTTP call of the gateway goes through.

Upstream calls (`upstream_http.py`), media fetches (`remote_media.py`) and moderation calls
(`server/accounts/moderation.py`) all hold a `Transport`. A call is a request in (method, URL,
headers, body, deadline, reply limit) and a `Reply` out: its status, its headers and its body as a
stream. Every failure on the wire is one of the errors in `errors.py`, whichever client made the
call; pooling, timeouts, TLS and proxies are the transport's business, not its callers'.

`Http1Client` (http1.py) is the one implementation: the measured-fastest path, and proxies (plain
forwarding and CONNECT tunnels) work in it too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from multidict import CIMultiDictProxy

__all__ = ["BodyStream", "Reply", "Transport"]


class BodyStream(Protocol):
    """A reply's body as it arrives."""

    async def readany(self) -> bytes:
        """What has arrived since the last call, waiting for some; b"" at the body's end."""
        ...

    def iter_chunked(self, size: int) -> AsyncIterator[bytes]:
        """The body in pieces of `size` bytes (the last one shorter)."""
        ...


class Reply(Protocol):
    """An upstream's answer: status and headers at once, the body when it is read."""

    @property
    def status(self) -> int: ...

    @property
    def headers(self) -> CIMultiDictProxy[str]: ...

    @property
    def content(self) -> BodyStream: ...

    @property
    def content_length(self) -> int | None: ...

    async def read(self) -> bytes:
        """The whole body; ReplyTooLarge past the request's `limit`."""
        ...


class Transport(Protocol):
    """Pooled HTTP calls, one error tree."""

    def request(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        data: bytes | list[bytes] | None = None,
        *,
        params: dict[str, str] | None = None,
        deadline: float | None = None,
        limit: int | None = None,
        connect_to: Sequence[str] | None = None,
    ) -> AbstractAsyncContextManager[Reply]:
        """An open reply. Leaving the block early or with an error closes its connection;
        `deadline` (time.monotonic()) bounds every wait; `connect_to` pins the addresses dialled."""
        ...

    async def close(self) -> None:
        """Refuse new calls and close the idle connections."""
        ...
