"""What a request reserves before its upstream call, and the reply cap that reservation pays for.

A reservation is a true upper bound of what the request can be charged on a well-behaved upstream:
the prompt's bound (prompt_bound.py) plus the most reply tokens the upstream is allowed, at the
dearest price among every deployment of every model the request may be served by (candidates.py:
the requested model and its fallbacks). The reply is bounded by the client's `max_tokens` (or
`max_completion_tokens`, `max_output_tokens`) when it sent one. When it sent none, the gateway sets
one itself (`apply_output_cap`): as many tokens as the credit it could reserve pays for at that
dearest price, never more than the smallest of the candidates' maximum outputs (each model's
`max_output_tokens` in the config, else the built-in catalogue's, else what its context window
leaves, else DEFAULT_MAX_OUTPUT_TOKENS), as OpenRouter does. One cap goes to every attempt, so it
must fit the smallest model and be paid for at the dearest; the upstream then cannot produce more
than was reserved, whichever candidate serves and whatever the key's remaining credit.

    bounds(models, demand, prompt)    -> (minimum, maximum) micro-dollars to ask the store for:
                                         the minimum buys the prompt and one token per choice
                                         (the whole reply when the client set its size)
    reply_cap(models, demand, prompt, held) -> reply tokens per choice the held amount pays for
"""

from __future__ import annotations

from google.protobuf.message import Message

from server.accounts.candidates import Candidates
from server.accounts.metering import Demand
from server.accounts.money import TOKENS_PER_MILLION, Price
from server.routing.catalogue import CatalogueEntry
from siraya.router.v1 import chat_pb2, responses_pb2

__all__ = ["DEFAULT_MAX_OUTPUT_TOKENS", "apply_output_cap", "bounds", "reply_cap", "reply_ceiling"]

# A model whose maximum output and context window are both unknown is capped here for limited keys.
DEFAULT_MAX_OUTPUT_TOKENS = 4096


def reply_ceiling(models: Candidates, demand: Demand, prompt_tokens: int) -> int:
    """The most reply tokens (all choices together) the request may be billed for: the client's cap,
    else the smallest of the candidate models' own ceilings."""
    if demand.max_output_given:
        return demand.max_output_tokens
    entries = models.models
    per_choice = _model_ceiling(entries[0], prompt_tokens)
    for entry in entries[1:]:
        per_choice = min(per_choice, _model_ceiling(entry, prompt_tokens))
    return per_choice * demand.choices


def _model_ceiling(entry: CatalogueEntry, prompt_tokens: int) -> int:
    if entry.max_output_tokens is not None:
        return entry.max_output_tokens
    if entry.context_window is not None:
        return max(1, entry.context_window - prompt_tokens)
    return DEFAULT_MAX_OUTPUT_TOKENS


# `bounds` and `reply_cap` run on every request of a key with a credit limit, so they do in a loop
# what money.worst_token_cost and money.affordable_completion_tokens say (the unit test
# test_reservation.py checks that they agree): each prompt token at the dearest of the input, cache
# and audio prices, each reply token at the dearest of the output, reasoning and audio prices, one
# rounding up per request, images and video seconds at their own prices.


def bounds(models: Candidates, demand: Demand, prompt_tokens: int) -> tuple[int, int]:
    """(minimum, maximum) to reserve, in micro-dollars, at the dearest of the candidates' prices."""
    ceiling = reply_ceiling(models, demand, prompt_tokens)
    least = ceiling if demand.max_output_given else min(ceiling, demand.choices)
    minimum = maximum = 0
    media = 0
    for price in models.prices:
        prompt = prompt_tokens * price.dearest_input
        output = price.dearest_output
        if demand.images or demand.video_seconds:
            media = _media(price, demand)
        minimum = max(minimum, -(-(prompt + least * output) // TOKENS_PER_MILLION) + media)
        maximum = max(maximum, -(-(prompt + ceiling * output) // TOKENS_PER_MILLION) + media)
    return minimum, maximum


def reply_cap(models: Candidates, demand: Demand, prompt_tokens: int, held_micros: int) -> int:
    """Reply tokens per choice that `held_micros` pays for on every candidate's deployments, within
    the ceiling."""
    total = reply_ceiling(models, demand, prompt_tokens)
    for price in models.prices:
        output = price.dearest_output
        if output:
            media = _media(price, demand) if demand.images or demand.video_seconds else 0
            room = (held_micros - media) * TOKENS_PER_MILLION - prompt_tokens * price.dearest_input
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
