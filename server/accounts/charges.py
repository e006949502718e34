"""What a request's consumption costs at a deployment's price, in micro-dollars: what metering
charges a key (accounting.py, account_meter.py) and prices each upstream attempt at (ledger_attempts.py)."""

from __future__ import annotations

from server.accounts.metering import Consumption
from server.accounts.money import Price

__all__ = ["charge"]


def media_cost(price: Price, images: int, video_seconds: float) -> int:
    # Most requests have neither: skip the two calls rather than price zero of each.
    cost = price.images(images) if images else 0
    if video_seconds:
        cost += price.video(video_seconds)
    return cost


def charge(price: Price, consumed: Consumption) -> int:
    tokens = price.tokens(
        consumed.prompt_tokens,
        consumed.completion_tokens,
        consumed.cached_tokens,
        consumed.cache_write_tokens,
        reasoning_tokens=consumed.reasoning_tokens,
        audio_prompt_tokens=consumed.audio_prompt_tokens,
        audio_completion_tokens=consumed.audio_completion_tokens,
    )
    return tokens + media_cost(price, consumed.images, consumed.video_seconds)
