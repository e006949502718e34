"""Proxies behind the transport seam: which calls take which proxy (environment, `proxy:`,
NO_PROXY), and Http1Client through a real proxy on loopback (tests/fakes/http_proxy.py): plain http
upstreams in absolute form, https upstreams through a CONNECT tunnel with TLS end to end, pinned
addresses tunnelled by address, and every way a proxy can fail, each a ProxyError that never holds
the proxy's credentials.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from server.config import OpenAIProviderConfig
from server.errors import RequestTimeout, UpstreamError
from server.providers.base import RequestContext
from server.providers.transport import (
    ConnectError,
    Http1Client,
    ProxyError,
    ProxyRoutes,
    ProxySettingError,
    proxy_routes,
)
from server.providers.transport.proxies import parse_proxy_url
from server.providers.upstream_errors import classify_http_error
from server.providers.upstream_http import UpstreamHttp
from tests.fakes.http_proxy import LoopbackProxy
from tests.fakes.tls import LoopbackCertificates, make_certificates

pytestmark = pytest.mark.timeout(20)

PASSWORD = "pr0xy-s3cret-pass"
CREDENTIALS = ("alice", PASSWORD)


# -- which proxy a call takes -------------------------------------------------------------------


def test_environment_proxies_by_scheme_lower_case_first() -> None:
    routes = proxy_routes(
        None,
        {
            "HTTPS_PROXY": "http://upper:1",
            "https_proxy": "http://lower:2",
            "HTTP_PROXY": "plain.example:3128",
        },
    )
    https = routes.proxy_for("https", "api.example.com", 443)
    http = routes.proxy_for("http", "api.example.com", 80)
    assert https is not None and (https.host, https.port) == ("lower", 2)
    assert http is not None and (http.host, http.port) == ("plain.example", 3128)  # no scheme: http://


def test_no_environment_means_no_proxy() -> None:
    routes = proxy_routes(None, {})
    assert not routes.any
    assert routes.proxy_for("https", "api.example.com", 443) is None


@pytest.mark.parametrize(
    ("no_proxy", "host", "port", "direct"),
    [
        ("internal.example", "internal.example", 443, True),
        ("internal.example", "api.internal.example", 443, True),
        (".internal.example", "api.internal.example", 443, True),
        ("*.internal.example", "api.internal.example", 443, True),
        ("internal.example", "notinternal.example", 443, False),
        ("localhost,127.0.0.1", "127.0.0.1", 8000, True),
        ("10.0.0.0/8", "10.1.2.3", 443, True),
        ("10.0.0.0/8", "11.1.2.3", 443, False),
        ("api.example.com:8443", "api.example.com", 8443, True),
        ("api.example.com:8443", "api.example.com", 443, False),
        ("[::1]", "::1", 443, True),
        ("*", "anything.example", 443, True),
        ("", "api.example.com", 443, False),
    ],
)
def test_no_proxy(no_proxy: str, host: str, port: int, direct: bool) -> None:
    routes = proxy_routes(None, {"HTTPS_PROXY": "http://proxy:3128", "no_proxy": no_proxy})
    assert (routes.proxy_for("https", host, port) is None) is direct


def test_a_providers_proxy_replaces_the_environment_and_none_goes_direct() -> None:
    environ = {"HTTPS_PROXY": "http://env-proxy:3128", "NO_PROXY": "api.example.com"}
    own = proxy_routes("http://own-proxy:8080", environ)
    for scheme in ("http", "https"):
        proxy = own.proxy_for(scheme, "api.example.com", 443)  # NO_PROXY is the environment's rule
        assert proxy is not None and (proxy.host, proxy.port) == ("own-proxy", 8080)
    assert proxy_routes("none", environ).proxy_for("https", "elsewhere.example", 443) is None


def test_credentials_become_basic_auth_and_are_never_shown() -> None:
    proxy = parse_proxy_url(f"http://alice:{PASSWORD}@proxy.example:3128")
    assert proxy.authorization == "Basic YWxpY2U6cHIweHktczNjcmV0LXBhc3M="
    for shown in (proxy.shown, str(proxy), repr(proxy), repr(ProxyRoutes(proxy, proxy))):
        assert PASSWORD not in shown and "alice" not in shown
    assert proxy.shown == "http://proxy.example:3128"
    assert parse_proxy_url("http://a%40corp:p%3Ass@proxy.example").authorization is not None
    assert parse_proxy_url("http://proxy.example").port == 80


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (f"socks5://alice:{PASSWORD}@proxy.example:1080", "only http:// proxies"),
        (f"https://alice:{PASSWORD}@proxy.example:443", "only http:// proxies"),
        (f"http://alice:{PASSWORD}@proxy.example:3128/path", "has a path"),
        (f"http://alice:{PASSWORD}@proxy.example:notaport", "not a valid proxy URL"),
        (f"http://alice:{PASSWORD}@:3128", "has no host"),
    ],
)
def test_an_unusable_proxy_is_refused_without_quoting_it(value: str, reason: str) -> None:
    with pytest.raises(ProxySettingError) as raised:
        proxy_routes(None, {"HTTPS_PROXY": value})
    assert reason in str(raised.value) and "HTTPS_PROXY" in str(raised.value)
    assert PASSWORD not in str(raised.value)
    with pytest.raises(ProxySettingError) as raised:
        proxy_routes(value, {})
    assert PASSWORD not in str(raised.value)


# -- Http1Client through a proxy ---------------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> LoopbackCertificates:
    return make_certificates(tmp_path_factory.mktemp("tls"))


class Upstream:
    """An aiohttp upstream that notes each request's path, Host and headers; plain or over TLS."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, dict[str, str]]] = []
        self.port = 0
        self._runner: web.AppRunner | None = None

    async def start(self, tls: LoopbackCertificates | None = None) -> None:
        async def handle(request: web.Request) -> web.Response:
            self.seen.append((request.path_qs, request.headers.get("Host", ""), dict(request.headers)))
            return web.Response(body=b"hello " + await request.read())

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handle)
        self._runner = web.AppRunner(app, shutdown_timeout=0.1, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=tls.server_context() if tls else None)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    running = Upstream()
    await running.start()
    yield running
    await running.stop()


@pytest.fixture
async def tls_upstream(certificates: LoopbackCertificates) -> AsyncIterator[Upstream]:
    running = Upstream()
    await running.start(certificates)
    yield running
    await running.stop()


@pytest.fixture
async def proxy() -> AsyncIterator[LoopbackProxy]:
    async with LoopbackProxy() as running:
        yield running


@pytest.fixture
async def guarded_proxy() -> AsyncIterator[LoopbackProxy]:
    async with LoopbackProxy(credentials=CREDENTIALS) as running:
        yield running


async def post(client: Http1Client, url: str, body: bytes = b"world") -> tuple[int, bytes]:
    async with client.request("POST", url, {"X-Test": "1"}, body) as reply:
        return reply.status, await reply.read()


def through(proxy: LoopbackProxy, credentials: tuple[str, str] | None = None) -> ProxyRoutes:
    user = f"{credentials[0]}:{credentials[1]}@" if credentials else ""
    return proxy_routes(f"http://{user}127.0.0.1:{proxy.port}", {})


async def test_a_plain_http_upstream_is_reached_in_absolute_form(
    upstream: Upstream, guarded_proxy: LoopbackProxy
) -> None:
    client = Http1Client(4, 2.0, 2.0, proxies=through(guarded_proxy, CREDENTIALS))
    try:
        url = f"http://127.0.0.1:{upstream.port}/v1/chat/completions?x=1"
        for _ in range(2):
            assert await post(client, url) == (200, b"hello world")
    finally:
        await client.close()
    assert guarded_proxy.seen.forwarded == [url, url]
    assert guarded_proxy.seen.tunnels == []
    assert guarded_proxy.seen.authorizations == ["Basic YWxpY2U6cHIweHktczNjcmV0LXBhc3M="] * 2
    assert [(path, host) for path, host, _ in upstream.seen] == [
        ("/v1/chat/completions?x=1", f"127.0.0.1:{upstream.port}")
    ] * 2
    assert all(headers["X-Test"] == "1" for _, _, headers in upstream.seen)


async def test_an_https_upstream_is_reached_through_a_connect_tunnel_with_tls_end_to_end(
    tls_upstream: Upstream, guarded_proxy: LoopbackProxy, certificates: LoopbackCertificates
) -> None:
    client = Http1Client(
        4, 2.0, 2.0, proxies=through(guarded_proxy, CREDENTIALS), tls=certificates.client_context()
    )
    try:
        for _ in range(3):
            assert await post(client, f"https://localhost:{tls_upstream.port}/v1/messages") == (
                200,
                b"hello world",
            )
    finally:
        await client.close()
    # One tunnel, kept alive and reused: the pool works through a proxy as it does direct.
    assert guarded_proxy.seen.tunnels == [f"localhost:{tls_upstream.port}"]
    assert guarded_proxy.seen.forwarded == []
    assert [(path, host) for path, host, _ in tls_upstream.seen] == [
        ("/v1/messages", f"localhost:{tls_upstream.port}")
    ] * 3
    # The proxy carried the bytes and never saw the request in the clear.
    assert guarded_proxy.seen.bytes_up > 0 and guarded_proxy.seen.bytes_down > 0


async def test_the_upstreams_certificate_is_still_verified_through_the_tunnel(
    tls_upstream: Upstream, proxy: LoopbackProxy
) -> None:
    client = Http1Client(4, 2.0, 2.0, proxies=through(proxy))  # the system's trust: not our test CA
    try:
        with pytest.raises(ConnectError) as raised:
            await post(client, f"https://localhost:{tls_upstream.port}/v1/messages")
    finally:
        await client.close()
    assert not isinstance(raised.value, ProxyError)
    assert "SSLCertVerificationError" in type(raised.value.__cause__).__name__
    assert proxy.seen.tunnels == [f"localhost:{tls_upstream.port}"]
    assert tls_upstream.seen == []


async def test_pinned_addresses_are_tunnelled_to_by_address_keeping_the_host_name(
    upstream: Upstream, proxy: LoopbackProxy
) -> None:
    client = Http1Client(4, 2.0, 2.0, proxies=through(proxy))
    try:
        url = f"http://media.invalid:{upstream.port}/a.png"
        async with client.request("GET", url, {}, connect_to=["127.0.0.1"]) as reply:
            assert await reply.read() == b"hello "
    finally:
        await client.close()
    assert proxy.seen.tunnels == [f"127.0.0.1:{upstream.port}"]  # the proxy resolves nothing
    assert [(path, host) for path, host, _ in upstream.seen] == [("/a.png", f"media.invalid:{upstream.port}")]


async def test_no_proxy_hosts_go_direct(upstream: Upstream, proxy: LoopbackProxy) -> None:
    routes = proxy_routes(None, {"HTTP_PROXY": proxy.url, "NO_PROXY": "localhost,127.0.0.1"})
    client = Http1Client(4, 2.0, 2.0, proxies=routes)
    try:
        assert await post(client, f"http://127.0.0.1:{upstream.port}/direct") == (200, b"hello world")
    finally:
        await client.close()
    assert proxy.calls == 0 and proxy.seen.authorizations == []
    assert [path for path, _, _ in upstream.seen] == ["/direct"]


@pytest.mark.parametrize("scheme", ["http", "https"])
async def test_wrong_credentials_are_a_407_proxy_error_without_the_password(
    scheme: str, upstream: Upstream, tls_upstream: Upstream, guarded_proxy: LoopbackProxy
) -> None:
    wrong = ("alice", "not-" + PASSWORD)
    client = Http1Client(4, 2.0, 2.0, proxies=through(guarded_proxy, wrong))
    port = upstream.port if scheme == "http" else tls_upstream.port
    try:
        with pytest.raises(ProxyError) as raised:
            await post(client, f"{scheme}://127.0.0.1:{port}/v1/x")
    finally:
        await client.close()
    assert raised.value.status == 407
    assert str(raised.value) == (
        f"the proxy http://127.0.0.1:{guarded_proxy.port} asked for credentials, or refused the ones"
        " given (HTTP 407)"
    )
    assert guarded_proxy.seen.refused and upstream.seen == [] and tls_upstream.seen == []
    assert client.in_use == 0


async def test_a_proxy_that_is_not_there_is_a_proxy_error(upstream: Upstream) -> None:
    routes = proxy_routes(f"http://alice:{PASSWORD}@127.0.0.1:{closed_port()}", {})
    client = Http1Client(4, 2.0, 2.0, proxies=routes)
    try:
        for scheme in ("http", "https"):
            with pytest.raises(ProxyError) as raised:
                await post(client, f"{scheme}://127.0.0.1:{upstream.port}/v1/x")
            assert "could not be connected to (ConnectionRefusedError)" in str(raised.value)
            assert isinstance(raised.value.__cause__, ConnectionRefusedError)
            assert PASSWORD not in str(raised.value)
    finally:
        await client.close()
    assert client.in_use == 0


async def test_a_tunnel_the_proxy_cannot_open_is_a_proxy_error(proxy: LoopbackProxy) -> None:
    client = Http1Client(4, 2.0, 2.0, proxies=through(proxy))
    try:
        with pytest.raises(ProxyError) as raised:
            await post(client, f"https://127.0.0.1:{closed_port()}/v1/x")
    finally:
        await client.close()
    assert "instead of opening a tunnel" in str(raised.value)


async def test_a_proxy_that_answers_connect_with_an_error_names_its_status() -> None:
    async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 9\r\n\r\nforbidden")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(refuse, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = Http1Client(4, 2.0, 2.0, proxies=proxy_routes(f"127.0.0.1:{port}", {}))
    try:
        with pytest.raises(ProxyError) as raised:
            await post(client, "https://api.example.com/v1/x")
    finally:
        await client.close()
        server.close()
    assert raised.value.status == 403
    assert "would not open a tunnel to the upstream (HTTP 403)" in str(raised.value)


async def test_a_proxy_failure_tells_the_client_what_happened_and_only_the_log_where(
    guarded_proxy: LoopbackProxy, upstream: Upstream, tmp_path: Path
) -> None:
    config = OpenAIProviderConfig(
        name="proxied",
        base_url=f"http://127.0.0.1:{upstream.port}/v1",
        api_key="sk-upstream",
        proxy=f"http://alice:wrong-{PASSWORD}@127.0.0.1:{guarded_proxy.port}",
    )
    http = UpstreamHttp(config, classify_http_error)
    try:
        with pytest.raises(UpstreamError) as raised:
            async with http.request("POST", config.base_url + "/chat/completions", RequestContext("r1"), {}):
                pass
    finally:
        await http.close()
    error = raised.value
    assert error.message == (
        "Provider 'proxied' could not be reached through its proxy: the proxy asked for credentials, or"
        " refused the ones given (HTTP 407) [POST /v1/chat/completions]."
    )
    assert error.upstream_url == (
        f"POST http://127.0.0.1:{upstream.port}/v1/chat/completions via proxy"
        f" http://127.0.0.1:{guarded_proxy.port}"
    )
    assert f"wrong-{PASSWORD}" in http.secrets  # the log scrubber knows the password by value


async def test_a_proxy_that_never_answers_is_a_connect_timeout_through_the_proxy() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    config = OpenAIProviderConfig(
        name="proxied",
        base_url="https://api.example.com/v1",
        proxy=f"http://127.0.0.1:{port}",
        connect_timeout=0.2,
    )
    http = UpstreamHttp(config, classify_http_error)
    try:
        with pytest.raises(RequestTimeout) as raised:
            async with http.request("POST", config.base_url + "/chat/completions", RequestContext("r1"), {}):
                pass
    finally:
        await http.close()
        server.close()
    assert raised.value.message == (
        "Provider 'proxied' could not be connected to through its proxy within 0.2s (connect timeout)"
        " [POST /v1/chat/completions]."
    )
    assert raised.value.upstream_url == (
        f"POST https://api.example.com/v1/chat/completions via proxy http://127.0.0.1:{port}"
    )
