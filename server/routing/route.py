"""A route: the deployment of a catalogue entry that one attempt calls, with its provider."""

from __future__ import annotations

from dataclasses import dataclass

from server.providers.base import Provider
from server.routing.catalogue import CatalogueEntry, Deployment

__all__ = ["Route"]


@dataclass(frozen=True, slots=True)
class Route:
    entry: CatalogueEntry
    deployment: Deployment
    provider: Provider
