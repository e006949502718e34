"""Every model a request may be served by, priced: what its reservation must cover.

A request names one model and may name fallbacks (`models: [...]`, OpenRouter's field); whichever
of them serves, the key is charged at that deployment's own price. So the reservation and the reply
cap are bounded over all of them (reservation.py): the dearest price among every deployment of every
candidate, and the smallest reply ceiling, since one cap goes to every attempt.

A fallback with no price never reaches here for a key with a credit limit: the gateway resolves the
fallbacks before admission as it resolves the model itself, and refuses an unpriced one
(catalogue.unpriced_refusal). Skipping it instead would quietly change the route the client asked for.

Admission runs this for every request of a key with a credit limit, so `CandidateCache` keeps the
result per model list; an entry is reused only for the very same catalogue entries (a passthrough
model's entry is made per request, so it is priced again).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

from server.accounts.money import Price
from server.config import PricingConfig
from server.pricing.builtin import DEFAULT_COUNTING
from server.routing.catalogue import CatalogueEntry, Deployment

__all__ = ["CandidateCache", "Candidates", "candidates", "deployment_price"]

_NO_PRICE = PricingConfig()
# Distinct model lists kept; past this (clients choose passthrough ids freely) the cache starts over.
CACHED_MODEL_LISTS = 1024


@functools.lru_cache(maxsize=4096)
def _price(pricing: PricingConfig) -> Price:
    return Price.from_pricing(pricing)


def deployment_price(entry: CatalogueEntry, deployment: Deployment) -> Price:
    """What a deployment charges: its own price when the catalogue sets one, else the model's."""
    pricing = getattr(deployment, "pricing", None)
    if isinstance(pricing, PricingConfig) and pricing != _NO_PRICE:
        return _price(pricing)
    return _price(entry.pricing)


@dataclass(frozen=True, slots=True)
class Candidates:
    """The models a request may be served by, as its reservation reads them."""

    # The requested model first, then each distinct fallback in try order.
    models: tuple[CatalogueEntry, ...]
    # Every deployment's price, of every model (each distinct price once).
    prices: tuple[Price, ...]
    # The distinct prompt-token countings of every deployment (prompt_bound.py).
    counting: tuple[tuple[str, float], ...] = (DEFAULT_COUNTING,)
    # The request field that caps a reply on every model's deployments.
    output_limit_field: str = "max_tokens"
    # What the models were made from (the requested entry, then the fallbacks as given): the cache's check.
    given: tuple[CatalogueEntry, ...] = ()


def candidates(entry: CatalogueEntry, fallbacks: Sequence[CatalogueEntry] = ()) -> Candidates:
    """`entry` and its `fallbacks` (a repeat of a model counts once, as the dispatcher tries it once)."""
    models = {entry.id: entry}
    for fallback in fallbacks:
        models.setdefault(fallback.id, fallback)
    prices: dict[Price, None] = {}
    counting: dict[tuple[str, float], None] = {}
    fields = set()
    for model in models.values():
        for deployment in model.deployments:
            prices[deployment_price(model, deployment)] = None
        counting.update(dict.fromkeys(model.counting))
        fields.add(model.output_limit_field)
    return Candidates(
        models=tuple(models.values()),
        prices=tuple(prices),
        counting=tuple(counting),
        # As the catalogue decides it over one model's deployments: every OpenAI-compatible server
        # takes `max_tokens`, so it is the one field that caps them all when they differ.
        output_limit_field=fields.pop() if len(fields) == 1 else "max_tokens",
        given=(entry, *fallbacks),
    )


class CandidateCache:
    """`candidates` per model list, kept while the catalogue entries are the same objects."""

    def __init__(self, size: int = CACHED_MODEL_LISTS) -> None:
        self._size = size
        self._kept: dict[object, Candidates] = {}

    def get(self, entry: CatalogueEntry, fallbacks: Sequence[CatalogueEntry] = ()) -> Candidates:
        key: object = entry.id if not fallbacks else (entry.id, *[fallback.id for fallback in fallbacks])
        kept = self._kept.get(key)
        if kept is not None and _same(kept.given, entry, fallbacks):
            return kept
        made = candidates(entry, fallbacks)
        if len(self._kept) >= self._size:
            self._kept.clear()
        self._kept[key] = made
        return made


def _same(
    given: tuple[CatalogueEntry, ...], entry: CatalogueEntry, fallbacks: Sequence[CatalogueEntry]
) -> bool:
    if given[0] is not entry or len(given) != len(fallbacks) + 1:
        return False
    for kept, fallback in zip(given[1:], fallbacks, strict=True):
        if kept is not fallback:
            return False
    return True
