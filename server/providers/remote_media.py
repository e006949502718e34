"""Safe retrieval of client-supplied media (images, PDFs) for upstreams that need inline bytes.

A client may send an `https://` URL where a native upstream (Anthropic, Gemini) wants the bytes.
Fetching it is a server-side request forgery risk, so every hop is vetted:

- the host is resolved once, before connecting, and refused if ANY address is non-public
  (loopback, private, link-local, unspecified, multicast, reserved, ...) unless the policy allows it;
- the connection then goes only to those vetted addresses: the transport dials them (`connect_to`;
  no second lookup, so no DNS rebinding), while the Host header and TLS SNI stay the original
  hostname; through a proxy (the environment's HTTPS_PROXY / HTTP_PROXY / NO_PROXY: media comes
  from anywhere, so a provider's own `proxy:` does not apply) the tunnel is opened to the vetted
  address, so the proxy does not resolve the name again either;
- redirects are followed by hand (at most three), each target vetted again;
- one total timeout, a size cap enforced while streaming, and a content-type allow-list
  (with magic-byte sniffing when the server says `application/octet-stream`);
- `fetch_all` fetches a request's media under the budgets of `media_budget.py`: how many parts and
  how many bytes per request, and how many bytes and fetches per process.

`data:` URLs are decoded locally. Every refusal is `InvalidRequest(code="invalid_image_url")`
naming the request part, e.g. `messages[0].content[1].image_url`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import ipaddress
import os
import socket
import ssl
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

from yarl import URL

from server.errors import InvalidRequest
from server.providers.media_budget import MediaLease, MediaLimits, ProcessMediaBudget, process_budget
from server.providers.transport import (
    ConnectError,
    Http1Client,
    InvalidURL,
    ProxyError,
    ProxyRoutes,
    Reply,
    ReplyError,
    Transport,
    TransportError,
    proxy_routes,
)

__all__ = [
    "Media",
    "MediaFetcher",
    "MediaPolicy",
    "base64_text",
    "parse_data_url",
    "sniff_media_type",
]

_CODE = "invalid_image_url"
_MAX_REDIRECTS = 3
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_CHUNK_BYTES = 64 * 1024
# Types that say nothing about the bytes; the magic bytes decide instead.
_UNTYPED = frozenset({"", "application/octet-stream", "binary/octet-stream", "application/unknown"})
_TYPE_ALIASES = {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg", "image/x-png": "image/png"}
# Connections the default transport keeps, across every host fetched from.
_MAX_CONNECTIONS = 32
_USER_AGENT = "SirayaModelRouter/1 (media fetch)"

Resolve = Callable[[str, int], Awaitable[list[str]]]


@dataclass(frozen=True, slots=True)
class MediaPolicy:
    """What the fetcher may retrieve, and from where."""

    max_bytes: int = 20 * 1024 * 1024
    # Seconds for the whole fetch: resolution, every redirect hop and the body.
    timeout: float = 10.0
    allowed_content_types: tuple[str, ...] = (
        "image/png",
        "image/jpeg",
        "image/gif",
        "image/webp",
        "application/pdf",
    )
    # Loopback, private (RFC 1918, fc00::/7), link-local (169.254/16, fe80::/10), unspecified,
    # multicast and reserved addresses are refused unless True (tests, trusted internal media).
    allow_private_addresses: bool = False
    # Plain http:// is refused unless True.
    allow_http: bool = False


@dataclass(frozen=True, slots=True)
class Media:
    """Bytes ready to inline upstream, with their media type (parameters stripped).

    `token`, when set, stands for the bytes in a body under construction (`media_splice.Splicer`).
    """

    data: bytes | bytearray
    media_type: str
    token: str | None = None


def base64_text(media: Media) -> str:
    """What a JSON body carries for the media: its base64 text, or the token standing in for it."""
    return media.token if media.token is not None else base64.b64encode(media.data).decode()


def _refuse(reason: str, param: str) -> InvalidRequest:
    return InvalidRequest(f"{reason} ({param})", param=param, code=_CODE)


# --- data: URLs -------------------------------------------------------------------------------


def sniff_media_type(data: bytes | bytearray) -> str | None:
    """The media type the leading magic bytes announce, for the formats the gateway inlines."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if len(data) >= 12 and data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return "image/webp"
    if data.startswith(b"%PDF-"):
        return "application/pdf"
    return None


def _normalize_type(header: str) -> str:
    """`Image/JPG; charset=x` -> `image/jpeg`."""
    media_type = header.split(";", 1)[0].strip().lower()
    return _TYPE_ALIASES.get(media_type, media_type)


def _data_url_size(url: str) -> int:
    """At most how many bytes a data: URL decodes to (base64 or percent-encoded, both shrink)."""
    return len(url)


def _decode_data_url(url: str, param: str, max_bytes: int | None) -> Media:
    if url[:5].lower() != "data:":
        raise _refuse("The URL is not a data: URL", param)
    header, comma, payload = url[5:].partition(",")
    if not comma:
        raise _refuse("The data: URL is malformed: it has no ',' before the data", param)
    pieces = [piece.strip() for piece in header.split(";")]
    is_base64 = len(pieces) > 1 and pieces[-1].lower() == "base64"
    media_type = _normalize_type(pieces[0])
    if media_type and "/" not in media_type:
        raise _refuse(f"The data: URL has an invalid media type '{pieces[0]}'", param)
    if is_base64:
        # Clients wrap long base64 lines; the padding is sometimes left off.
        payload = "".join(payload.split())
        if max_bytes is not None and len(payload) // 4 * 3 > max_bytes + 3:
            raise _refuse(f"The data: URL is larger than the {max_bytes}-byte limit", param)
        payload += "=" * (-len(payload) % 4)
        try:
            data = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise _refuse("The data: URL does not contain valid base64", param) from None
    else:
        try:
            data = unquote_to_bytes(payload)
        except (TypeError, ValueError):
            raise _refuse("The data: URL is malformed", param) from None
    if not data:
        raise _refuse("The data: URL is empty", param)
    if max_bytes is not None and len(data) > max_bytes:
        raise _refuse(f"The data: URL is larger than the {max_bytes}-byte limit", param)
    if media_type in _UNTYPED:
        media_type = sniff_media_type(data) or "application/octet-stream"
    return Media(data=data, media_type=media_type)


def parse_data_url(url: str, param: str) -> Media:
    """Decode `data:<type>[;params][;base64],<data>`; a malformed URL is an `InvalidRequest`.

    Only the syntax is checked here; `MediaFetcher.fetch` also applies its policy (type, size).
    A missing or `application/octet-stream` type is replaced by the one the magic bytes announce.
    """
    return _decode_data_url(url, param, None)


# --- address vetting and pinning --------------------------------------------------------------


_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def _is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        # Addresses that carry an IPv4 address reach whatever that address reaches.
        # (Python before 3.11.10 does not look inside IPv4-mapped addresses itself.)
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address.teredo is not None:
            embedded = address.teredo[1]
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None and not _is_public(embedded):
            return False
        if address.is_site_local:
            return False
    return address.is_global and not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


async def _getaddrinfo(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    return [str(info[4][0]) for info in infos]


# --- the fetcher ------------------------------------------------------------------------------


class MediaFetcher:
    """Fetches client media under a `MediaPolicy`; one pooled transport, created on first use.

    `resolve(host, port) -> [address, ...]` replaces the event loop's getaddrinfo (tests map
    made-up hostnames with it); its answer is both what is vetted and what is dialled. `budget` is
    the process's media budget (by default the one shared by every fetcher with these `limits`).
    `transport_factory` builds the transport (by default an Http1Client through the environment's
    proxies); it must dial the `connect_to` addresses it is given, or vetting can be bypassed.
    """

    def __init__(
        self,
        policy: MediaPolicy = MediaPolicy(),  # noqa: B008 - frozen, so sharing the default is safe
        transport_factory: Callable[[], Transport] | None = None,
        *,
        resolve: Resolve | None = None,
        limits: MediaLimits = MediaLimits(),  # noqa: B008 - frozen
        budget: ProcessMediaBudget | None = None,
        proxies: ProxyRoutes | None = None,
    ) -> None:
        self._policy = policy
        self._limits = limits
        self._budget = budget or process_budget(limits.bytes_in_flight, limits.fetches_in_flight)
        self._proxies = proxies if proxies is not None else proxy_routes(None, os.environ)
        self._transport_factory = transport_factory or self._default_transport
        self._resolve = resolve or _getaddrinfo
        self._allowed_types = frozenset(_normalize_type(t) for t in policy.allowed_content_types)
        self._accept = ", ".join(policy.allowed_content_types)
        self._transport: Transport | None = None

    def _default_transport(self) -> Transport:
        # The fetch's own timeout governs every wait; the connect gets no more than all of it.
        # Nothing is decompressed (no Accept-Encoding is sent) and no cookie is ever kept.
        return Http1Client(_MAX_CONNECTIONS, self._policy.timeout, None, proxies=self._proxies)

    def _client(self) -> Transport:
        if self._transport is None:
            self._transport = self._transport_factory()
        return self._transport

    async def close(self) -> None:
        if self._transport is not None:
            await self._transport.close()
            self._transport = None

    async def fetch(self, url: str, param: str) -> Media:
        """The bytes behind `url`: a data: URL decoded, an https:// URL fetched; others refused.

        Budgeted while it is fetched only: a caller that keeps the bytes should use `fetch_all`.
        """
        media, lease = await self.fetch_all(((param, url),))
        lease.release()
        return media[param]

    async def fetch_all(self, refs: Sequence[tuple[str, str]]) -> tuple[dict[str, Media], MediaLease]:
        """Every `(param, url)` part's media, by param, with the request's lease on the process budget.

        The caller releases the lease once the media is sent (or dropped). Refusals are 400s naming
        the part: too many parts, a part over its cap or the request over its total. The first
        failure cancels the other fetches.
        """
        limits = self._limits
        if len(refs) > limits.urls_per_request:
            param = refs[limits.urls_per_request][0]
            raise InvalidRequest(
                f"The request has {len(refs)} media parts; at most {limits.urls_per_request} are "
                f"accepted per request ({param})",
                param=param,
                code="too_many_media_parts",
            )
        cap = self._policy.max_bytes
        worst = sum(min(cap, _data_url_size(url)) if url[:5].lower() == "data:" else cap for _, url in refs)
        lease = await MediaLease.reserve(self._budget, worst, limits.bytes_per_request, self._policy.timeout)
        try:
            media = await self._fetch_each(refs, lease)
        except BaseException:
            lease.release()
            raise
        lease.shrink()
        return media, lease

    async def _fetch_each(self, refs: Sequence[tuple[str, str]], lease: MediaLease) -> dict[str, Media]:
        if len(refs) == 1:
            param, url = refs[0]
            return {param: await self._fetch_one(url, param, lease)}
        tasks = [asyncio.ensure_future(self._fetch_one(url, param, lease)) for param, url in refs]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in tasks:
                if task.done() and not task.cancelled() and (error := task.exception()) is not None:
                    raise error
            return {param: task.result() for (param, _), task in zip(refs, tasks, strict=True)}
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for task in tasks:
                if not task.cancelled() and task.exception() is None:
                    data = task.result().data
                    if isinstance(data, bytearray):
                        # Freed now, not whenever the garbage collector reaches the error's cycle.
                        del data[:]
            tasks.clear()
            raise

    async def _fetch_one(self, url: str, param: str, lease: MediaLease) -> Media:
        if url[:5].lower() == "data:":
            media = _decode_data_url(url, param, self._policy.max_bytes)
            self._check_type(media.media_type, param)
            lease.take(len(media.data), param)
            return media
        # Waiting for a slot is the gateway's doing, not the URL's: its own clock, its own error.
        await lease.fetch_slot(self._policy.timeout)
        try:
            async with asyncio.timeout(self._policy.timeout):
                return await self._fetch_remote(url, param, lease)
        except TimeoutError:
            raise _refuse(f"The URL did not answer within {self._policy.timeout:g} seconds", param) from None
        finally:
            lease.fetch_done()

    async def _fetch_remote(self, url: str, param: str, lease: MediaLease) -> Media:
        try:
            target = self._check_url(URL(url), param)
        except (TypeError, ValueError):
            raise _refuse("The URL is malformed", param) from None
        for _ in range(_MAX_REDIRECTS + 1):
            host = target.raw_host
            assert host is not None and target.port is not None  # _check_url ensured both
            addresses = await self._vet_host(host, target.port, param)
            location = await self._get(target, addresses, param, lease)
            if isinstance(location, Media):
                return location
            try:
                next_url = target.join(URL(location))
            except (TypeError, ValueError):
                raise _refuse("The URL redirected to an invalid location", param) from None
            target = self._check_url(next_url, param, redirected=True)
        raise _refuse(f"The URL redirected more than {_MAX_REDIRECTS} times", param)

    def _check_url(self, parsed: URL, param: str, *, redirected: bool = False) -> URL:
        subject = "The URL's redirect target" if redirected else "The URL"
        scheme = parsed.scheme.lower()
        if scheme == "http" and not self._policy.allow_http:
            raise _refuse(f"{subject} uses plain http://; only https:// URLs are fetched", param)
        if scheme not in ("http", "https"):
            expected = "an https://" if redirected else "an https:// or data:"
            raise _refuse(f"{subject} is not {expected} URL", param)
        if not parsed.raw_host or parsed.port is None:
            raise _refuse(f"{subject} has no host", param)
        if parsed.user is not None or parsed.password is not None:
            raise _refuse(f"{subject} contains credentials, which are not accepted", param)
        return parsed

    async def _vet_host(self, host: str, port: int, param: str) -> tuple[str, ...]:
        """Resolve once and refuse unless every address may be dialled; the answer is then pinned."""
        literal = host.strip("[]")
        try:
            addresses = [str(ipaddress.ip_address(literal))]
        except ValueError:
            try:
                addresses = await self._resolve(host, port)
            except (OSError, UnicodeError):
                raise _refuse(f"The URL's host '{host}' could not be resolved", param) from None
        parsed: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = []
        for address in addresses:
            try:
                parsed.append(ipaddress.ip_address(address.split("%", 1)[0]))
            except ValueError:
                raise _refuse(f"The URL's host '{host}' resolved to an invalid address", param) from None
        if not parsed:
            raise _refuse(f"The URL's host '{host}' could not be resolved", param)
        if not self._policy.allow_private_addresses and not all(_is_public(ip) for ip in parsed):
            # The address itself is not echoed: it would map the gateway's internal network.
            raise _refuse(f"The URL's host '{host}' is a private, local or reserved network address", param)
        return tuple(dict.fromkeys(addresses))

    async def _get(self, url: URL, addresses: Sequence[str], param: str, lease: MediaLease) -> Media | str:
        """One hop, dialling only the vetted `addresses`: the media, or the Location of a redirect.

        A refusal raised inside the reply's block closes its connection instead of reading the rest.
        """
        headers = {"Accept": self._accept, "Accept-Encoding": "identity", "User-Agent": _USER_AGENT}
        try:
            async with self._client().request("GET", str(url), headers, connect_to=addresses) as response:
                if response.status in _REDIRECT_STATUSES:
                    location = response.headers.get("Location")
                    if not location:
                        raise _refuse("The URL redirected without a Location", param)
                    return location
                if response.status != 200:
                    raise _refuse(f"The URL answered with HTTP status {response.status}", param)
                encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
                if encoding not in ("", "identity"):
                    raise _refuse(f"The URL answered with unsupported Content-Encoding '{encoding}'", param)
                declared = _normalize_type(response.headers.get("Content-Type", ""))
                if declared not in _UNTYPED:
                    self._check_type(declared, param)
                length = response.content_length
                if length is not None and length > self._policy.max_bytes:
                    raise self._too_large(param)
                data = await self._read_capped(response, param, lease)
        except (InvalidRequest, TimeoutError):
            raise  # a timeout is the whole fetch's, reported with its limit by _fetch_one
        except ProxyError as error:
            raise _refuse(
                f"The URL could not be fetched: the gateway's proxy {error.reason}", param
            ) from None
        except ConnectError as error:
            if isinstance(error.__cause__, ssl.SSLCertVerificationError):
                raise _refuse("The URL's TLS certificate could not be verified", param) from None
            raise _refuse("The URL's host could not be reached", param) from None
        except ReplyError:
            raise _refuse("The URL's response body was cut short or malformed", param) from None
        except InvalidURL:
            raise _refuse("The URL is malformed", param) from None
        except TransportError as error:
            raise _refuse(f"The URL could not be fetched ({type(error).__name__})", param) from None
        media_type = declared
        if declared in _UNTYPED:
            media_type = sniff_media_type(data) or declared or "application/octet-stream"
            self._check_type(media_type, param)
        return Media(data=data, media_type=media_type)

    async def _read_capped(self, response: Reply, param: str, lease: MediaLease) -> bytearray:
        """The body, counted against the URL's cap and the request's budget as it arrives.

        A declared length is counted at once and read into one buffer of that size (no copy when
        it is done); an undeclared one is counted chunk by chunk. On any failure the buffer is
        emptied at once: the exception's traceback keeps this frame, and with it the buffer, alive
        in a reference cycle until the garbage collector happens by.
        """
        length = response.content_length
        body = bytearray()
        try:
            if length is not None:
                lease.take(length, param)
                body = bytearray(length)
                filled = 0
                with memoryview(body) as view:
                    async for chunk in response.content.iter_chunked(_CHUNK_BYTES):
                        end = filled + len(chunk)
                        if end > length:
                            raise _refuse("The URL's response body is longer than it declared", param)
                        view[filled:end] = chunk
                        filled = end
                if filled != length:
                    raise _refuse("The URL's response body was cut short or malformed", param)
            else:
                async for chunk in response.content.iter_chunked(_CHUNK_BYTES):
                    body += chunk
                    lease.take(len(chunk), param)
                    if len(body) > self._policy.max_bytes:
                        raise self._too_large(param)
        except BaseException:
            del body[:]
            raise
        if not body:
            raise _refuse("The URL answered with an empty body", param)
        return body

    def _too_large(self, param: str) -> InvalidRequest:
        return _refuse(f"The URL's content is larger than the {self._policy.max_bytes}-byte limit", param)

    def _check_type(self, media_type: str, param: str) -> None:
        if media_type not in self._allowed_types:
            allowed = ", ".join(self._policy.allowed_content_types)
            reason = f"The content type '{media_type}' is not supported (expected one of: {allowed})"
            raise _refuse(reason, param)
