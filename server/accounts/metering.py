"""Credits, rate limits, moderation and the ledger around one request.

The gateway asks `Metering.admit` before any upstream call (it may refuse with 402, 403 or 429),
naming the model and the fallback models that may serve the request, then settles the returned
`Meter` exactly once: `settle` with what was consumed, or `fail`. A request the response cache
answers is `admit_cache_hit` instead (limits and moderation, no credit).
`Metering` here admits everything and records nothing (a gateway built without accounts);
accounting.AccountMetering is the real one: rate limits, credits, moderation and the ledger.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from google.protobuf.message import Message

from server.accounts.keys import KeyRecord
from server.providers.base import RequestContext
from server.routing.catalogue import CatalogueEntry, Deployment


@dataclass(frozen=True, slots=True)
class Demand:
    """The worst case a request may consume, known before the upstream call."""

    # A quick estimate (bytes/4) for rate limits; the credit reservation bounds the prompt itself.
    prompt_tokens: int = 0
    # All choices together; when the client set no cap, the default the tpm estimate assumes.
    max_output_tokens: int = 0
    images: int = 0
    video_seconds: float = 0.0
    # The request itself, for moderation and the reservation to read (never kept past the request).
    params: Message | None = None
    # Whether the client capped the reply (max_tokens, max_completion_tokens, max_output_tokens);
    # if not, a key with a credit limit gets a cap its credit pays for (server/accounts/reservation.py).
    max_output_given: bool = True
    choices: int = 1


@dataclass(slots=True)
class StreamText:
    """The text a stream sent since its last usage, of which `Consumption.completion_tokens` holds only
    the running estimate (`estimated` tokens): kept to be counted with the tokenizer should the
    stream end without usage (server/gateway_usage.py). A piece is a `str`, or `bytes` as relayed
    (a JSON string's contents, escapes as written); every so many pieces are joined into a block."""

    estimated: int = 0
    pieces: list[str | bytes] = field(default_factory=list)
    blocks: list[str | bytes] = field(default_factory=list)


@dataclass(slots=True)
class Consumption:
    """What a request actually consumed, from upstream usage or counted."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    # Part of prompt_tokens: read from the provider's prompt cache, and written to it.
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    images: int = 0
    video_seconds: float = 0.0
    cache_write_tokens: int = 0
    # The gateway counted (some of) these tokens itself: the upstream reported no usage, or none yet
    # for the text at the end of a stream that was cut.
    counted: bool = False
    # prompt_tokens is the upstream's own count, from a usage that came before the stream ended (a
    # stream that is then cut keeps it rather than counting the prompt itself).
    prompt_reported: bool = field(default=False, compare=False, repr=False)
    # Part of prompt_tokens and of completion_tokens: audio, priced apart where the model says so.
    audio_prompt_tokens: int = 0
    audio_completion_tokens: int = 0
    # What the upstream said the call cost it (OpenRouter-style `usage.cost`), in micro-dollars:
    # recorded beside the gateway's own price, never charged (server/accounts/accounting.py).
    reported_cost_micros: int | None = None
    # A stream's text not yet covered by a usage (None: none): how it settles when no usage comes.
    stream_text: StreamText | None = field(default=None, compare=False, repr=False)


class Meter:
    """One admitted request. Settle it once; `cost` is what was charged, in USD."""

    async def settle(
        self, deployment: Deployment, consumed: Consumption, *, cancelled: bool = False
    ) -> float | None:
        """Charge what was consumed; `cancelled` when the client went away mid-stream."""
        return None

    async def fail(self, error: BaseException) -> None:
        return None


class Metering:
    async def admit(
        self,
        key: KeyRecord,
        entry: CatalogueEntry,
        demand: Demand,
        ctx: RequestContext,
        fallbacks: Sequence[CatalogueEntry] = (),
    ) -> Meter:
        """Admit a request for `entry` that may be served by its `fallbacks` (the request's `models`)."""
        return Meter()

    async def admit_cache_hit(
        self,
        key: KeyRecord,
        entry: CatalogueEntry,
        demand: Demand,
        deployment: Deployment,
        consumed: Consumption,
        ctx: RequestContext,
    ) -> int:
        """Admit and record a request the response cache answers: it may be refused as `admit`
        refuses (rate limit, moderation), but it is free. What it saved, in micro-dollars."""
        return 0

    async def close(self) -> None:
        return None
