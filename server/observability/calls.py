"""One served RPC, observed: metrics, the JSON access line and the request span, all at its end.

The servicer decorators in server/services/base.py open a `CallObservation` when an RPC starts and
finish it exactly once. It reads `ctx.outcome`, which the gateway fills in (model, provider, tokens,
cost, first item time), so one place turns every request into numbers and one log line.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import grpc

from server.observability import metrics, tracing
from server.observability.logs import ACCESS_LOGGER
from server.providers.base import RequestContext
from siraya.router.v1 import chat_pb2, embeddings_pb2, images_pb2, models_pb2, responses_pb2, videos_pb2

__all__ = ["CallObservation", "RpcInfo", "rpc_info"]

# The OpenAI path each RPC serves: the `endpoint` label, bounded and familiar to an HTTP user.
_ENDPOINTS = {
    "CreateChatCompletion": ("/v1/chat/completions", "chat"),
    "StreamChatCompletion": ("/v1/chat/completions", "chat"),
    "CreateResponse": ("/v1/responses", "chat"),
    "StreamResponse": ("/v1/responses", "chat"),
    "CreateEmbedding": ("/v1/embeddings", "embeddings"),
    "GenerateImages": ("/v1/images/generations", "generate_content"),
    "ListModels": ("/v1/models", "list_models"),
    "GetModel": ("/v1/models/{model}", "get_model"),
    "CreateVideo": ("/v1/videos", "generate_content"),
    "GetVideo": ("/v1/videos/{video_id}", "get_video"),
    "WatchVideo": ("/v1/videos/{video_id}", "watch_video"),
    "DownloadVideoContent": ("/v1/videos/{video_id}/content", "download_video"),
}
_SERVICES = {
    method.name: service.full_name
    for module in (chat_pb2, responses_pb2, embeddings_pb2, images_pb2, models_pb2, videos_pb2)
    for service in module.DESCRIPTOR.services_by_name.values()
    for method in service.methods
}
# A client that went away: nginx's 499, so it is told apart from the server's own failures.
CLIENT_CLOSED = 499


@dataclass(frozen=True, slots=True)
class RpcInfo:
    """What is fixed about one RPC method, with its label-bound metric children made once."""

    service: str
    method: str
    endpoint: str
    operation: str
    streaming: bool
    full_name: str
    started: Any
    seconds: Any
    sent: Any


def rpc_info(method: str, streaming: bool) -> RpcInfo:
    endpoint, operation = _ENDPOINTS.get(method, ("/" + method, method))
    service = _SERVICES.get(method, "unknown")
    grpc_type = "server_stream" if streaming else "unary"
    labels = (grpc_type, service, method)
    return RpcInfo(
        service=service,
        method=method,
        endpoint=endpoint,
        operation=operation,
        streaming=streaming,
        full_name=f"{service}/{method}",
        started=metrics.GRPC_STARTED.labels(*labels),
        seconds=metrics.GRPC_SECONDS.labels(*labels),
        sent=metrics.GRPC_MSG_SENT.labels(*labels),
    )


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
            metrics.OPEN_STREAMS.labels(rpc.endpoint).inc()

    def finish(self, status: int, grpc_code: grpc.StatusCode, error_code: str | None) -> None:
        now = time.monotonic()
        rpc, outcome = self.rpc, self.ctx.outcome
        elapsed = now - self.started_at
        model = outcome.model or ""
        provider = outcome.provider or ""
        metrics.REQUESTS.labels(rpc.endpoint, model, provider, metrics.status_class(status)).inc()
        metrics.REQUEST_SECONDS.labels(rpc.endpoint, model, provider).observe(elapsed)
        ttft: float | None = None
        if rpc.streaming:
            metrics.OPEN_STREAMS.labels(rpc.endpoint).dec()
            if outcome.first_item_at is not None:
                ttft = max(0.0, outcome.first_item_at - self.started_at)
                metrics.FIRST_TOKEN_SECONDS.labels(rpc.endpoint, model, provider).observe(ttft)
        if outcome.prompt_tokens:
            metrics.TOKENS.labels(model, provider, "input").inc(outcome.prompt_tokens)
        if outcome.completion_tokens:
            metrics.TOKENS.labels(model, provider, "output").inc(outcome.completion_tokens)
        if outcome.cached_tokens:
            metrics.TOKENS.labels(model, provider, "cached").inc(outcome.cached_tokens)
        if outcome.reasoning_tokens:
            metrics.TOKENS.labels(model, provider, "reasoning").inc(outcome.reasoning_tokens)
        if outcome.cost:
            metrics.COST.labels(model, provider).inc(outcome.cost)
        if error_code is not None:
            metrics.record_refusal(rpc.endpoint, error_code)
        grpc_type = "server_stream" if rpc.streaming else "unary"
        metrics.GRPC_HANDLED.labels(grpc_type, rpc.service, rpc.method, grpc_code.name).inc()
        rpc.seconds.observe(elapsed)
        if ACCESS_LOGGER.isEnabledFor(logging.INFO):
            ACCESS_LOGGER.info(
                "request",
                extra={
                    "request_id": self.ctx.request_id,
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
                },
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
