"""Ids for requests and reservations: unique, cheap, and made without a system call.

`secrets.token_hex` reads the kernel's random source on every call; under load that call also
lets the GIL go to the accounting threads, and py-spy put each one at ~3% of a REST chat request.
A random per-process prefix (renewed in each forked worker) and a counter are just as unique.
These ids only need to be unique, not unguessable: nothing is granted to whoever knows one.
"""

from __future__ import annotations

import itertools
import os

__all__ = [
    "BRIDGE_TOKEN",
    "MAX_CLIENT_REQUEST_ID",
    "client_request_id",
    "new_holder_id",
    "new_request_id",
    "new_reservation_id",
]

# The longest client-supplied request id the gateway echoes, logs and forwards.
MAX_CLIENT_REQUEST_ID = 128
# Proves to the servicers that a call's `x-request-id` was minted by this gateway's own bridge, not
# chosen by a gRPC caller (whose id would then name ledger rows). Made once at import, so forked
# workers share it; it never leaves the process's own bridge-to-server calls.
BRIDGE_TOKEN = os.urandom(16).hex()

_prefix = ""
_counter: itertools.count[int] = itertools.count()


def _reseed() -> None:
    # 48 random bits per process, then a 48-bit counter: 24 hex digits after the kind's prefix.
    global _prefix, _counter
    _prefix, _counter = os.urandom(6).hex(), itertools.count()


_reseed()
os.register_at_fork(after_in_child=_reseed)


def new_request_id() -> str:
    return f"req_{_prefix}{next(_counter) & 0xFFFFFFFFFFFF:012x}"


def new_reservation_id() -> str:
    return f"res_{_prefix}{next(_counter) & 0xFFFFFFFFFFFF:012x}"


def client_request_id(value: str | None) -> str | None:
    """A client's own request id if it is short printable ASCII (kept for correlation), else None.

    Anything else (non-ASCII, control bytes, too long) is dropped: it could not travel in a header,
    in gRPC metadata or in a database row unchanged, and it never names a ledger record anyway.
    """
    if value and len(value) <= MAX_CLIENT_REQUEST_ID and value.isascii() and value.isprintable():
        return value
    return None


def new_holder_id() -> str:
    """The name an account store puts on its credit reservations (one per store, so per process)."""
    return f"holder_{os.urandom(12).hex()}"
