"""Which catalogue models a gateway key may call."""

from __future__ import annotations

from server.accounts.keys import KeyRecord
from server.routing.catalogue import CatalogueEntry


def may_use(key: KeyRecord, entry: CatalogueEntry) -> bool:
    """Whether `key` may call `entry`'s model: every model, unless the key lists the ones it may."""
    return not key.allowed_models or entry.id in key.allowed_models
