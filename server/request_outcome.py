"""What served a request and what it consumed, written onto its context for logs and metrics."""

from __future__ import annotations

from server.accounts.metering import Consumption
from server.providers.base import RequestContext
from server.routing.route import Route


def record_outcome(ctx: RequestContext, route: Route, consumption: Consumption, cost: float | None) -> None:
    outcome = ctx.outcome
    outcome.model = route.entry.id
    outcome.provider = route.deployment.provider
    outcome.prompt_tokens = consumption.prompt_tokens
    outcome.completion_tokens = consumption.completion_tokens
    outcome.cached_tokens = consumption.cached_tokens
    outcome.reasoning_tokens = consumption.reasoning_tokens
    outcome.cost = cost
