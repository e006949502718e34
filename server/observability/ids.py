"""Ids for requests and reservations: unique, cheap, and made without a system call.

`secrets.token_hex` reads the kernel's random source on every call; under load that call also
lets the GIL go to the accounting threads, and py-spy put each one at ~3% of a REST chat request.
A random per-process prefix (renewed in each forked worker) and a counter are just as unique.
These ids only need to be unique, not unguessable: nothing is granted to whoever knows one.
"""

from __future__ import annotations

import itertools
import os

__all__ = ["new_request_id", "new_reservation_id"]

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
