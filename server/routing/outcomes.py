"""The one error a request ends with when no deployment served it."""

from __future__ import annotations

from collections.abc import Sequence

from server.errors import (
    GatewayError,
    InvalidRequest,
    RateLimited,
    RequestTimeout,
    UpstreamError,
)
from server.routing.catalogue import Deployment

__all__ = ["final_error", "tried_summary"]

_MAX_LISTED = 8


def tried_summary(failures: Sequence[tuple[Deployment, GatewayError]], skipped: Sequence[Deployment]) -> str:
    """What was tried, as "provider/model (reason)" items: provider and model names, never keys."""
    parts = [f"{d.key} ({_reason(error)})" for d, error in failures[:_MAX_LISTED]]
    if len(failures) > _MAX_LISTED:
        parts.append(f"{len(failures) - _MAX_LISTED} more")
    parts.extend(f"{d.key} (circuit open, skipped)" for d in skipped[:_MAX_LISTED])
    return "; ".join(parts)


def final_error(
    model: str,
    failures: Sequence[tuple[Deployment, GatewayError]],
    skipped: Sequence[Deployment],
    deadline_passed: bool,
) -> GatewayError:
    """429 when every attempt was rate limited, 408 when they all timed out or the deadline passed,
    the deployments' own 400 when none could express the request, else 502."""
    tried = tried_summary(failures, skipped)
    suffix = f" Tried: {tried}." if tried else ""
    errors = [error for _, error in failures]
    if errors and all(isinstance(e, RateLimited) for e in errors):
        waits = [e.retry_after for e in errors if e.retry_after is not None]
        return RateLimited(
            f"Every provider of model '{model}' is rate limiting requests.{suffix}",
            retry_after=min(waits) if waits else None,
        )
    if deadline_passed or (errors and all(isinstance(e, RequestTimeout) for e in errors)):
        return RequestTimeout(f"The request to model '{model}' timed out.{suffix}")
    if errors and all(isinstance(e, InvalidRequest) for e in errors):
        first = errors[0]
        return InvalidRequest(first.message, param=first.param, code=first.code)
    if not errors:
        return UpstreamError(f"Model '{model}' is unavailable: every provider's circuit is open.{suffix}")
    return UpstreamError(f"Every provider of model '{model}' failed.{suffix}")


def _reason(error: GatewayError) -> str:
    if error.upstream_status is not None:
        return f"HTTP {error.upstream_status}"
    if isinstance(error, RequestTimeout):
        return "timed out"
    if isinstance(error, RateLimited):
        return "rate limited"
    if isinstance(error, InvalidRequest):
        return f"unsupported: {error.param}" if error.param else "unsupported"
    return error.message.rstrip(".")
