"""One provider's pooled HTTP session, and the one way every adapter sends a request upstream.

Every failure leaves as a GatewayError: the upstream's error answer through the adapter's own
classifier, a timeout as a 408, anything else on the wire as a 502 that names no secret.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp

from server.config import ProviderConfig
from server.errors import GatewayError, RequestTimeout, UpstreamError
from server.providers.base import RequestContext

# (provider name, HTTP status, body, Retry-After, secrets) -> the error the client gets.
ErrorClassifier = Callable[[str, int, bytes, str | None, tuple[str, ...]], GatewayError]


def deadline_timeout(ctx: RequestContext) -> aiohttp.ClientTimeout | None:
    """What is left of the request's deadline, as one call's total timeout."""
    if ctx.deadline is None:
        return None
    remaining = ctx.deadline - time.monotonic()
    if remaining <= 0:
        raise RequestTimeout("The request deadline passed before the upstream call.")
    return aiohttp.ClientTimeout(total=remaining)


class UpstreamHttp:
    def __init__(self, config: ProviderConfig, classify: ErrorClassifier) -> None:
        self.name = config.name
        self.secrets = tuple(s for s in (config.api_key,) if s)
        self._config = config
        self._classify = classify
        self.session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self.session is None:
            config = self._config
            self.session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=config.max_connections, ttl_dns_cache=300),
                timeout=aiohttp.ClientTimeout(
                    total=None, sock_connect=config.connect_timeout, sock_read=config.read_timeout
                ),
                skip_auto_headers=("User-Agent",),
            )
        return self.session

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()
            self.session = None

    @asynccontextmanager
    async def request(
        self,
        method: str,
        url: str,
        ctx: RequestContext,
        headers: dict[str, str],
        data: bytes | None = None,
        **options: Any,
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """An open response with a status below 400; everything else raises a GatewayError."""
        timeout = deadline_timeout(ctx)
        if timeout is not None:
            options["timeout"] = timeout
        try:
            async with self._client().request(method, url, headers=headers, data=data, **options) as response:
                if response.status >= 400:
                    raise self._classify(
                        self.name,
                        response.status,
                        await response.read(),
                        response.headers.get("Retry-After"),
                        self.secrets,
                    )
                yield response
        except GatewayError:
            raise
        except (TimeoutError, aiohttp.ServerTimeoutError):
            raise RequestTimeout(f"Provider '{self.name}' did not answer in time.") from None
        except (aiohttp.ClientError, OSError) as error:
            raise UpstreamError(
                f"Provider '{self.name}' is unreachable or closed the connection ({type(error).__name__})."
            ) from None
