"""Remote media fetching: real aiohttp servers on 127.0.0.1, and no test touches any other address.

Loopback is private, so the positive tests opt in with `allow_private_addresses=True` (and
`allow_http=True`). Refusals of private targets are proved before any connection is made: those
fetchers get a transport factory that fails the test if it is ever called. Made-up hostnames are
mapped with the fetcher's `resolve` hook, never sent to a real resolver.
"""

from __future__ import annotations

import asyncio
import base64
import shutil
import ssl
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import pytest
from aiohttp import web

from server.errors import InvalidRequest
from server.providers.remote_media import (
    Media,
    MediaFetcher,
    MediaPolicy,
    parse_data_url,
    sniff_media_type,
)
from server.providers.transport import ClientClosed, Http1Client, Reply, proxy_routes
from tests.fakes.http_proxy import LoopbackProxy

PARAM = "messages[0].content[1].image_url"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 56
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 60
GIF = b"GIF89a" + b"\x00" * 58
WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 " + b"\x00" * 48
PDF = b"%PDF-1.7\n" + b"%" * 55
LOCAL = MediaPolicy(allow_private_addresses=True, allow_http=True)
# Stands in for a public answer in vetting only: every test that uses it dials loopback instead.
PUBLIC_IP = "93.184.216.34"


def _refusal(error: pytest.ExceptionInfo[InvalidRequest]) -> str:
    assert error.value.param == PARAM
    assert error.value.code == "invalid_image_url"
    assert error.value.message.endswith(f"({PARAM})")
    return error.value.message


def _no_transport() -> NoReturn:
    pytest.fail("the fetcher tried to connect")


async def _no_dns(host: str, port: int) -> list[str]:
    pytest.fail(f"the fetcher resolved {host}")


def _stub_dns(
    table: dict[str, list[str]], calls: list[str] | None = None
) -> Callable[[str, int], Awaitable[list[str]]]:
    async def resolve(host: str, port: int) -> list[str]:
        if calls is not None:
            calls.append(host)
        if host not in table:
            raise OSError(f"no such host {host}")
        return list(table[host])

    return resolve


class _LoopbackTransport:
    """A transport that dials 127.0.0.1 whatever addresses it is given (a stand-in for the internet),
    and notes the addresses the fetcher asked for."""

    def __init__(self) -> None:
        self._client = Http1Client(8, 5.0, None)
        self.asked: list[tuple[str, ...]] = []

    def request(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        data: bytes | list[bytes] | None = None,
        *,
        connect_to: Sequence[str] | None = None,
        **options: Any,
    ) -> AbstractAsyncContextManager[Reply]:
        self.asked.append(tuple(connect_to or ()))
        return self._client.request(method, url, headers, data, connect_to=["127.0.0.1"], **options)

    async def close(self) -> None:
        await self._client.close()


# --- the media server ---------------------------------------------------------------------------


@dataclass
class MediaServer:
    port: int = 0
    paths: list[str] = field(default_factory=list)
    hosts: list[str] = field(default_factory=list)
    stream_finished: bool = False

    def url(self, path: str, host: str = "127.0.0.1", scheme: str = "http") -> str:
        return f"{scheme}://{host}:{self.port}{path}"


def _app(state: MediaServer) -> web.Application:
    async def record(request: web.Request) -> None:
        state.paths.append(request.path_qs)
        state.hosts.append(request.headers.get("Host", ""))

    async def typed(request: web.Request) -> web.Response:
        await record(request)
        body = {"png": PNG, "jpeg": JPEG, "gif": GIF, "webp": WEBP, "pdf": PDF}[request.match_info["kind"]]
        return web.Response(body=body, headers={"Content-Type": request.query.get("type", "image/png")})

    async def sized(request: web.Request) -> web.Response:
        await record(request)
        return web.Response(body=PNG + b"\x00" * int(request.match_info["extra"]), content_type="image/png")

    async def endless(request: web.Request) -> web.StreamResponse:
        await record(request)
        response = web.StreamResponse(headers={"Content-Type": "image/png"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        try:
            for _ in range(512):  # 32 MiB if nobody hangs up
                await response.write(b"\x00" * 65536)
        except (ConnectionError, RuntimeError):
            return response
        state.stream_finished = True
        return response

    async def slow(request: web.Request) -> web.Response:
        await record(request)
        await asyncio.sleep(10)
        return web.Response(body=PNG, content_type="image/png")

    async def slow_body(request: web.Request) -> web.StreamResponse:
        await record(request)
        response = web.StreamResponse(headers={"Content-Type": "image/png"})
        await response.prepare(request)
        await response.write(PNG[:8])
        await asyncio.sleep(10)
        return response

    async def status(request: web.Request) -> web.Response:
        await record(request)
        return web.Response(status=int(request.match_info["code"]), text="nope")

    async def gzipped(request: web.Request) -> web.Response:
        await record(request)
        return web.Response(body=PNG, headers={"Content-Type": "image/png", "Content-Encoding": "gzip"})

    async def chain(request: web.Request) -> web.Response:
        await record(request)
        remaining = int(request.match_info["n"])
        location = "/media/png" if remaining <= 1 else f"/chain/{remaining - 1}"
        raise web.HTTPFound(location)

    async def redirect_to(request: web.Request) -> web.Response:
        await record(request)
        raise web.HTTPTemporaryRedirect(request.query["location"])

    app = web.Application()
    app.router.add_get("/media/{kind}", typed)
    app.router.add_get("/sized/{extra}", sized)
    app.router.add_get("/endless", endless)
    app.router.add_get("/slow", slow)
    app.router.add_get("/slow-body", slow_body)
    app.router.add_get("/status/{code}", status)
    app.router.add_get("/gzip", gzipped)
    app.router.add_get("/chain/{n}", chain)
    app.router.add_get("/redirect-to", redirect_to)
    return app


async def _serve(state: MediaServer, ssl_context: ssl.SSLContext | None = None) -> web.AppRunner:
    runner = web.AppRunner(_app(state), shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
    await site.start()
    state.port = runner.addresses[0][1]
    return runner


@pytest.fixture
async def server() -> AsyncIterator[MediaServer]:
    state = MediaServer()
    runner = await _serve(state)
    yield state
    await runner.cleanup()


@pytest.fixture
async def local() -> AsyncIterator[MediaFetcher]:
    fetcher = MediaFetcher(LOCAL)
    yield fetcher
    await fetcher.close()


async def _raw_server(reply: bytes, then_sleep: float = 0.0) -> tuple[asyncio.Server, int]:
    """A socket server that answers any request with `reply` verbatim, optionally holding the line."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        try:
            writer.write(reply)
            await writer.drain()
            await asyncio.sleep(then_sleep)
        except ConnectionError:
            pass
        finally:
            writer.close()

    raw = await asyncio.start_server(handle, "127.0.0.1", 0)
    return raw, raw.sockets[0].getsockname()[1]


# --- successful fetches -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "data", "media_type"),
    [
        ("/media/png", PNG, "image/png"),
        ("/media/jpeg?type=image/jpeg", JPEG, "image/jpeg"),
        ("/media/gif?type=image/gif", GIF, "image/gif"),
        ("/media/webp?type=image/webp", WEBP, "image/webp"),
        ("/media/pdf?type=application/pdf", PDF, "application/pdf"),
        # Parameters and case are ignored; a common alias is normalised.
        ("/media/png?type=Image/PNG;%20charset=binary", PNG, "image/png"),
        ("/media/jpeg?type=image/jpg", JPEG, "image/jpeg"),
        # application/octet-stream: the magic bytes decide.
        ("/media/pdf?type=application/octet-stream", PDF, "application/pdf"),
        ("/media/webp?type=application/octet-stream", WEBP, "image/webp"),
    ],
)
async def test_fetches_allowed_media(
    server: MediaServer, local: MediaFetcher, path: str, data: bytes, media_type: str
) -> None:
    assert await local.fetch(server.url(path), PARAM) == Media(data=data, media_type=media_type)


async def test_reuses_one_pooled_transport(server: MediaServer) -> None:
    created: list[Http1Client] = []

    def factory() -> Http1Client:
        created.append(Http1Client(8, 5.0, None))
        return created[-1]

    fetcher = MediaFetcher(LOCAL, factory)
    assert created == []  # created lazily
    await fetcher.fetch(server.url("/media/png"), PARAM)
    await fetcher.fetch(server.url("/media/png"), PARAM)
    assert len(created) == 1
    await fetcher.close()
    with pytest.raises(ClientClosed):
        async with created[0].request("GET", server.url("/media/png"), {}):
            pass


async def test_follows_up_to_three_redirects(server: MediaServer, local: MediaFetcher) -> None:
    media = await local.fetch(server.url("/chain/3"), PARAM)
    assert media.media_type == "image/png"
    assert server.paths == ["/chain/3", "/chain/2", "/chain/1", "/media/png"]


async def test_refuses_a_fourth_redirect(server: MediaServer, local: MediaFetcher) -> None:
    with pytest.raises(InvalidRequest) as error:
        await local.fetch(server.url("/chain/4"), PARAM)
    assert "redirected more than 3 times" in _refusal(error)
    assert "/media/png" not in server.paths


async def test_dials_only_the_vetted_address_and_keeps_the_host_header(server: MediaServer) -> None:
    # A second lookup would answer 127.0.0.2, where nothing listens: success proves there was none.
    calls: list[str] = []
    answers = iter([["127.0.0.1"], ["127.0.0.2"], ["127.0.0.2"]])

    async def rebinding_dns(host: str, port: int) -> list[str]:
        calls.append(host)
        return next(answers)

    fetcher = MediaFetcher(LOCAL, resolve=rebinding_dns)
    try:
        media = await fetcher.fetch(server.url("/media/png", host="media.test"), PARAM)
    finally:
        await fetcher.close()
    assert media.data == PNG
    assert calls == ["media.test"]
    assert server.hosts == [f"media.test:{server.port}"]


# --- refusals before connecting -----------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/a.png",
        "https://127.8.9.10:8443/a.png",
        "https://10.0.0.1/a.png",
        "https://172.16.5.4/a.png",
        "https://192.168.1.1/a.png",
        "https://169.254.169.254/latest/meta-data/",
        "https://100.64.0.1/a.png",
        "https://0.0.0.0/a.png",
        "https://224.0.0.1/a.png",
        "https://240.0.0.1/a.png",
        "https://[::1]/a.png",
        "https://[::]/a.png",
        "https://[fe80::1]/a.png",
        "https://[fd12:3456::1]/a.png",
        "https://[ff02::1]/a.png",
        "https://[::ffff:127.0.0.1]/a.png",
        "https://[::ffff:a9fe:a9fe]/a.png",
        "https://[2002:7f00:1::]/a.png",
        "https://[64:ff9b::a00:1]/a.png",
    ],
)
async def test_refuses_non_public_literal_addresses(url: str) -> None:
    fetcher = MediaFetcher(MediaPolicy(), _no_transport, resolve=_no_dns)
    with pytest.raises(InvalidRequest) as error:
        await fetcher.fetch(url, PARAM)
    assert "private, local or reserved" in _refusal(error)


async def test_refuses_localhost_through_the_real_resolver() -> None:
    fetcher = MediaFetcher(MediaPolicy(), _no_transport)
    with pytest.raises(InvalidRequest) as error:
        await fetcher.fetch("https://localhost/a.png", PARAM)
    assert "'localhost' is a private, local or reserved network address" in _refusal(error)


async def test_refuses_a_name_if_any_address_is_private() -> None:
    dns = _stub_dns({"mixed.test": [PUBLIC_IP, "10.0.0.7"]})
    fetcher = MediaFetcher(MediaPolicy(), _no_transport, resolve=dns)
    with pytest.raises(InvalidRequest) as error:
        await fetcher.fetch("https://mixed.test/a.png", PARAM)
    message = _refusal(error)
    assert "private" in message
    assert "10.0.0.7" not in message  # the internal address is not echoed


async def test_refuses_an_unresolvable_name() -> None:
    fetcher = MediaFetcher(MediaPolicy(), _no_transport, resolve=_stub_dns({}))
    with pytest.raises(InvalidRequest) as error:
        await fetcher.fetch("https://nowhere.test/a.png", PARAM)
    assert "could not be resolved" in _refusal(error)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://example.com/a.png", "plain http://"),
        ("ftp://example.com/a.png", "not an https:// or data: URL"),
        ("file:///etc/passwd", "not an https:// or data: URL"),
        ("/relative/a.png", "not an https:// or data: URL"),
        ("https://user:secret@example.com/a.png", "credentials"),
        ("https:///a.png", "no host"),
    ],
)
async def test_refuses_other_schemes_and_shapes(url: str, reason: str) -> None:
    fetcher = MediaFetcher(MediaPolicy(), _no_transport, resolve=_no_dns)
    with pytest.raises(InvalidRequest) as error:
        await fetcher.fetch(url, PARAM)
    assert reason in _refusal(error)


# --- redirects are vetted again -----------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        "http://10.0.0.5/a.png",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:{port}/media/png",
        "http://internal.test:{port}/media/png",
        "http://localhost:{port}/media/png",
    ],
)
async def test_refuses_a_redirect_to_a_private_address(server: MediaServer, target: str) -> None:
    # public.test passes vetting; the test transport dials it on loopback. internal.test is private.
    dns = _stub_dns({"public.test": [PUBLIC_IP], "internal.test": ["127.0.0.1"], "localhost": ["127.0.0.1"]})
    policy = MediaPolicy(allow_http=True)
    transport = _LoopbackTransport()
    fetcher = MediaFetcher(policy, lambda: transport, resolve=dns)
    location = target.format(port=server.port)
    try:
        with pytest.raises(InvalidRequest) as error:
            await fetcher.fetch(server.url(f"/redirect-to?location={location}", host="public.test"), PARAM)
    finally:
        await fetcher.close()
    assert "private, local or reserved" in _refusal(error)
    assert [path.split("?")[0] for path in server.paths] == ["/redirect-to"]
    assert transport.asked == [(PUBLIC_IP,)]  # the fetcher asked for the vetted address only


@pytest.mark.parametrize(
    ("location", "reason"),
    [
        ("data:image/png;base64,AAAA", "redirect target is not an https:// URL"),
        ("ftp://x.test/a", "not an https"),
    ],
)
async def test_refuses_a_redirect_to_another_scheme(
    server: MediaServer, local: MediaFetcher, location: str, reason: str
) -> None:
    with pytest.raises(InvalidRequest) as error:
        await local.fetch(server.url(f"/redirect-to?location={location}"), PARAM)
    assert reason in _refusal(error)


# --- size, type, status, time -------------------------------------------------------------------


async def test_refuses_a_declared_oversize_body(server: MediaServer) -> None:
    fetcher = MediaFetcher(MediaPolicy(max_bytes=1024, allow_private_addresses=True, allow_http=True))
    try:
        assert (await fetcher.fetch(server.url(f"/sized/{1024 - len(PNG)}"), PARAM)).data.startswith(PNG)
        with pytest.raises(InvalidRequest) as error:
            await fetcher.fetch(server.url(f"/sized/{1025 - len(PNG)}"), PARAM)
    finally:
        await fetcher.close()
    assert "larger than the 1024-byte limit" in _refusal(error)


async def test_honours_content_length_before_reading() -> None:
    # Declares 10 MB but sends 8 bytes and holds the line: only the header can refuse it in time.
    head = b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: 10000000\r\n\r\n"
    raw, port = await _raw_server(head + PNG[:8], then_sleep=5)
    fetcher = MediaFetcher(
        MediaPolicy(max_bytes=4096, timeout=3, allow_private_addresses=True, allow_http=True)
    )
    try:
        with pytest.raises(InvalidRequest) as error:
            await fetcher.fetch(f"http://127.0.0.1:{port}/a.png", PARAM)
    finally:
        await fetcher.close()
        raw.close()
    assert "larger than the 4096-byte limit" in _refusal(error)


async def test_aborts_a_chunked_body_once_it_passes_the_cap(server: MediaServer) -> None:
    fetcher = MediaFetcher(MediaPolicy(max_bytes=100_000, allow_private_addresses=True, allow_http=True))
    try:
        with pytest.raises(InvalidRequest) as error:
            await fetcher.fetch(server.url("/endless"), PARAM)
    finally:
        await fetcher.close()
    assert "larger than the 100000-byte limit" in _refusal(error)
    await asyncio.sleep(0.2)
    assert not server.stream_finished  # the connection was dropped, not drained


async def test_aborts_an_undeclared_close_delimited_body() -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nConnection: close\r\n\r\n"
    raw, port = await _raw_server(head + PNG + b"\x00" * 300_000)
    fetcher = MediaFetcher(MediaPolicy(max_bytes=100_000, allow_private_addresses=True, allow_http=True))
    try:
        with pytest.raises(InvalidRequest) as error:
            await fetcher.fetch(f"http://127.0.0.1:{port}/a.png", PARAM)
    finally:
        await fetcher.close()
        raw.close()
    assert "larger than the 100000-byte limit" in _refusal(error)


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/media/png?type=text/html", "content type 'text/html' is not supported"),
        ("/media/png?type=image/svg%2Bxml", "content type 'image/svg+xml' is not supported"),
        ("/status/404", "HTTP status 404"),
        ("/status/500", "HTTP status 500"),
        ("/gzip", "Content-Encoding 'gzip'"),
    ],
)
async def test_refuses_bad_answers(server: MediaServer, local: MediaFetcher, path: str, reason: str) -> None:
    with pytest.raises(InvalidRequest) as error:
        await local.fetch(server.url(path), PARAM)
    assert reason in _refusal(error)


async def test_sniffs_octet_stream_and_refuses_unknown_bytes() -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 11\r\n\r\n"
    raw, port = await _raw_server(head + b"hello world")
    fetcher = MediaFetcher(LOCAL)
    try:
        with pytest.raises(InvalidRequest) as error:
            await fetcher.fetch(f"http://127.0.0.1:{port}/a.bin", PARAM)
    finally:
        await fetcher.close()
        raw.close()
    assert "content type 'application/octet-stream' is not supported" in _refusal(error)


async def test_restricts_types_to_the_policy(server: MediaServer) -> None:
    fetcher = MediaFetcher(
        MediaPolicy(allowed_content_types=("image/png",), allow_private_addresses=True, allow_http=True)
    )
    try:
        with pytest.raises(InvalidRequest) as error:
            await fetcher.fetch(server.url("/media/pdf?type=application/octet-stream"), PARAM)
    finally:
        await fetcher.close()
    assert "'application/pdf' is not supported (expected one of: image/png)" in _refusal(error)


@pytest.mark.parametrize("path", ["/slow", "/slow-body"])
async def test_times_out(server: MediaServer, path: str) -> None:
    fetcher = MediaFetcher(MediaPolicy(timeout=0.3, allow_private_addresses=True, allow_http=True))
    started = time.monotonic()
    try:
        with pytest.raises(InvalidRequest) as error:
            await fetcher.fetch(server.url(path), PARAM)
    finally:
        await fetcher.close()
    assert time.monotonic() - started < 3
    assert "did not answer within 0.3 seconds" in _refusal(error)


async def test_refuses_a_closed_port() -> None:
    raw, port = await _raw_server(b"")
    raw.close()
    await raw.wait_closed()
    fetcher = MediaFetcher(LOCAL)
    try:
        with pytest.raises(InvalidRequest) as error:
            await fetcher.fetch(f"http://127.0.0.1:{port}/a.png", PARAM)
    finally:
        await fetcher.close()
    assert "could not be reached" in _refusal(error)


# --- TLS: the vetted address is dialled, the hostname is verified -------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        + ["-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=media.test"]
        + ["-addext", "subjectAltName=DNS:media.test"],
        check=True,
        capture_output=True,
    )
    return cert, key


async def test_https_keeps_sni_and_verifies_the_original_hostname(certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    server_names: list[str | None] = []
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    server_context.sni_callback = lambda _sock, name, _ctx: server_names.append(name)  # type: ignore[assignment,misc,return-value]
    state = MediaServer()
    runner = await _serve(state, server_context)
    client_context = ssl.create_default_context(cafile=str(cert))

    def transport() -> Http1Client:
        return Http1Client(8, 5.0, None, tls=client_context)

    dns = _stub_dns({"media.test": ["127.0.0.1"], "other.test": ["127.0.0.1"]})
    fetcher = MediaFetcher(MediaPolicy(allow_private_addresses=True), transport, resolve=dns)
    try:
        media = await fetcher.fetch(state.url("/media/png", host="media.test", scheme="https"), PARAM)
        assert media.data == PNG
        assert server_names == ["media.test"]
        assert state.hosts == [f"media.test:{state.port}"]
        # The same address under a name the certificate does not cover fails verification.
        with pytest.raises(InvalidRequest) as error:
            await fetcher.fetch(state.url("/media/png", host="other.test", scheme="https"), PARAM)
        assert "TLS certificate could not be verified" in _refusal(error)
        # https -> http is a downgrade, refused when plain http is not allowed.
        downgrade = state.url("/media/png", host="media.test")
        with pytest.raises(InvalidRequest) as error:
            await fetcher.fetch(
                state.url(f"/redirect-to?location={downgrade}", host="media.test", scheme="https"), PARAM
            )
        assert "redirect target uses plain http://" in _refusal(error)
    finally:
        await fetcher.close()
        await runner.cleanup()


# --- data: URLs ---------------------------------------------------------------------------------


def _data_url(data: bytes, media_type: str = "image/png") -> str:
    return f"data:{media_type};base64,{base64.b64encode(data).decode()}"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (_data_url(PNG), Media(PNG, "image/png")),
        (_data_url(JPEG, "IMAGE/JPEG"), Media(JPEG, "image/jpeg")),
        (_data_url(PDF, "application/pdf;name=a.pdf"), Media(PDF, "application/pdf")),
        # Wrapped lines and missing padding, as some clients send them.
        ("data:image/gif;base64,R0lG\nODlh\r\nAA", Media(b"GIF89a\x00", "image/gif")),
        # No type, or octet-stream: the magic bytes decide.
        (_data_url(WEBP, ""), Media(WEBP, "image/webp")),
        (_data_url(PDF, "application/octet-stream"), Media(PDF, "application/pdf")),
        # Not base64: percent-encoded bytes (RFC 2397).
        ("data:image/png,%89PNG%0D%0A%1A%0A", Media(b"\x89PNG\r\n\x1a\n", "image/png")),
    ],
)
def test_parse_data_url(url: str, expected: Media) -> None:
    assert parse_data_url(url, PARAM) == expected


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("data:image/png;base64", "no ','"),
        ("data:image/png;base64,", "empty"),
        ("data:image/png;base64,@@@@", "valid base64"),
        ("data:image/png;base64,QUJD=QUJD", "valid base64"),
        ("data:png;base64,AAAA", "invalid media type 'png'"),
        ("https://example.com/a.png", "not a data: URL"),
    ],
)
def test_parse_data_url_refuses_malformed_urls(url: str, reason: str) -> None:
    with pytest.raises(InvalidRequest) as error:
        parse_data_url(url, PARAM)
    assert reason in _refusal(error)


async def test_fetch_decodes_data_urls_under_the_policy() -> None:
    fetcher = MediaFetcher(MediaPolicy(max_bytes=len(PNG)), _no_transport, resolve=_no_dns)
    assert await fetcher.fetch(_data_url(PNG), PARAM) == Media(PNG, "image/png")
    with pytest.raises(InvalidRequest) as error:
        await fetcher.fetch(_data_url(PNG + b"\x00"), PARAM)
    assert "larger than" in _refusal(error)
    with pytest.raises(InvalidRequest) as error:
        await fetcher.fetch(_data_url(b"x" * 10_000), PARAM)  # refused before decoding
    assert "larger than" in _refusal(error)
    with pytest.raises(InvalidRequest) as error:
        await fetcher.fetch(_data_url(b"hi", "text/plain"), PARAM)
    assert "'text/plain' is not supported" in _refusal(error)


def test_sniff_media_type() -> None:
    assert [sniff_media_type(d) for d in (PNG, JPEG, GIF, WEBP, PDF)] == [
        "image/png",
        "image/jpeg",
        "image/gif",
        "image/webp",
        "application/pdf",
    ]
    assert sniff_media_type(b"RIFF\x00\x00\x00\x00WAVE") is None
    assert sniff_media_type(b"") is None


# --- through a proxy: the tunnel goes to the vetted address ------------------------------------


async def test_through_a_proxy_the_tunnel_goes_to_the_vetted_address(server: MediaServer) -> None:
    # The proxy could resolve media.test itself (to anything): it is given the vetted address instead.
    async with LoopbackProxy() as proxy:
        fetcher = MediaFetcher(
            LOCAL,
            resolve=_stub_dns({"media.test": ["127.0.0.1"]}),
            proxies=proxy_routes(None, {"HTTPS_PROXY": proxy.url, "HTTP_PROXY": proxy.url}),
        )
        try:
            media = await fetcher.fetch(server.url("/media/png", host="media.test"), PARAM)
        finally:
            await fetcher.close()
    assert media.data == PNG
    assert proxy.seen.tunnels == [f"127.0.0.1:{server.port}"]
    assert proxy.seen.forwarded == []
    assert server.hosts == [f"media.test:{server.port}"]


async def test_a_proxy_that_refuses_is_a_refusal_naming_the_gateways_proxy(server: MediaServer) -> None:
    async with LoopbackProxy(credentials=("u", "p")) as proxy:
        fetcher = MediaFetcher(LOCAL, proxies=proxy_routes(proxy.url, {}))
        try:
            with pytest.raises(InvalidRequest) as error:
                await fetcher.fetch(server.url("/media/png"), PARAM)
        finally:
            await fetcher.close()
    assert "could not be fetched: the gateway's proxy asked for credentials" in _refusal(error)
    assert server.paths == []
