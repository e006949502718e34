"""One served RPC, observed: metrics, the JSON access line and the request span, all at its end.

The servicer decorators in server/services/base.py open a `CallObservation` when an RPC starts and
finish it exactly once. It reads `ctx.outcome`, which the gateway fills in (model, provider, tokens,
cost, first item time), so one place turns every request into numbers and one log line.
"""

from __future__ import annotations

import time
from typing import Any

import grpc

from server.observability import metrics, tracing
from server.observability.logs import ACCESS_LOG
from server.providers.base import RequestContext
from siraya.router.services import SERVICES

__all__ = ["CallObservation", "RpcInfo", "rpc_info"]

# The OpenAI path each RPC serves: the `endpoint` label, bounded and familiar to an HTTP user.
_ENDPOINTS = {
    "CreateChatCompletion": ("/v1/chat/completions", "chat"),
    "StreamChatCompletion": ("/v1/chat/completions", "chat"),
    "CreateCompletion": ("/v1/completions", "text_completion"),
    "StreamCompletion": ("/v1/completions", "text_completion"),
    "CreateResponse": ("/v1/responses", "chat"),
    "StreamResponse": ("/v1/responses", "chat"),
    "GetResponse": ("/v1/responses/{id}", "get_response"),
    "DeleteResponse": ("/v1/responses/{id}", "delete_response"),
    "ListInputItems": ("/v1/responses/{id}/input_items", "list_input_items"),
    "CancelResponse": ("/v1/responses/{id}/cancel", "cancel_response"),
    "WatchResponse": ("/v1/responses/{id}", "watch_response"),
    "CreateEmbedding": ("/v1/embeddings", "embeddings"),
    "GenerateImages": ("/v1/images/generations", "generate_content"),
    "ListModels": ("/v1/models", "list_models"),
    "GetModel": ("/v1/models/{model}", "get_model"),
    "CreateVideo": ("/v1/videos", "generate_content"),
    "GetVideo": ("/v1/videos/{video_id}", "get_video"),
    "WatchVideo": ("/v1/videos/{video_id}", "watch_video"),
    "DownloadVideoContent": ("/v1/videos/{video_id}/content", "download_video"),
    "CreateKey": ("/v1/keys", "create_key"),
    "ListKeys": ("/v1/keys", "list_keys"),
    "GetKey": ("/v1/keys/{id}", "get_key"),
    "UpdateKey": ("/v1/keys/{id}", "update_key"),
    "SetCreditLimit": ("/v1/keys/{id}", "set_credit_limit"),
    "RevokeKey": ("/v1/keys/{id}", "revoke_key"),
    "RotateKey": ("/v1/keys/{id}/rotate", "rotate_key"),
    "CreateTeam": ("/v1/teams", "create_team"),
    "ListTeams": ("/v1/teams", "list_teams"),
    "GetTeam": ("/v1/teams/{team_id}", "get_team"),
    "UpdateTeam": ("/v1/teams/{team_id}", "update_team"),
    "DeleteTeam": ("/v1/teams/{team_id}", "delete_team"),
    "GetCurrentKey": ("/v1/key", "get_current_key"),
    "GetGeneration": ("/v1/generation", "get_generation"),
    "CreateMessage": ("/v1/messages", "chat"),
    "StreamMessage": ("/v1/messages", "chat"),
    "CountTokens": ("/v1/messages/count_tokens", "count_tokens"),
    "ListGenerations": ("/v1/generations", "list_generations"),
    "GetUsage": ("/v1/usage", "get_usage"),
    "ListProviders": ("/v1/providers", "list_providers"),
    "ListAuditEvents": ("/v1/audit", "list_audit_events"),
}
_SERVICES = {
    method.name: contract.full_name for contract in SERVICES for method in contract.descriptor.methods
}
# A client that went away: nginx's 499, so it is told apart from the server's own failures.
CLIENT_CLOSED = 499


class _Served:
    """The metric children of one (endpoint, model, provider), bound once and reused."""

    __slots__ = ("requests", "seconds", "first_token", "tokens", "cost", "_labels")

    def __init__(self, endpoint: str, model: str, provider: str) -> None:
        self._labels = (endpoint, model, provider)
        self.requests: dict[str, Any] = {}
        self.seconds = metrics.REQUEST_SECONDS.labels(endpoint, model, provider)
        self.first_token = metrics.FIRST_TOKEN_SECONDS.labels(endpoint, model, provider)
        self.tokens = tuple(metrics.TOKENS.labels(model, provider, kind) for kind in _TOKEN_TYPES)
        self.cost = metrics.COST.labels(model, provider)

    def request(self, status: int) -> Any:
        status_class = metrics.status_class(status)
        child = self.requests.get(status_class)
        if child is None:
            child = self.requests[status_class] = metrics.REQUESTS.labels(*self._labels, status_class)
        return child


_TOKEN_TYPES = ("input", "output", "cached", "reasoning")


class RpcInfo:
    """What is fixed about one RPC method, with its label-bound metric children made once."""

    __slots__ = (
        "service",
        "method",
        "endpoint",
        "operation",
        "streaming",
        "full_name",
        "grpc_type",
        "started",
        "seconds",
        "sent",
        "open_streams",
        "_handled",
        "_served",
    )

    def __init__(self, method: str, streaming: bool) -> None:
        self.endpoint, self.operation = _ENDPOINTS.get(method, ("/" + method, method))
        self.service = _SERVICES.get(method, "unknown")
        self.method = method
        self.streaming = streaming
        self.full_name = f"{self.service}/{method}"
        self.grpc_type = "server_stream" if streaming else "unary"
        labels = (self.grpc_type, self.service, method)
        self.started = metrics.GRPC_STARTED.labels(*labels)
        self.seconds = metrics.GRPC_SECONDS.labels(*labels)
        self.sent = metrics.GRPC_MSG_SENT.labels(*labels)
        self.open_streams = metrics.OPEN_STREAMS.labels(self.endpoint)
        self._handled: dict[grpc.StatusCode, Any] = {}
        # Bounded: models and providers come from the configuration.
        self._served: dict[tuple[str, str], _Served] = {}

    def handled(self, code: grpc.StatusCode) -> Any:
        child = self._handled.get(code)
        if child is None:
            child = self._handled[code] = metrics.GRPC_HANDLED.labels(
                self.grpc_type, self.service, self.method, code.name
            )
        return child

    def served(self, model: str, provider: str) -> _Served:
        key = (model, provider)
        series = self._served.get(key)
        if series is None:
            series = self._served[key] = _Served(self.endpoint, model, provider)
        return series


def rpc_info(method: str, streaming: bool) -> RpcInfo:
    return RpcInfo(method, streaming)


class CallObservation:
    """The timing and outcome of one RPC; `finish` records it everywhere."""

    __slots__ = ("rpc", "ctx", "started_at", "span", "requested_model")

    def __init__(self, rpc: RpcInfo, ctx: RequestContext, requested_model: str | None) -> None:
        self.rpc = rpc
        self.ctx = ctx
        self.requested_model = requested_model
        self.started_at = time.monotonic()
        rpc.started.inc()
        self.span = None
        if tracing.enabled():
            name = f"{rpc.operation} {requested_model}" if requested_model else rpc.operation
            self.span = tracing.start_request_span(
                name,
                ctx.forward_headers,
                {
                    "gen_ai.operation.name": rpc.operation,
                    "gen_ai.request.model": requested_model or "",
                    "rpc.system": "grpc",
                    "rpc.service": rpc.service,
                    "rpc.method": rpc.method,
                    "siraya.request_id": ctx.request_id,
                },
            )
        if rpc.streaming:
            rpc.open_streams.inc()

    def finish(self, status: int, grpc_code: grpc.StatusCode, error_code: str | None) -> None:
        rpc, outcome = self.rpc, self.ctx.outcome
        elapsed = time.monotonic() - self.started_at
        served = rpc.served(outcome.model or "", outcome.provider or "")
        served.request(status).inc()
        served.seconds.observe(elapsed)
        ttft: float | None = None
        if rpc.streaming:
            rpc.open_streams.dec()
            if outcome.first_item_at is not None:
                ttft = max(0.0, outcome.first_item_at - self.started_at)
                served.first_token.observe(ttft)
        tokens_in, tokens_out, cached, reasoning = served.tokens
        if outcome.prompt_tokens:
            tokens_in.inc(outcome.prompt_tokens)
        if outcome.completion_tokens:
            tokens_out.inc(outcome.completion_tokens)
        if outcome.cached_tokens:
            cached.inc(outcome.cached_tokens)
        if outcome.reasoning_tokens:
            reasoning.inc(outcome.reasoning_tokens)
        if outcome.cost:
            served.cost.inc(outcome.cost)
        if error_code is not None:
            metrics.record_refusal(rpc.endpoint, error_code)
        rpc.handled(grpc_code).inc()
        rpc.seconds.observe(elapsed)
        if ACCESS_LOG.enabled:
            ACCESS_LOG.write(
                {
                    "request_id": self.ctx.request_id,
                    "client_request_id": self.ctx.client_request_id,
                    "key_id": self.ctx.key_id,
                    "endpoint": rpc.endpoint,
                    "rpc": rpc.full_name,
                    "stream": rpc.streaming,
                    "model": outcome.model or self.requested_model,
                    "provider": outcome.provider,
                    "status": status,
                    "code": error_code,
                    "prompt_tokens": outcome.prompt_tokens,
                    "completion_tokens": outcome.completion_tokens,
                    "cached_tokens": outcome.cached_tokens,
                    "reasoning_tokens": outcome.reasoning_tokens,
                    "cost": outcome.cost,
                    "latency_ms": round(elapsed * 1000, 2),
                    "ttft_ms": None if ttft is None else round(ttft * 1000, 2),
                }
            )
        if self.span is not None:
            tracing.finish_span(
                self.span,
                {
                    "gen_ai.response.model": outcome.model,
                    "gen_ai.provider.name": outcome.provider,
                    "gen_ai.usage.input_tokens": outcome.prompt_tokens,
                    "gen_ai.usage.output_tokens": outcome.completion_tokens,
                    "siraya.key_id": self.ctx.key_id,
                    "siraya.cost_usd": outcome.cost,
                    "rpc.grpc.status_code": grpc_code.value[0],
                    "http.response.status_code": status,
                },
                error_code if status >= 400 else None,
            )
