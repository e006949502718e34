"""One provider's transport (a pooled Http1Client, through its proxy if it has one), and the one way
every adapter calls upstream.

The proxy is the provider's `proxy:` setting, else the environment's (`HTTPS_PROXY`, `HTTP_PROXY`,
`NO_PROXY`; transport/proxies.py). Every failure leaves as a GatewayError: the upstream's error
answer through the adapter's own classifier, a failure on the wire (the transport's error tree)
through upstream_errors.transport_error (a timeout as a 408, refused, DNS, TLS, a proxy or a cut
reply each as its own 502), each naming the call tried and no secret. A reply read whole is capped
by the endpoint kind's budget (`limits.reply_bytes_*`): more is a 502, the upstream's failure;
streams are capped per event instead (`limits.sse_event_bytes`).
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager

from server.config import ConfigError, HttpProviderConfig, LimitsConfig
from server.errors import GatewayError, RequestTimeout, UpstreamError
from server.observability.logs import remember_secrets
from server.providers.base import RequestContext
from server.providers.transport import (
    Http1Client,
    ProxyRoutes,
    ProxySettingError,
    Reply,
    ReplyTooLarge,
    TransportError,
    proxy_routes,
)
from server.providers.upstream_errors import call_target, located, transport_error

# (provider name, HTTP status, body, Retry-After, secrets) -> the error the client gets.
ErrorClassifier = Callable[[str, int, bytes, str | None, tuple[str, ...]], GatewayError]


class UpstreamHttp:
    def __init__(
        self,
        config: HttpProviderConfig,
        classify: ErrorClassifier,
        limits: LimitsConfig = LimitsConfig(),  # noqa: B008 - frozen, so sharing the default is safe
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.name = config.name
        self._proxies = provider_proxies(config, os.environ if environ is None else environ)
        self.secrets = tuple(s for s in (config.api_key, *self._proxies.secrets()) if s)
        self._config = config
        self._classify = classify
        self.session: Http1Client | None = None
        self.limits = limits

    def _client(self) -> Http1Client:
        if self.session is None:
            config = self._config
            self.session = Http1Client(
                config.max_connections, config.connect_timeout, config.read_timeout, proxies=self._proxies
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
        data: bytes | list[bytes] | None = None,
        *,
        params: dict[str, str] | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[Reply]:
        """An open response with a status below 400; everything else raises a GatewayError.

        Redirects are never followed: an adapter that wants one follows it itself. `limit` caps the
        bytes `read()` accepts (error bodies included).
        """
        if ctx.deadline is not None and ctx.deadline <= time.monotonic():
            raise RequestTimeout("The request deadline passed before the upstream call.")
        try:
            async with self._client().request(
                method, url, headers, data, params=params, deadline=ctx.deadline, limit=limit
            ) as response:
                if response.status >= 400:
                    raise self._classify(
                        self.name,
                        response.status,
                        await response.read(),
                        response.headers.get("Retry-After"),
                        self.secrets,
                    )
                yield response
        except GatewayError as error:
            located(error, *call_target(method, url))
            raise
        except ReplyTooLarge as error:
            raise UpstreamError(f"Provider '{self.name}' sent {error.args[0]}.") from None
        except (TransportError, TimeoutError) as error:
            target, logged = call_target(method, url)
            deadline_passed = ctx.deadline is not None and ctx.deadline <= time.monotonic()
            if isinstance(error, TimeoutError) and deadline_passed:
                failure: GatewayError = RequestTimeout(
                    f"The request deadline passed while provider '{self.name}' was called [{target}]."
                )
                failure.upstream_url = logged
                raise failure from None
            config = self._config
            raise transport_error(
                self.name, error, target, logged, config.connect_timeout, config.read_timeout
            ) from None


def provider_proxies(config: HttpProviderConfig, environ: Mapping[str, str]) -> ProxyRoutes:
    """The proxies `config`'s calls go through; an unusable setting or variable is a ConfigError.

    No message names a proxy's credentials; the log scrubber also learns its password by value, in
    case a line from elsewhere ever quotes one.
    """
    try:
        routes = proxy_routes(config.proxy, environ)
    except ProxySettingError as error:
        raise ConfigError(f"providers.{config.name}: {error}") from None
    remember_secrets(routes.secrets())
    return routes
