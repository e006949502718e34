"""Start-up failures as one clear sentence: busy ports and unreachable databases.

The CLI prints a `StartupError` as one line and exits 2. Ports are checked before anything is
loaded or opened, so a busy port fails at once and leaves nothing behind; a bind that still fails
later (another process took the port in between) is reported the same way.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit, urlunsplit

__all__ = ["StartupError", "database_label", "ensure_ports_free", "port_in_use"]


class StartupError(Exception):
    """The gateway cannot start; the message says why and what to change, in one line."""


def port_in_use(what: str, host: str, port: int, setting: str) -> StartupError:
    return StartupError(
        f"the {what} port {host}:{port} is already in use by another process "
        f"(stop it, or choose another port with {setting})"
    )


def ensure_ports_free(host: str, ports: Iterable[tuple[str, int, str]], *, reuse_port: bool) -> None:
    """Raise StartupError for the first of `ports` ((what, port, setting)) that is in use.

    The probe binds as the real servers do (SO_REUSEADDR, and SO_REUSEPORT when workers share the
    ports), so a sibling worker holding the port does not count as in use. Port 0 is never busy.
    Errors other than "in use" are left for the real bind to report.
    """
    for what, port, setting in ports:
        if port and _busy(host, port, reuse_port):
            raise port_in_use(what, host, port, setting)


def _busy(host: str, port: int, reuse_port: bool) -> bool:
    try:
        addresses = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError:
        return False
    for family, kind, protocol, _, address in addresses:
        with socket.socket(family, kind, protocol) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuse_port and hasattr(socket, "SO_REUSEPORT"):
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            try:
                probe.bind(address)
            except OSError as error:
                if error.errno == errno.EADDRINUSE:
                    return True
    return False


def database_label(database_url: str | None, sqlite_path: str) -> str:
    """Where the accounts live, for messages: a Postgres URL without its password, or the SQLite file."""
    if not database_url:
        return sqlite_path
    parts = urlsplit(database_url)
    if parts.password is None:
        return database_url
    netloc = parts.netloc.rpartition("@")[2]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))
