"""Choose the deployment that serves a request, honouring the caller's provider preferences.

The foundation routes to the first eligible deployment; fallbacks, retries and breakers build on
`candidates`.
"""

from __future__ import annotations

from server.errors import NoAvailableProvider
from server.routing.catalogue import CatalogueEntry, Deployment
from siraya.router.v1 import common_pb2


def candidates(entry: CatalogueEntry, routing: common_pb2.Routing, known_providers: set[str]) -> list[Deployment]:
    """Eligible deployments in preference order; NoAvailableProvider when filters leave none."""
    preferences = routing.provider
    deployments = [d for d in entry.deployments if d.provider in known_providers]
    if preferences.only:
        allowed = set(preferences.only)
        deployments = [d for d in deployments if d.provider in allowed]
    if preferences.ignore:
        ignored = set(preferences.ignore)
        deployments = [d for d in deployments if d.provider not in ignored]
    if preferences.order:
        rank = {name: index for index, name in enumerate(preferences.order)}
        deployments.sort(key=lambda d: rank.get(d.provider, len(rank)))
    if not deployments:
        raise NoAvailableProvider(f"No provider for model '{entry.id}' meets the routing requirements.")
    return deployments
