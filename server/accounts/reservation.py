"""What a request reserves before its upstream call, and the reply cap that reservation pays for.

A reservation is a true upper bound of what the request can be charged on a well-behaved upstream:
the prompt's bound (prompt_bound.py) plus the most reply tokens the upstream is allowed, at the
dearest deployment's prices. The reply is bounded by the client's `max_tokens` (or
`max_completion_tokens`, `max_output_tokens`) when it sent one. When it sent none, the gateway sets
one itself (`apply_output_cap`): as many tokens as the credit it could reserve pays for, never more
than the model's maximum output (the config's `max_output_tokens`, else the built-in catalogue's,
else what the context window leaves, else DEFAULT_MAX_OUTPUT_TOKENS), as OpenRouter does. So the
upstream cannot produce more than was reserved, whatever the key's remaining credit.

    bounds(entry, demand, prompt)    -> (minimum, maximum) micro-dollars to ask the store for:
                                        the minimum buys the prompt and one token per choice
                                        (the whole reply when the client set its size)
    reply_cap(entry, demand, prompt, held) -> reply tokens per choice the held amount pays for
"""

from __future__ import annotations

from google.protobuf.message import Message

from server.accounts.metering import Demand
from server.accounts.money import TOKENS_PER_MILLION, Price
from server.routing.catalogue import CatalogueEntry
from siraya.router.v1 import chat_pb2, responses_pb2

__all__ = ["DEFAULT_MAX_OUTPUT_TOKENS", "apply_output_cap", "bounds", "reply_cap", "reply_ceiling"]

# A model whose maximum output and context window are both unknown is capped here for limited keys.
DEFAULT_MAX_OUTPUT_TOKENS = 4096


def reply_ceiling(entry: CatalogueEntry, demand: Demand, prompt_tokens: int) -> int:
    """The most reply tokens (all choices together) the request may be billed for."""
    if demand.max_output_given:
        return demand.max_output_tokens
    if entry.max_output_tokens is not None:
        per_choice = entry.max_output_tokens
    elif entry.context_window is not None:
        per_choice = max(1, entry.context_window - prompt_tokens)
    else:
        per_choice = DEFAULT_MAX_OUTPUT_TOKENS
    return per_choice * demand.choices


# `bounds` and `reply_cap` run on every request of a key with a credit limit, so they do in a loop
# what money.worst_token_cost and money.affordable_completion_tokens say (the unit test
# test_reservation.py checks that they agree): each prompt token at the dearest of the input and
# cache prices, one rounding up per request, images and video seconds at their own prices.


def bounds(entry: CatalogueEntry, demand: Demand, prompt_tokens: int, prices: list[Price]) -> tuple[int, int]:
    """(minimum, maximum) to reserve, in micro-dollars, at the dearest of `prices` (one per deployment)."""
    ceiling = (
        demand.max_output_tokens if demand.max_output_given else reply_ceiling(entry, demand, prompt_tokens)
    )
    least = ceiling if demand.max_output_given else min(ceiling, demand.choices)
    minimum = maximum = 0
    media = 0
    for price in prices:
        dearest = max(
            price.input_per_million, price.cached_input_per_million or 0, price.cache_write_per_million or 0
        )
        prompt = prompt_tokens * dearest
        output = price.output_per_million
        if demand.images or demand.video_seconds:
            media = _media(price, demand)
        minimum = max(minimum, -(-(prompt + least * output) // TOKENS_PER_MILLION) + media)
        maximum = max(maximum, -(-(prompt + ceiling * output) // TOKENS_PER_MILLION) + media)
    return minimum, maximum


def reply_cap(
    entry: CatalogueEntry, demand: Demand, prompt_tokens: int, held_micros: int, prices: list[Price]
) -> int:
    """Reply tokens per choice that `held_micros` pays for on every deployment, within the ceiling."""
    total = (
        demand.max_output_tokens if demand.max_output_given else reply_ceiling(entry, demand, prompt_tokens)
    )
    for price in prices:
        output = price.output_per_million
        if output:
            dearest = max(
                price.input_per_million,
                price.cached_input_per_million or 0,
                price.cache_write_per_million or 0,
            )
            media = _media(price, demand) if demand.images or demand.video_seconds else 0
            room = (held_micros - media) * TOKENS_PER_MILLION - prompt_tokens * dearest
            total = min(total, max(0, room // output))
    return max(1, total // demand.choices)


def _media(price: Price, demand: Demand) -> int:
    return price.images(demand.images) + price.video(demand.video_seconds)


def apply_output_cap(params: Message | None, tokens: int, field: str) -> None:
    """Set the reply cap on the request sent upstream: `field` of a chat request (the one its
    upstreams take), `max_output_tokens` of a Responses request."""
    if isinstance(params, chat_pb2.ChatCompletionParams):
        setattr(params, field, tokens)
    elif isinstance(params, responses_pb2.ResponseParams):
        params.max_output_tokens = tokens
