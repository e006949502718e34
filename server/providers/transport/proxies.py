"""Which HTTP proxy a call goes through: the environment's `HTTPS_PROXY` / `HTTP_PROXY` / `NO_PROXY`,
or a provider's own `proxy:` setting.

- `HTTPS_PROXY` serves https upstreams and `HTTP_PROXY` plain http ones; each is read in lower case
  first (`https_proxy`), as curl and Python's urllib do. A value without a scheme is `http://`.
- `NO_PROXY` is a comma-separated list: `*` (nothing is proxied), a host name (it and its
  subdomains; a leading `.` or `*.` is the same), an IP address, an IP network in CIDR form
  (`10.0.0.0/8`), each optionally with `:port`.
- A provider's `proxy: http://[user:pass@]host:port` replaces the environment for that provider's
  calls (NO_PROXY does not apply to it); `proxy: none` sends them direct whatever the environment says.

Only `http://` proxies are spoken to: a plain http upstream is reached with absolute-form requests,
an https one through a CONNECT tunnel with TLS end to end. Credentials in a proxy URL go out as
`Proxy-Authorization: Basic`; they are never part of what a `Proxy` shows, repeats or logs, and no
error here quotes the value it refuses.
"""

from __future__ import annotations

import base64
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

__all__ = [
    "DIRECT",
    "Proxy",
    "ProxyRoutes",
    "ProxySettingError",
    "parse_proxy_url",
    "proxy_routes",
]

# `proxy: none` in a provider's settings: no proxy, whatever the environment says.
DIRECT = "none"
_DEFAULT_PORT = 80

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class ProxySettingError(ValueError):
    """A proxy URL that cannot be used; the message never quotes it (it may hold a password)."""


@dataclass(frozen=True, slots=True)
class Proxy:
    """An HTTP proxy: where it listens, and the `Proxy-Authorization` value it gets, if any."""

    host: str
    port: int
    authorization: str | None = field(default=None, repr=False)
    # The password alone, for a log scrubber that knows secrets by value.
    password: str | None = field(default=None, repr=False)

    @property
    def shown(self) -> str:
        """The proxy as people may see it: scheme, host and port, never the credentials."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def __str__(self) -> str:
        return self.shown


def parse_proxy_url(value: str) -> Proxy:
    """`http://[user[:password]@]host[:port][/]` (the scheme may be left out) as a Proxy."""
    text = value.strip()
    if "://" not in text:
        text = "http://" + text
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise ProxySettingError("is not a valid proxy URL (expected http://host:port)") from None
    if parts.scheme.lower() != "http":
        raise ProxySettingError(
            f"uses {parts.scheme}://; only http:// proxies are supported (https upstreams are"
            " tunnelled through them with CONNECT)"
        )
    if not parts.hostname:
        raise ProxySettingError("has no host (expected http://host:port)")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ProxySettingError("has a path; a proxy URL is http://host:port")
    authorization = password = None
    if parts.username is not None:
        user, password = unquote(parts.username), unquote(parts.password or "")
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        authorization = f"Basic {token}"
    return Proxy(parts.hostname, port or _DEFAULT_PORT, authorization, password or None)


@dataclass(frozen=True, slots=True)
class _Exemption:
    """One NO_PROXY entry: a host suffix or an IP network, and a port if it names one."""

    host: str | None
    network: IpNetwork | None
    port: int | None

    def covers(
        self, host: str, address: ipaddress.IPv4Address | ipaddress.IPv6Address | None, port: int
    ) -> bool:
        if self.port is not None and self.port != port:
            return False
        if self.network is not None:
            return address is not None and address.version == self.network.version and address in self.network
        assert self.host is not None
        return host == self.host or host.endswith("." + self.host)


def _exemption(entry: str) -> _Exemption | None:
    entry = entry.strip().lower()
    if entry.startswith("*."):
        entry = entry[2:]
    entry = entry.lstrip(".")
    if not entry:
        return None
    port: int | None = None
    if entry.startswith("["):  # [v6]:port
        host, _, rest = entry[1:].partition("]")
        if rest.startswith(":") and rest[1:].isdigit():
            port = int(rest[1:])
        entry = host
    elif entry.count(":") == 1:
        host, _, maybe_port = entry.partition(":")
        if maybe_port.isdigit():
            entry, port = host, int(maybe_port)
    try:
        return _Exemption(None, ipaddress.ip_network(entry, strict=False), port)
    except ValueError:
        return _Exemption(entry.rstrip("."), None, port)


@dataclass(frozen=True, slots=True)
class ProxyRoutes:
    """The proxy for each upstream scheme, and the hosts that go direct anyway."""

    http: Proxy | None = None
    https: Proxy | None = None
    exempt_all: bool = False
    exemptions: tuple[_Exemption, ...] = ()

    @property
    def any(self) -> bool:
        return (self.http is not None or self.https is not None) and not self.exempt_all

    def proxy_for(self, scheme: str, host: str, port: int) -> Proxy | None:
        """The proxy a call to `scheme://host:port` goes through, or None for a direct one."""
        proxy = self.https if scheme == "https" else self.http
        if proxy is None or self.exempt_all:
            return None
        if self.exemptions:
            name = host.strip("[]").rstrip(".").lower()
            try:
                address: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(name)
            except ValueError:
                address = None
            if any(exemption.covers(name, address, port) for exemption in self.exemptions):
                return None
        return proxy

    def secrets(self) -> tuple[str, ...]:
        return tuple(p.password for p in (self.http, self.https) if p is not None and p.password)


def _variable(environ: Mapping[str, str], name: str) -> tuple[str, str] | None:
    for spelled in (name.lower(), name.upper()):
        value = environ.get(spelled, "").strip()
        if value:
            return spelled, value
    return None


def _from_environment(environ: Mapping[str, str]) -> ProxyRoutes:
    proxies: dict[str, Proxy | None] = {"http": None, "https": None}
    for scheme in proxies:
        found = _variable(environ, f"{scheme}_proxy")
        if found is not None:
            name, value = found
            try:
                proxies[scheme] = parse_proxy_url(value)
            except ProxySettingError as error:
                raise ProxySettingError(f"{name} {error}") from None
    no_proxy = _variable(environ, "no_proxy")
    entries = [entry for entry in (no_proxy[1] if no_proxy else "").split(",") if entry.strip()]
    exempt_all = any(entry.strip() == "*" for entry in entries)
    exemptions = tuple(e for e in map(_exemption, entries) if e is not None and e.host != "*")
    return ProxyRoutes(proxies["http"], proxies["https"], exempt_all, exemptions)


def proxy_routes(setting: str | None, environ: Mapping[str, str]) -> ProxyRoutes:
    """The routes for a provider whose `proxy:` is `setting`: the environment's when it is unset,
    none at all for `none`, else that one proxy for every call (ProxySettingError if unusable)."""
    if setting is None:
        return _from_environment(environ)
    if setting.strip().lower() == DIRECT:
        return ProxyRoutes()
    try:
        proxy = parse_proxy_url(setting)
    except ProxySettingError as error:
        raise ProxySettingError(f"proxy {error}") from None
    return ProxyRoutes(proxy, proxy)
