"""Which deployments may serve a request, and in what order they are tried.

Filters first (`only`, `ignore`, `max_price`, `require_parameters`), then order: the caller's
`order` list, then `sort` (price, latency or throughput) or, by default, a weighted random shuffle.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from functools import lru_cache

from google.protobuf.message import Message

from server.config import PricingConfig
from server.providers.param_policy import (
    CHAT_FIELDS,
    CONTENT_PART_KINDS,
    ParameterSupport,
    unsupported_chat_fields,
)
from server.routing.catalogue import Deployment
from server.routing.stats import LatencyStats
from siraya.router.v1 import chat_pb2, common_pb2

__all__ = ["eligible", "price_of", "rank", "why_none"]

_KNOWN_PARAMETERS = CHAT_FIELDS | CONTENT_PART_KINDS


def _named(deployment: Deployment, names: Sequence[str]) -> bool:
    """Whether a preference list names this deployment, by provider or as "provider/upstream_model"."""
    return deployment.provider in names or deployment.key in names


def eligible(
    deployments: Sequence[Deployment],
    preferences: common_pb2.ProviderPreferences,
    known_providers: set[str] | frozenset[str],
    params: Message | None = None,
) -> list[Deployment]:
    """The deployments that pass every filter, in catalogue order."""
    chosen = [d for d in deployments if d.provider in known_providers]
    if preferences.only:
        chosen = [d for d in chosen if _named(d, preferences.only)]
    if preferences.ignore:
        chosen = [d for d in chosen if not _named(d, preferences.ignore)]
    if preferences.HasField("max_price"):
        ceiling = preferences.max_price
        chosen = [d for d in chosen if _within(d.pricing, ceiling)]
    if preferences.require_parameters and isinstance(params, chat_pb2.ChatCompletionParams):
        chosen = [
            d
            for d in chosen
            if not unsupported_chat_fields(params, _support(d.supported_parameters), require_parameters=True)
        ]
    return chosen


def why_none(
    deployments: Sequence[Deployment],
    preferences: common_pb2.ProviderPreferences,
    known_providers: set[str] | frozenset[str],
    params: Message | None = None,
) -> str:
    """Why `eligible` and `rank` left no deployment: the filter that removed the last one, named as
    the request wrote it, and any provider the request names that this gateway does not have.

    Only on the error path: it replays the filters one at a time, where `eligible` runs them at once.
    """
    serving = ", ".join(d.key for d in deployments) or "nothing"
    reasons: list[str] = []
    chosen = [d for d in deployments if d.provider in known_providers]
    steps: list[tuple[str, Callable[[Deployment], bool]]] = []
    if preferences.only:
        steps.append((f"provider.only {list(preferences.only)}", lambda d: _named(d, preferences.only)))
    if preferences.ignore:
        steps.append(
            (f"provider.ignore {list(preferences.ignore)}", lambda d: not _named(d, preferences.ignore))
        )
    if preferences.HasField("max_price"):
        steps.append(("provider.max_price", lambda d: _within(d.pricing, preferences.max_price)))
    if preferences.require_parameters and isinstance(params, chat_pb2.ChatCompletionParams):
        gaps: set[str] = set()

        def suits(d: Deployment) -> bool:
            missing = unsupported_chat_fields(
                params, _support(d.supported_parameters), require_parameters=True
            )
            gaps.update(missing)
            return not missing

        steps.append(("provider.require_parameters", suits))
    if not chosen:
        reasons.append(f"none of its providers is configured on this gateway (it is served by: {serving})")
    for label, keep in steps:
        if not chosen:
            break
        chosen = [d for d in chosen if keep(d)]
        if not chosen:
            detail = (
                f": no deployment supports {', '.join(sorted(gaps))}" if label.endswith("parameters") else ""
            )
            reasons.append(f"{label} removed every deployment{detail} (it is served by: {serving})")
    no_fallbacks = preferences.HasField("allow_fallbacks") and not preferences.allow_fallbacks
    if (
        chosen
        and preferences.order
        and no_fallbacks
        and not any(_named(d, preferences.order) for d in chosen)
    ):
        reasons.append(
            f"provider.order {list(preferences.order)} names none of its deployments and"
            f" provider.allow_fallbacks is false (it is served by: {serving})"
        )
    unknown = [
        name
        for name in (*preferences.only, *preferences.ignore, *preferences.order)
        if name.partition("/")[0] not in known_providers
    ]
    if unknown:
        names = ", ".join(f"'{name}'" for name in dict.fromkeys(unknown))
        reasons.append(
            f"{names} {'is not a provider' if len(unknown) == 1 else 'are not providers'} of this gateway"
            f" (its providers: {', '.join(sorted(known_providers))})"
        )
    return "; ".join(reasons) or f"no deployment is left (it is served by: {serving})"


def rank(
    deployments: list[Deployment],
    preferences: common_pb2.ProviderPreferences,
    kind: str,
    stats: LatencyStats | None = None,
    rng: random.Random | None = None,
) -> list[Deployment]:
    """`deployments` in the order they should be tried."""
    ordered = _sorted(deployments, preferences.sort if preferences.HasField("sort") else "", kind, stats, rng)
    no_fallbacks = preferences.HasField("allow_fallbacks") and not preferences.allow_fallbacks
    if preferences.order:
        names = list(preferences.order)
        first = [d for d in ordered if _named(d, names)]
        first.sort(key=lambda d: _position(d, names))
        if no_fallbacks:
            return first
        return first + [d for d in ordered if not _named(d, names)]
    if no_fallbacks:
        return ordered[:1]
    return ordered


def price_of(pricing: PricingConfig, kind: str) -> float | None:
    """What ranks deployments by price: per image, per video second, else input plus output per million."""
    if kind == "image":
        return pricing.per_image
    if kind == "video":
        return pricing.per_video_second
    parts = [p for p in (pricing.input_per_million, pricing.output_per_million) if p is not None]
    return sum(parts) if parts else None


def _position(deployment: Deployment, names: list[str]) -> int:
    for index, name in enumerate(names):
        if name in (deployment.provider, deployment.key):
            return index
    return len(names)


def _sorted(
    deployments: list[Deployment], sort: str, kind: str, stats: LatencyStats | None, rng: random.Random | None
) -> list[Deployment]:
    if sort == "price":
        # A deployment without a known price goes after every priced one.
        return sorted(deployments, key=lambda d: _or_inf(price_of(d.pricing, kind)))
    if sort == "latency" and stats is not None:
        # Never observed sorts first, so that every deployment gets measured.
        return sorted(deployments, key=lambda d: stats.latency(d.key) or 0.0)
    if sort == "throughput" and stats is not None:
        return sorted(deployments, key=lambda d: -_or_inf(stats.throughput(d.key)))
    return _weighted_shuffle(deployments, rng.random if rng is not None else random.random)


def _weighted_shuffle(deployments: list[Deployment], draw: Callable[[], float]) -> list[Deployment]:
    """Efraimidis-Spirakis: each position is drawn with probability proportional to weight."""
    if len(deployments) < 2:
        return list(deployments)
    keyed = [(draw() ** (1.0 / d.weight) if d.weight > 0 else -1.0, i, d) for i, d in enumerate(deployments)]
    keyed.sort(key=lambda item: (-item[0], item[1]))
    return [d for _, _, d in keyed]


def _or_inf(value: float | None) -> float:
    return math.inf if value is None else value


def _within(pricing: PricingConfig, ceiling: common_pb2.MaxPrice) -> bool:
    """Unknown prices pass: a ceiling can only exclude what it can compare."""
    for price, field in (
        (pricing.input_per_million, "prompt"),
        (pricing.output_per_million, "completion"),
        (pricing.per_image, "image"),
        (pricing.per_video_second, "video_second"),
    ):
        if price is not None and ceiling.HasField(field) and price > getattr(ceiling, field):
            return False
    return True


@lru_cache(maxsize=256)
def _support(supported: frozenset[str]) -> ParameterSupport:
    return ParameterSupport(supported=supported & _KNOWN_PARAMETERS)
