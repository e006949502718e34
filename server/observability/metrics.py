"""The gateway's Prometheus metrics, and the small functions the rest of the code records through.

Labels are bounded on purpose: endpoint, model and provider come from the configuration, status and
error codes from the error table. No key, prompt or user id is ever a label.

Multi-worker mode uses prometheus-client's multiprocess mode: the supervisor sets
PROMETHEUS_MULTIPROC_DIR before the workers start, each worker writes its values there, and any
worker's /metrics reads all of them (`registry()` picks the right collector).
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import multiprocess as _multiprocess

__all__ = [
    "BREAKER_STATES",
    "LATENCY_BUCKETS",
    "exposition",
    "record_attempt",
    "record_fallback",
    "record_hedge",
    "record_overrun",
    "record_upstream_cost_mismatch",
    "record_refusal",
    "record_reload",
    "record_retry",
    "set_breaker_state",
    "status_class",
]

# LLM traffic spans a cached embedding (ms) to a long reasoning stream (minutes).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0)
BREAKER_STATES = {"closed": 0.0, "half_open": 1.0, "open": 2.0}
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

REQUESTS = Counter(
    "siraya_requests",
    "Requests served, by endpoint, model, provider and status class.",
    ("endpoint", "model", "provider", "status_class"),
)
REQUEST_SECONDS = Histogram(
    "siraya_request_duration_seconds",
    "Time from a request's arrival to its last byte.",
    ("endpoint", "model", "provider"),
    buckets=LATENCY_BUCKETS,
)
FIRST_TOKEN_SECONDS = Histogram(
    "siraya_time_to_first_token_seconds",
    "Time from a streamed request's arrival to its first item.",
    ("endpoint", "model", "provider"),
    buckets=LATENCY_BUCKETS,
)
TOKENS = Counter(
    "siraya_tokens",
    "Tokens consumed; type is input, output, cached (part of input) or reasoning (part of output).",
    ("model", "provider", "type"),
)
COST = Counter("siraya_cost_usd", "What requests were charged, in USD.", ("model", "provider"))
OPEN_STREAMS = Gauge(
    "siraya_open_streams", "Streams being served right now.", ("endpoint",), multiprocess_mode="livesum"
)
REFUSALS = Counter(
    "siraya_refusals",
    "Requests refused for rate limits (rate_limit_exceeded) or credits (insufficient_credits).",
    ("endpoint", "code"),
)
UPSTREAM_ATTEMPTS = Counter(
    "siraya_upstream_attempts",
    "Calls to an upstream; outcome is ok, cancelled or the error code.",
    ("provider", "outcome"),
)
UPSTREAM_ATTEMPT_SECONDS = Histogram(
    "siraya_upstream_attempt_duration_seconds",
    "Time one upstream attempt took (a stream: until its end).",
    ("provider",),
    buckets=LATENCY_BUCKETS,
)
UPSTREAM_RETRIES = Counter("siraya_upstream_retries", "Retries of the same deployment.", ("provider",))
UPSTREAM_FALLBACKS = Counter(
    "siraya_upstream_fallbacks",
    "Moves to the next deployment after a failure.",
    ("from_provider", "to_provider"),
)
UPSTREAM_HEDGES = Counter("siraya_upstream_hedges", "Hedged attempts started.", ("provider",))
BREAKER_STATE = Gauge(
    "siraya_circuit_breaker_state",
    "Circuit breaker state of a deployment (provider/upstream_model): 0 closed, 1 half-open, 2 open.",
    ("deployment",),
    multiprocess_mode="livemax",
)
LEDGER_QUARANTINED = Counter(
    "siraya_ledger_quarantined",
    "Ledger records written to the dead-letter file instead of the store, by reason.",
    ("reason",),
)
# The HTTP edge (http_bridge/edge.py) and the per-key in-flight limit (server/accounts/in_flight.py).
HTTP_CONNECTIONS = Gauge(
    "siraya_http_connections", "HTTP connections open right now.", multiprocess_mode="livesum"
)
HTTP_CONNECTIONS_REFUSED = Counter(
    "siraya_http_connections_refused",
    "HTTP connections refused with a 503 because server.max_connections were open.",
)
HTTP_TIMEOUTS = Counter(
    "siraya_http_timeouts",
    "Requests cut off with a 408 for arriving too slowly; phase is headers or body.",
    ("phase",),
)
HTTP_PROTOCOL_ERRORS = Counter(
    "siraya_http_protocol_errors",
    "Requests the HTTP parser refused (malformed, or headers too large), by status.",
    ("status",),
)
KEY_IN_FLIGHT_REFUSALS = Counter(
    "siraya_key_in_flight_refusals",
    "Requests refused with a 429 because their key had server.max_in_flight_per_key in flight.",
)
CACHE_LOOKUPS = Counter(
    "siraya_cache_lookups",
    "Response cache lookups, by model and result (hit or miss).",
    ("model", "result"),
)
CACHE_STORED_BYTES = Counter("siraya_cache_stored_bytes", "Bytes of answers written to the response cache.")
CACHE_MEMORY_BYTES = Gauge(
    "siraya_cache_memory_bytes",
    "Bytes the in-process response cache holds now.",
    multiprocess_mode="livesum",
)
CACHE_SAVED = Counter(
    "siraya_cache_saved_usd", "What cache hits would have cost, in USD (they cost nothing).", ("model",)
)
CREDIT_OVERRUNS = Counter(
    "siraya_credit_overruns",
    "Settlements that charged more than their reservation (an upstream that billed beyond what was"
    " asked), by model and provider.",
    ("model", "provider"),
)
CREDIT_OVERRUN = Counter(
    "siraya_credit_overrun_usd",
    "What settlements charged beyond their reservations, in USD (charged in full all the same).",
    ("model", "provider"),
)
UPSTREAM_COST_MISMATCHES = Counter(
    "siraya_upstream_cost_mismatch",
    "Upstream calls whose own reported cost (usage.cost) was more than 1% away from what their tokens"
    " cost at the configured price, by model and provider.",
    ("model", "provider"),
)
CONFIG_RELOADS = Counter(
    "siraya_config_reloads", "Configuration reloads, by result (ok, error).", ("result",)
)

GRPC_STARTED = Counter(
    "grpc_server_started", "RPCs started on the server.", ("grpc_type", "grpc_service", "grpc_method")
)
GRPC_HANDLED = Counter(
    "grpc_server_handled",
    "RPCs completed on the server, by status code.",
    ("grpc_type", "grpc_service", "grpc_method", "grpc_code"),
)
GRPC_SECONDS = Histogram(
    "grpc_server_handling_seconds",
    "Time an RPC took on the server.",
    ("grpc_type", "grpc_service", "grpc_method"),
    buckets=LATENCY_BUCKETS,
)
GRPC_MSG_SENT = Counter(
    "grpc_server_msg_sent",
    "Stream messages sent by the server.",
    ("grpc_type", "grpc_service", "grpc_method"),
)

_STATUS_CLASSES = {1: "1xx", 2: "2xx", 3: "3xx", 4: "4xx", 5: "5xx"}
_REFUSAL_CODES = frozenset({"rate_limit_exceeded", "insufficient_credits"})


def status_class(status: int) -> str:
    return _STATUS_CLASSES.get(status // 100, "other")


def record_overrun(model: str, provider: str, usd: float) -> None:
    """A settlement charged `usd` more than its reservation held (rare: not worth cached children)."""
    CREDIT_OVERRUNS.labels(model, provider).inc()
    CREDIT_OVERRUN.labels(model, provider).inc(usd)


def record_upstream_cost_mismatch(model: str, provider: str) -> None:
    """An upstream's reported cost disagreed with ours by more than 1% (rare: no cached children)."""
    UPSTREAM_COST_MISMATCHES.labels(model, provider).inc()


def record_refusal(endpoint: str, code: str | None) -> None:
    """Count a 402/429 refusal; other error codes are not refusals and are ignored."""
    if code in _REFUSAL_CODES:
        REFUSALS.labels(endpoint, code).inc()


# The recorder interface for routing: call these from the Dispatcher; each is one cheap counter update.


# Label-bound children of the per-attempt metrics, made once: `labels()` costs more than the
# increment itself (6 against 1.4 us). Bounded: providers come from the config, outcomes from the
# error table.
_attempt_counts: dict[tuple[str, str], Any] = {}
_attempt_seconds: dict[str, Any] = {}


def record_attempt(provider: str, outcome: str, seconds: float | None = None) -> None:
    """One upstream attempt ended; `outcome` is "ok", "cancelled" or an error code from the table."""
    count = _attempt_counts.get((provider, outcome))
    if count is None:
        count = _attempt_counts[provider, outcome] = UPSTREAM_ATTEMPTS.labels(provider, outcome)
    count.inc()
    if seconds is not None:
        timing = _attempt_seconds.get(provider)
        if timing is None:
            timing = _attempt_seconds[provider] = UPSTREAM_ATTEMPT_SECONDS.labels(provider)
        timing.observe(seconds)


def record_retry(provider: str) -> None:
    UPSTREAM_RETRIES.labels(provider).inc()


def record_fallback(from_provider: str, to_provider: str) -> None:
    UPSTREAM_FALLBACKS.labels(from_provider, to_provider).inc()


def record_hedge(provider: str) -> None:
    UPSTREAM_HEDGES.labels(provider).inc()


def set_breaker_state(deployment: str, state: str) -> None:
    """`deployment` is the breaker's key ("provider/upstream_model"); `state` closed, half_open or open."""
    BREAKER_STATE.labels(deployment).set(BREAKER_STATES[state])


def record_reload(ok: bool) -> None:
    CONFIG_RELOADS.labels("ok" if ok else "error").inc()


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def exposition() -> bytes:
    """The text exposition of every metric: this process's, or every worker's in multiprocess mode."""
    if multiprocess_dir() is None:
        return generate_latest()
    registry = CollectorRegistry()
    _multiprocess.MultiProcessCollector(registry)
    return generate_latest(registry)


def mark_worker_dead(pid: int) -> None:
    """Drop a dead worker's live gauges (multiprocess mode); its counters stay summed in."""
    if multiprocess_dir() is not None:
        _multiprocess.mark_process_dead(pid)
