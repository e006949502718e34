"""One request's usage-ledger record, and the upstream attempts it made.

Its own module so that the stores' contract (store.py) and the ledger's queries (ledger_queries.py)
can both name it; store.py re-exports it.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

__all__ = ["LEDGER_COLUMNS", "LedgerAttempt", "LedgerRecord", "LedgerStatus", "TokenSource"]

# cache_hit: answered from the response cache, at no cost (cache_saved_micros is what it saved).
LedgerStatus = Literal["success", "error", "cancelled", "cache_hit"]
TokenSource = Literal["reported", "counted"]


class LedgerAttempt(NamedTuple):
    """One upstream call a request made: a first try, a retry, a fallback or a hedge.

    `start_ms` is when it started, counted from the request's admission, so a list of them draws the
    request's waterfall. `outcome` is "ok", "error" or "cancelled" (a hedge that lost, a client that
    went away); a failed attempt's `error_code` and `http_status` are the gateway's error table's.

    What it cost upstream (server/attempt_spend.py): the tokens it consumed at the provider, as far
    as known, and `upstream_cost_micros`, those at its deployment's price, whether or not the key
    paid for them (a hedge that lost, a failed call the provider billed, a cancelled stream).
    `reported_cost_micros` is the upstream's own figure when it sent one (`usage.cost`), never
    charged. Old records have zeros here.
    """

    provider: str
    model: str
    upstream_model: str
    outcome: str
    start_ms: float
    latency_ms: float
    error_code: str | None = None
    http_status: int | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    upstream_cost_micros: int = 0
    reported_cost_micros: int | None = None
    token_source: TokenSource = "reported"


class LedgerRecord(NamedTuple):
    """One request's usage, success or failure: what GET /v1/generation returns to its key.

    A named tuple, so the record is its own row in LEDGER_COLUMNS order; made once per request, it
    costs 1.3 us where a frozen dataclass cost 6.
    """

    request_id: str
    key_id: str
    created_at: float  # unix seconds
    model_requested: str
    status: LedgerStatus
    http_status: int
    model_served: str | None = None
    provider: str | None = None
    error_code: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    cost_micros: int = 0
    latency_ms: float = 0.0
    ttft_ms: float | None = None
    streamed: bool = False
    # Prompt tokens written to the provider's prompt cache (part of prompt_tokens, like cached_tokens).
    cache_write_tokens: int = 0
    cache_saved_micros: int = 0
    # The request's prompt and answer as text, only with `observability.store_bodies` (bounded:
    # server/observability/bodies.py); None when not stored.
    prompt_text: str | None = None
    answer_text: str | None = None
    # Where its token counts came from: "reported" by the upstream, or "counted" by the gateway
    # (an upstream that sent no usage, a stream cut before its usage).
    token_source: TokenSource = "reported"
    # What the operator pays the providers for this request: the sum of its attempts'
    # `upstream_cost_micros`, apart from `cost_micros`, what the key was charged. And the sum of
    # what upstreams said their attempts cost (`usage.cost`), None when none said.
    upstream_cost_micros: int = 0
    upstream_reported_cost_micros: int | None = None
    # Every upstream call it made, in start order (empty when it never reached one). Always last:
    # the stores write it as JSON after the other columns.
    attempts: tuple[LedgerAttempt, ...] = ()


LEDGER_COLUMNS: tuple[str, ...] = LedgerRecord._fields
