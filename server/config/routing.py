"""The `routing:` section and the per-model overrides of it: retries, circuit breakers, timeouts, hedging.

A model may set any of `retry`, `breaker`, `timeouts`, `hedging`; each field it sets replaces the
gateway-wide value from `routing:`, and the rest are inherited (`ResilienceConfig.over`).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from server.config.base import NonNegative, PositiveInt, RedisUrl, Settings

__all__ = [
    "BreakerConfig",
    "HedgingConfig",
    "ResilienceConfig",
    "RetryConfig",
    "RoutingConfig",
    "TimeoutConfig",
]


class RetryConfig(Settings):
    """Retries of one deployment on connect errors, 408, 409, 429 and 5xx."""

    # Attempts per deployment, the first included: retrying the same deployment is opt-in, while
    # failing over to the model's other deployments always happens.
    max_attempts: PositiveInt = 1
    base_delay: NonNegative = 0.2
    max_delay: NonNegative = 5.0
    # The longest upstream Retry-After honoured; a longer one moves on to the next deployment.
    max_retry_after: NonNegative = 10.0


class BreakerConfig(Settings):
    """When a deployment's circuit opens, and how long it rests before a half-open probe."""

    enabled: bool = True
    consecutive_failures: PositiveInt = 5
    failure_rate: Annotated[float, Field(gt=0, le=1)] = 0.5
    # Failure rate is judged over this many seconds, once `min_requests` were seen in it.
    window: NonNegative = 60.0
    min_requests: PositiveInt = 20
    cooldown: NonNegative = 30.0


class TimeoutConfig(Settings):
    """Seconds; None means no limit. Connecting is bounded by the provider's `connect_timeout`."""

    first_token: NonNegative | None = None
    idle: NonNegative | None = None
    total: NonNegative | None = None


class HedgingConfig(Settings):
    """Start the next deployment when no first token arrived after `delay` seconds."""

    enabled: bool = False
    delay: NonNegative = 2.0
    max_hedges: PositiveInt = 1


class ResilienceConfig(Settings):
    """One routing policy. RoutingConfig and ModelConfig extend it: in the file its four sections sit
    directly under `routing:` and under each model."""

    retry: RetryConfig = RetryConfig()
    breaker: BreakerConfig = BreakerConfig()
    timeouts: TimeoutConfig = TimeoutConfig()
    hedging: HedgingConfig = HedgingConfig()

    def policy(self) -> ResilienceConfig:
        """Just the four sections, as a plain ResilienceConfig."""
        return ResilienceConfig(
            retry=self.retry, breaker=self.breaker, timeouts=self.timeouts, hedging=self.hedging
        )

    def over(self, base: ResilienceConfig) -> dict[str, Any]:
        """The four sections of `base`, each with the fields this policy's file entry set replaced."""
        merged: dict[str, Any] = {}
        for name in ResilienceConfig.model_fields:
            own, inherited = getattr(self, name), getattr(base, name)
            merged[name] = inherited.model_copy(
                update={key: getattr(own, key) for key in own.model_fields_set}
            )
        return merged


class RoutingConfig(ResilienceConfig):
    """Gateway-wide routing: defaults every model inherits, and where breaker state is shared."""

    # With a Redis URL, circuit breakers are shared by every replica; else they live in-process.
    redis_url: RedisUrl | None = None
    # How many prompt prefixes the prompt-cache affinity map remembers (server/routing/affinity.py).
    prompt_cache_affinity_entries: PositiveInt = 100_000

    @property
    def defaults(self) -> ResilienceConfig:
        return self.policy()
