"""Which upstream failures are worth another try, and how long to wait before it."""

from __future__ import annotations

import random

from server.config import RetryConfig
from server.errors import GatewayError, InvalidRequest, RateLimited, RequestTimeout, UpstreamError

__all__ = ["backoff_delay", "counts_against_deployment", "is_retryable", "may_fail_over"]

# A deployment that cannot express a parameter says so with this code; another deployment may.
UNSUPPORTED_PARAMETER = "unsupported_parameter"


def counts_against_deployment(error: GatewayError) -> bool:
    """Whether the failure says the deployment is unhealthy (its breaker counts it)."""
    return isinstance(error, (UpstreamError, RequestTimeout, RateLimited))


def may_fail_over(error: GatewayError) -> bool:
    """Whether another deployment could succeed where this one failed.

    A client error (a bad request) would fail everywhere, so it ends the request at once; a
    parameter this deployment's protocol cannot express may be fine elsewhere.
    """
    if counts_against_deployment(error):
        return True
    return isinstance(error, InvalidRequest) and error.code == UNSUPPORTED_PARAMETER


def is_retryable(error: GatewayError) -> bool:
    """Worth retrying on the same deployment: connect errors, 408, 409, 429 and 5xx."""
    status = error.upstream_status
    if status is not None:
        return status in (408, 409, 429) or status >= 500
    # No HTTP status: the connection failed, the reply was cut or garbled, or a timeout fired.
    return counts_against_deployment(error)


def backoff_delay(
    policy: RetryConfig, retry: int, retry_after: float | None, rng: random.Random
) -> float | None:
    """Seconds before retry number `retry` (1-based), or None when the upstream asks to wait longer
    than `max_retry_after` (then the next deployment is tried instead)."""
    if retry_after is not None:
        return retry_after if retry_after <= policy.max_retry_after else None
    ceiling = min(policy.max_delay, policy.base_delay * (2 ** (retry - 1)))
    # Equal jitter: at least half the exponential step, so retries never stampede back at once.
    return ceiling / 2 + rng.uniform(0, ceiling / 2)
