"""The transport seam: every outbound HTTP call (upstreams, media, moderation), with its pool,
timeouts, TLS, proxies and one tree of errors. See base.py for the interface, errors.py for the tree.
"""

from server.providers.transport.base import BodyStream, Reply, Transport
from server.providers.transport.errors import (
    ClientClosed,
    ConnectError,
    ConnectTimeout,
    InvalidURL,
    PoolTimeout,
    ProxyError,
    ReadTimeout,
    ReplyError,
    ReplyTooLarge,
    ServerDisconnected,
    TransportError,
    TransportTimeout,
)
from server.providers.transport.http1 import Http1Client
from server.providers.transport.proxies import Proxy, ProxyRoutes, ProxySettingError, proxy_routes

__all__ = [
    "BodyStream",
    "ClientClosed",
    "ConnectError",
    "ConnectTimeout",
    "Http1Client",
    "InvalidURL",
    "PoolTimeout",
    "Proxy",
    "ProxyError",
    "ProxyRoutes",
    "ProxySettingError",
    "ReadTimeout",
    "Reply",
    "ReplyError",
    "ReplyTooLarge",
    "ServerDisconnected",
    "Transport",
    "TransportError",
    "TransportTimeout",
    "proxy_routes",
]
