"""Observe each upstream attempt: the gateway wraps the per-route call it hands the Dispatcher.

The Dispatcher calls `call(route)` once per attempt (a retry, a fallback or a hedge is one more call),
so wrapping that function counts every attempt with its outcome, gives each its own client span,
and logs each failed one at WARNING (provider, model, attempt number, what failed and the call
tried), without the Dispatcher knowing. The access line says how the request ended; these lines
say why each try on the way failed. Retries, fallbacks, hedges and breaker state are the
Dispatcher's to report, through `metrics.record_retry` and friends.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol, TypeVar

from server.errors import GatewayError
from server.observability import metrics, tracing
from server.providers.base import RequestContext

__all__ = ["observed_call", "observed_stream"]

logger = logging.getLogger("siraya.upstream")

Result = TypeVar("Result")
# The catalogue's model kind -> the GenAI semantic conventions' operation name.
_OPERATIONS = {
    "chat": "chat",
    "embedding": "embeddings",
    "image": "generate_content",
    "video": "generate_content",
}


class _Deployment(Protocol):
    provider: str
    upstream_model: str


class _Entry(Protocol):
    id: str


class _Route(Protocol):
    @property
    def deployment(self) -> _Deployment: ...

    @property
    def entry(self) -> _Entry: ...


def _outcome(error: BaseException) -> str:
    if isinstance(error, (asyncio.CancelledError, GeneratorExit)):
        return "cancelled"
    if isinstance(error, GatewayError):
        return error.code or error.kind.default_code
    return "internal_error"


class _Attempt:
    __slots__ = ("route", "number", "ctx", "provider", "started_at", "span", "row")

    def __init__(
        self, route: _Route, operation: str, parent: dict[str, str] | None, ctx: RequestContext, number: int
    ) -> None:
        deployment = route.deployment
        self.route = route
        self.number = number
        self.ctx = ctx
        self.provider = deployment.provider
        self.started_at = time.monotonic()
        self.span = None
        # The ledger's row of this attempt (server/providers/base.py Outcome.attempts).
        self.row = [
            deployment.provider,
            route.entry.id,
            deployment.upstream_model,
            self.started_at,
            None,
            None,
            None,
            None,
            route,
        ]
        rows = ctx.outcome.attempts
        if rows is None:
            ctx.outcome.attempts = [self.row]
        else:
            rows.append(self.row)
        if parent is not None:
            self.span = tracing.start_attempt_span(
                parent,
                f"{operation} {deployment.upstream_model}",
                ctx.forward_headers,
                {
                    "gen_ai.operation.name": operation,
                    "gen_ai.provider.name": deployment.provider,
                    "gen_ai.request.model": deployment.upstream_model,
                },
            )

    def end(self, error: BaseException | None, attributes: dict[str, Any] | None = None) -> None:
        outcome = "ok" if error is None else _outcome(error)
        elapsed = time.monotonic() - self.started_at
        row = self.row
        row[4] = elapsed
        row[5] = outcome
        if isinstance(error, GatewayError):
            row[6] = error.kind.http_status
            if row[7] is None:
                row[7] = error  # it may say what the provider billed for it (`billed_usage`)
        metrics.record_attempt(self.provider, outcome, elapsed)
        if self.span is not None:
            tracing.finish_span(self.span, attributes or {}, None if error is None else outcome)
        if isinstance(error, GatewayError) and logger.isEnabledFor(logging.WARNING):
            self._log_failure(error, outcome, elapsed)

    def _log_failure(self, error: GatewayError, outcome: str, elapsed: float) -> None:
        deployment = self.route.deployment
        logger.warning(
            "upstream attempt %d to provider '%s' failed: %s",
            self.number,
            deployment.provider,
            error.message,
            extra={
                "request_id": self.ctx.request_id,
                "provider": deployment.provider,
                "model": self.route.entry.id,
                "upstream_model": deployment.upstream_model,
                "attempt": self.number,
                "code": outcome,
                "status": error.kind.http_status,
                "upstream_status": error.upstream_status,
                "upstream_url": error.upstream_url,
                "latency_ms": round(elapsed * 1000, 2),
            },
        )


def observed_call(
    call: Callable[[Any], Awaitable[Result]], ctx: RequestContext, kind: str
) -> Callable[[Any], Awaitable[Result]]:
    """`call`, counting and tracing each attempt; `kind` is the catalogue's model kind."""
    parent = tracing.parent_of(ctx.forward_headers)
    operation = _OPERATIONS.get(kind, kind)
    count = 0

    async def attempt(route: Any) -> Result:
        nonlocal count
        count += 1
        observation = _Attempt(route, operation, parent, ctx, count)
        try:
            result = await call(route)
        except BaseException as error:
            observation.end(error)
            raise
        observation.row[7] = result  # what it spent, read by server/attempt_spend.py
        observation.end(None, _usage_attributes(result))
        return result

    return attempt


def observed_stream(
    call: Callable[[Any], AsyncIterator[Result]], ctx: RequestContext, kind: str
) -> Callable[[Any], AsyncIterator[Result]]:
    parent = tracing.parent_of(ctx.forward_headers)
    operation = _OPERATIONS.get(kind, kind)
    count = 0

    async def attempt(route: Any) -> AsyncIterator[Result]:
        nonlocal count
        count += 1
        observation = _Attempt(route, operation, parent, ctx, count)
        try:
            items = aiter(call(route))  # one iterator for both loops
            # The first item is kept on the row: a hedge that lost after it still spent it.
            async for item in items:
                observation.row[7] = item
                yield item
                break
            async for item in items:
                yield item
        except BaseException as error:
            observation.end(error)
            raise
        observation.end(None)

    return attempt


def _usage_attributes(result: Any) -> dict[str, Any] | None:
    if not tracing.enabled():
        return None
    # A chat answer (server/chat_reply.py) holds the upstream's own form: a relayed JSON object or a proto.
    result = getattr(result, "answer", result)
    if isinstance(result, dict):  # an answer kept as OpenAI's JSON object
        usage = result.get("usage")
        if not isinstance(usage, dict):
            return None
        return {
            "gen_ai.usage.input_tokens": usage.get("prompt_tokens", 0),
            "gen_ai.usage.output_tokens": usage.get("completion_tokens", 0),
            "gen_ai.response.id": result.get("id") or None,
        }
    try:
        if not result.HasField("usage"):
            return None
    except (AttributeError, ValueError):
        return None
    usage = result.usage
    return {
        "gen_ai.usage.input_tokens": getattr(usage, "prompt_tokens", None)
        or getattr(usage, "input_tokens", 0),
        "gen_ai.usage.output_tokens": getattr(usage, "completion_tokens", None)
        or getattr(usage, "output_tokens", 0),
        "gen_ai.response.id": getattr(result, "id", None) or None,
    }
