"""The candidate deployments of one model for one request, filtered and in try order."""

from __future__ import annotations

import random

from google.protobuf.message import Message

from server.routing.catalogue import CatalogueEntry, Deployment
from server.routing.selection import eligible, rank
from server.routing.stats import LatencyStats
from siraya.router.v1 import common_pb2


def candidates(
    entry: CatalogueEntry,
    routing: common_pb2.Routing,
    known_providers: set[str] | frozenset[str],
    *,
    params: Message | None = None,
    stats: LatencyStats | None = None,
    rng: random.Random | None = None,
) -> list[Deployment]:
    """Eligible deployments in try order; empty when the filters leave none."""
    preferences = routing.provider
    chosen = eligible(entry.deployments, preferences, known_providers, params)
    return rank(chosen, preferences, entry.kind, stats, rng)
