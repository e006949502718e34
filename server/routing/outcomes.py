"""The one error a request ends with when no deployment served it."""

from __future__ import annotations

from collections.abc import Sequence

from server.errors import (
    GatewayError,
    InvalidRequest,
    RateLimited,
    RequestTimeout,
    UpstreamError,
    UpstreamOverloaded,
)
from server.routing.catalogue import Deployment

__all__ = ["final_error", "tried_summary"]

_MAX_LISTED = 8


def tried_summary(failures: Sequence[tuple[Deployment, GatewayError]], skipped: Sequence[Deployment]) -> str:
    """What was tried, as "provider/model (reason)" items: provider and model names, never keys.

    The reason is the attempt's own message (what failed and the call tried), so that a request
    with one deployment still tells the client why; retries that failed alike are counted once.
    """
    groups: list[tuple[str, int]] = []
    for d, error in failures:
        item = f"{d.key} ({_reason(error)})"
        if groups and groups[-1][0] == item:
            groups[-1] = (item, groups[-1][1] + 1)
        else:
            groups.append((item, 1))
    parts = [item if count == 1 else f"{item} x{count}" for item, count in groups[:_MAX_LISTED]]
    if len(groups) > _MAX_LISTED:
        parts.append(f"{sum(count for _, count in groups[_MAX_LISTED:])} more")
    parts.extend(f"{d.key} (circuit open, skipped)" for d in skipped[:_MAX_LISTED])
    return "; ".join(parts)


def final_error(
    model: str,
    failures: Sequence[tuple[Deployment, GatewayError]],
    skipped: Sequence[Deployment],
    deadline_passed: bool,
) -> GatewayError:
    """429 when every attempt was rate limited, 408 when they all timed out or the deadline passed,
    the deployments' own 400 when none could express the request, else 502: overloaded (a
    temporary state worth a retry) when every deployment said so or had its circuit open."""
    tried = tried_summary(failures, skipped)
    suffix = f" Tried: {tried}." if tried else ""
    errors = [error for _, error in failures]
    # "Every provider" only when there was more than one to try.
    every = (
        "Every provider of model"
        if len({d.key for d, _ in failures} | {d.key for d in skipped}) > 1
        else "The provider of model"
    )
    if errors and all(isinstance(e, RateLimited) for e in errors):
        waits = [e.retry_after for e in errors if e.retry_after is not None]
        return RateLimited(
            f"{every} '{model}' is rate limiting requests.{suffix}",
            retry_after=min(waits) if waits else None,
        )
    if deadline_passed or (errors and all(isinstance(e, RequestTimeout) for e in errors)):
        return RequestTimeout(f"The request to model '{model}' timed out.{suffix}")
    if errors and all(isinstance(e, InvalidRequest) for e in errors):
        first = errors[0]
        return InvalidRequest(first.message, param=first.param, code=first.code)
    if not errors:
        return UpstreamOverloaded(
            f"Model '{model}' is unavailable: every provider's circuit is open.{suffix}"
        )
    if all(isinstance(e, UpstreamOverloaded) for e in errors):
        waits = [e.retry_after for e in errors if e.retry_after is not None]
        return UpstreamOverloaded(
            f"{every} '{model}' is overloaded.{suffix}", retry_after=min(waits) if waits else None
        )
    return UpstreamError(f"{every} '{model}' failed.{suffix}")


def _reason(error: GatewayError) -> str:
    if isinstance(error, InvalidRequest):
        return f"unsupported: {error.param}" if error.param else "unsupported"
    return error.message.rstrip(".")
