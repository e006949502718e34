"""The Dispatcher: retries, fallbacks, breakers, timeouts, streaming failover and hedging.

Providers here are scripted in memory (each call takes the next step of its script), so every
rule is checked by the calls a provider saw; the e2e suite checks the same over real HTTP.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from server.config import BreakerConfig, HedgingConfig, ResilienceConfig, RetryConfig, TimeoutConfig
from server.errors import (
    GatewayError,
    InvalidRequest,
    NoAvailableProvider,
    RateLimited,
    RequestTimeout,
    UpstreamError,
    UpstreamOverloaded,
)
from server.providers.base import RequestContext
from server.routing.breaker import InProcessBreakers
from server.routing.catalogue import CatalogueEntry, Deployment
from server.routing.dispatch import Dispatcher
from server.routing.route import Route
from siraya.router.v1 import common_pb2

FAST_RETRY = RetryConfig(max_attempts=2, base_delay=0.01, max_delay=0.02, max_retry_after=5)


def status_error(cls: type[GatewayError], status: int, **kwargs: Any) -> GatewayError:
    error = cls(f"HTTP {status}", **kwargs)
    error.upstream_status = status
    return error


@dataclass
class Scripted:
    """A provider whose calls follow `script`: "ok", an error to raise, or ("hang", seconds).

    For streams a step may also be ("cut", n): n chunks, then an UpstreamError.
    """

    name: str
    script: list[Any] = field(default_factory=list)
    calls: int = 0
    cancelled: int = 0
    native_responses: bool = False

    def _step(self) -> Any:
        self.calls += 1
        return self.script.pop(0) if self.script else "ok"

    async def chat(self, upstream_model: str) -> str:
        step = self._step()
        try:
            if isinstance(step, tuple) and step[0] == "hang":
                await asyncio.sleep(step[1])
                return f"{self.name}:late"
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        if isinstance(step, BaseException):
            raise step
        return f"{self.name}:{upstream_model}"

    async def stream_chat(self, upstream_model: str) -> AsyncIterator[str]:
        step = self._step()
        try:
            if isinstance(step, tuple) and step[0] == "hang":
                await asyncio.sleep(step[1])
            if isinstance(step, BaseException):
                raise step
            count = step[1] if isinstance(step, tuple) and step[0] == "cut" else 3
            for index in range(count):
                yield f"{self.name}:{index}"
                await asyncio.sleep(0)
            if isinstance(step, tuple) and step[0] == "cut":
                raise UpstreamError(f"Provider '{self.name}' cut the stream short.")
        except asyncio.CancelledError:
            self.cancelled += 1
            raise


def entry(model_id: str, *names: str, resilience: ResilienceConfig | None = None) -> CatalogueEntry:
    return CatalogueEntry(
        id=model_id,
        kind="chat",
        owned_by="test",
        created=0,
        context_window=None,
        pricing=Deployment("x", "y").pricing,
        deployments=tuple(Deployment(name, f"{name}-model") for name in names),
        resilience=resilience or ResilienceConfig(retry=FAST_RETRY),
    )


class Recorder:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


def dispatcher(*providers: Scripted, **kwargs: Any) -> tuple[Dispatcher, Recorder]:
    sleep = Recorder()
    kwargs.setdefault("rng", random.Random(0))
    return Dispatcher({p.name: p for p in providers}, sleep=sleep, **kwargs), sleep  # type: ignore[misc]


def ordered(*names: str, **fields: Any) -> common_pb2.Routing:
    return common_pb2.Routing(provider=common_pb2.ProviderPreferences(order=list(names), **fields))


def ctx(deadline: float | None = None) -> RequestContext:
    return RequestContext(request_id="req_test", deadline=deadline)


async def unary(
    d: Dispatcher, e: CatalogueEntry, routing: common_pb2.Routing, **kwargs: Any
) -> tuple[str, Route]:
    return await d.unary(e, routing, ctx(), lambda r: r.provider.chat(r.deployment.upstream_model), **kwargs)


async def collect(d: Dispatcher, e: CatalogueEntry, routing: common_pb2.Routing, **kw: Any) -> list[str]:
    items = []
    async for item, _ in d.stream(
        e,
        routing,
        kw.pop("context", ctx()),
        lambda r: r.provider.stream_chat(r.deployment.upstream_model),
        **kw,
    ):
        items.append(item)
    return items


async def test_a_500_is_retried_on_the_same_deployment_with_backoff() -> None:
    a, b = Scripted("a", [status_error(UpstreamError, 500)]), Scripted("b")
    d, sleep = dispatcher(a, b)
    result, route = await unary(d, entry("m", "a", "b"), ordered("a", "b"))
    assert (result, route.deployment.provider, a.calls, b.calls) == ("a:a-model", "a", 2, 0)
    assert len(sleep.delays) == 1 and 0.005 <= sleep.delays[0] <= 0.01
    assert (d.counters.attempts, d.counters.retries, d.counters.fallbacks) == (2, 1, 0)


async def test_retry_after_is_honoured_up_to_the_cap() -> None:
    a = Scripted("a", [status_error(RateLimited, 429, retry_after=1.5)])
    b = Scripted("b")
    d, sleep = dispatcher(a, b)
    assert (await unary(d, entry("m", "a", "b"), ordered("a", "b")))[0] == "a:a-model"
    assert sleep.delays == [1.5]
    a.script = [status_error(RateLimited, 429, retry_after=60)]
    result, route = await unary(d, entry("m", "a", "b"), ordered("a", "b"))
    assert route.deployment.provider == "b" and sleep.delays == [1.5], "too long a wait moves on at once"


async def test_credentials_errors_fail_over_without_retry() -> None:
    a, b = Scripted("a", [status_error(UpstreamError, 401)]), Scripted("b")
    d, sleep = dispatcher(a, b)
    _, route = await unary(d, entry("m", "a", "b"), ordered("a", "b"))
    assert (route.deployment.provider, a.calls, sleep.delays, d.counters.fallbacks) == ("b", 1, [], 1)


async def test_a_bad_request_ends_at_once() -> None:
    a, b = Scripted("a", [status_error(InvalidRequest, 400)]), Scripted("b")
    d, _ = dispatcher(a, b)
    with pytest.raises(InvalidRequest):
        await unary(d, entry("m", "a", "b"), ordered("a", "b"))
    assert (a.calls, b.calls) == (1, 0)


async def test_an_unsupported_parameter_tries_the_next_deployment() -> None:
    gap = InvalidRequest("The parameter 'n' is not supported.", param="n", code="unsupported_parameter")
    a, b = Scripted("a", [gap]), Scripted("b")
    d, _ = dispatcher(a, b)
    assert (await unary(d, entry("m", "a", "b"), ordered("a", "b")))[1].deployment.provider == "b"
    a.script, b.script = [gap], [gap]
    with pytest.raises(InvalidRequest) as caught:
        await unary(d, entry("m", "a", "b"), ordered("a", "b"))
    assert caught.value.code == "unsupported_parameter" and caught.value.param == "n"


async def test_every_deployment_down_is_a_502_naming_what_was_tried() -> None:
    a = Scripted("a", [status_error(UpstreamError, 500)] * 2)
    b = Scripted("b", [UpstreamError("Provider 'b' is unreachable (ClientConnectorError).")] * 2)
    d, _ = dispatcher(a, b)
    with pytest.raises(UpstreamError) as caught:
        await unary(d, entry("m", "a", "b"), ordered("a", "b"))
    message = caught.value.message
    # Each deployment's own reason, a retry that failed alike counted once.
    assert message.startswith("Every provider of model 'm' failed. Tried: a/a-model (")
    assert "b/b-model (Provider 'b' is unreachable (ClientConnectorError)) x2" in message
    assert (a.calls, b.calls, d.counters.exhausted) == (2, 2, 1)


async def test_every_candidate_rate_limited_is_a_429_with_the_shortest_wait() -> None:
    a = Scripted("a", [status_error(RateLimited, 429, retry_after=30)])
    b = Scripted("b", [status_error(RateLimited, 429, retry_after=20)])
    d, _ = dispatcher(a, b)
    with pytest.raises(RateLimited) as caught:
        await unary(d, entry("m", "a", "b"), ordered("a", "b"))
    assert caught.value.retry_after == 20 and (a.calls, b.calls) == (1, 1)


async def test_every_candidate_overloaded_stays_overloaded_with_the_shortest_wait() -> None:
    a = Scripted("a", [status_error(UpstreamOverloaded, 529, retry_after=9)] * 2)
    b = Scripted("b", [status_error(UpstreamOverloaded, 503, retry_after=4)] * 2)
    d, _ = dispatcher(a, b)
    with pytest.raises(UpstreamOverloaded) as caught:
        await unary(d, entry("m", "a", "b", resilience=ResilienceConfig()), ordered("a", "b"))
    assert caught.value.retry_after == 4 and "is overloaded" in caught.value.message
    assert caught.value.kind.http_status == 502
    # One overloaded and one plainly failed: an ordinary upstream failure.
    a.script, b.script = [status_error(UpstreamOverloaded, 529)], [status_error(UpstreamError, 500)]
    with pytest.raises(UpstreamError) as mixed:
        await unary(d, entry("m", "a", "b", resilience=ResilienceConfig()), ordered("a", "b"))
    assert type(mixed.value) is UpstreamError


async def test_a_total_timeout_is_a_408_unless_a_fallback_succeeds() -> None:
    slow = ResilienceConfig(retry=RetryConfig(max_attempts=1), timeouts=TimeoutConfig(total=0.05))
    a, b = Scripted("a", [("hang", 5)]), Scripted("b")
    d, _ = dispatcher(a, b)
    _, route = await unary(d, entry("m", "a", "b", resilience=slow), ordered("a", "b"))
    assert route.deployment.provider == "b"
    assert a.cancelled == 1
    a.script = [("hang", 5)]
    with pytest.raises(RequestTimeout) as caught:
        await unary(d, entry("m", "a", resilience=slow), ordered("a"))
    assert "a/a-model (Provider 'a' sent no reply within 0.05s)" in caught.value.message


async def test_the_request_deadline_bounds_retries_and_attempts() -> None:
    a = Scripted("a", [status_error(RateLimited, 429, retry_after=2)])
    d, sleep = dispatcher(a)
    call = lambda r: r.provider.chat(r.deployment.upstream_model)  # noqa: E731
    with pytest.raises(RateLimited) as limited:
        await d.unary(entry("m", "a"), common_pb2.Routing(), ctx(time.monotonic() + 0.5), call)
    assert limited.value.retry_after == 2 and sleep.delays == [] and a.calls == 1, "a wait past the deadline"
    a.script = [("hang", 5)]
    with pytest.raises(RequestTimeout):
        await d.unary(entry("m", "a"), common_pb2.Routing(), ctx(time.monotonic() + 0.05), call)
    assert a.cancelled == 1


async def test_filters_that_match_nothing_are_a_503() -> None:
    d, _ = dispatcher(Scripted("a"))
    with pytest.raises(NoAvailableProvider):
        await unary(d, entry("m", "a"), ordered(only=["zzz"]))


async def test_fallback_models_are_tried_after_the_model() -> None:
    a, b = Scripted("a", [status_error(UpstreamError, 503)] * 2), Scripted("b")
    fallback = entry("backup", "b")
    d, _ = dispatcher(a, b)
    result, route = await unary(
        d, entry("m", "a"), common_pb2.Routing(models=["backup"]), resolve=lambda model_id: fallback
    )
    assert (result, route.entry.id, route.deployment.provider) == ("b:b-model", "backup", "b")
    assert d.counters.fallbacks == 1


async def test_allow_fallbacks_false_stays_on_the_ordered_provider() -> None:
    a, b = Scripted("a", [status_error(UpstreamError, 500)] * 2), Scripted("b")
    d, _ = dispatcher(a, b)
    with pytest.raises(UpstreamError):
        await unary(d, entry("m", "a", "b"), ordered("a", allow_fallbacks=False))
    assert (a.calls, b.calls) == (2, 0)


async def test_an_open_breaker_skips_the_deployment_until_the_probe() -> None:
    clock_now = [0.0]
    breakers = InProcessBreakers(lambda: clock_now[0])
    policy = ResilienceConfig(
        retry=RetryConfig(max_attempts=1), breaker=BreakerConfig(consecutive_failures=2, cooldown=30)
    )
    dead, alive = Scripted("dead", [status_error(UpstreamError, 500)] * 3), Scripted("alive")
    d, _ = dispatcher(dead, alive, breakers=breakers)
    model = entry("m", "dead", "alive", resilience=policy)
    for _ in range(2):
        assert (await unary(d, model, ordered("dead", "alive")))[1].deployment.provider == "alive"
    for _ in range(3):
        await unary(d, model, ordered("dead", "alive"))
    assert dead.calls == 2 and d.counters.breaker_skips == 3
    clock_now[0] = 30.0
    await unary(d, model, ordered("dead", "alive"))
    assert dead.calls == 3, "one half-open probe"
    assert (await unary(d, model, ordered("dead", "alive")))[1].deployment.provider == "alive"
    assert dead.calls == 3
    with pytest.raises(UpstreamOverloaded) as caught:
        await unary(d, entry("m", "dead", resilience=policy), ordered("dead"))
    assert "circuit is open" in caught.value.message and dead.calls == 3


async def test_a_stream_failing_before_its_first_item_fails_over_unseen() -> None:
    a, b = Scripted("a", [status_error(UpstreamError, 502), ("cut", 0)]), Scripted("b")
    d, _ = dispatcher(a, b)
    assert await collect(d, entry("m", "a", "b"), ordered("a", "b")) == ["b:0", "b:1", "b:2"]
    assert (a.calls, b.calls) == (2, 1)


async def test_a_stream_failing_after_its_first_item_raises_without_failover() -> None:
    a, b = Scripted("a", [("cut", 2)]), Scripted("b")
    d, _ = dispatcher(a, b)
    seen: list[str] = []
    with pytest.raises(UpstreamError):
        async for item, _ in d.stream(
            entry("m", "a", "b"),
            ordered("a", "b"),
            ctx(),
            lambda r: r.provider.stream_chat(r.deployment.upstream_model),
        ):
            seen.append(item)
    assert seen == ["a:0", "a:1"] and b.calls == 0


async def test_first_token_timeout_fails_over_and_idle_timeout_ends_the_stream() -> None:
    policy = ResilienceConfig(retry=RetryConfig(max_attempts=1), timeouts=TimeoutConfig(first_token=0.05))
    a, b = Scripted("a", [("hang", 5)]), Scripted("b")
    d, _ = dispatcher(a, b)
    items = await collect(d, entry("m", "a", "b", resilience=policy), ordered("a", "b"))
    assert items == ["b:0", "b:1", "b:2"]
    assert a.cancelled == 1
    a.script = [("hang", 5)]
    with pytest.raises(RequestTimeout):
        await collect(d, entry("m", "a", resilience=policy), ordered("a"))


async def test_hedging_races_the_next_deployment_and_cancels_the_loser() -> None:
    policy = ResilienceConfig(hedging=HedgingConfig(enabled=True, delay=0.05))
    slow, fast = Scripted("slow", [("hang", 5)]), Scripted("fast")
    d, _ = dispatcher(slow, fast)
    result, route = await unary(d, entry("m", "slow", "fast", resilience=policy), ordered("slow", "fast"))
    assert (result, route.deployment.provider) == ("fast:fast-model", "fast")
    assert slow.cancelled == 1 and d.counters.hedges == 1
    slow.script = [("hang", 5)]
    items = await collect(d, entry("m", "slow", "fast", resilience=policy), ordered("slow", "fast"))
    assert items == ["fast:0", "fast:1", "fast:2"] and slow.cancelled == 2


async def test_a_quick_answer_is_never_hedged() -> None:
    policy = ResilienceConfig(hedging=HedgingConfig(enabled=True, delay=1))
    a, b = Scripted("a"), Scripted("b")
    d, _ = dispatcher(a, b)
    await unary(d, entry("m", "a", "b", resilience=policy), ordered("a", "b"))
    assert (a.calls, b.calls, d.counters.hedges) == (1, 0, 0)


async def test_a_cancelled_request_cancels_the_upstream_call_and_its_hedge() -> None:
    policy = ResilienceConfig(hedging=HedgingConfig(enabled=True, delay=0.01))
    a, b = Scripted("a", [("hang", 5)]), Scripted("b", [("hang", 5)])
    d, _ = dispatcher(a, b)
    task = asyncio.ensure_future(unary(d, entry("m", "a", "b", resilience=policy), ordered("a", "b")))
    while b.calls == 0:
        await asyncio.sleep(0.005)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert (a.cancelled, b.cancelled) == (1, 1)


class Events:
    def __init__(self) -> None:
        self.seen: list[tuple[str, ...]] = []

    def retry(self, deployment: Deployment) -> None:
        self.seen.append(("retry", deployment.provider))

    def fallback(self, failed: Deployment, next_: Deployment) -> None:
        self.seen.append(("fallback", failed.provider, next_.provider))

    def hedge(self, deployment: Deployment) -> None:
        self.seen.append(("hedge", deployment.provider))

    def breaker(self, key: str, state: str) -> None:
        self.seen.append(("breaker", key, state))


async def test_operations_events_report_retries_fallbacks_hedges_and_breakers() -> None:
    events = Events()
    now = [0.0]
    policy = ResilienceConfig(retry=FAST_RETRY, breaker=BreakerConfig(consecutive_failures=2, cooldown=10))
    a, b = Scripted("a", [status_error(UpstreamError, 500)] * 2), Scripted("b")
    d, _ = dispatcher(a, b, events=events, breakers=InProcessBreakers(lambda: now[0]))
    await unary(d, entry("m", "a", "b", resilience=policy), ordered("a", "b"))
    assert events.seen == [("retry", "a"), ("breaker", "a/a-model", "open"), ("fallback", "a", "b")]
    now[0], events.seen = 10.0, []
    await unary(d, entry("m", "a", "b", resilience=policy), ordered("a", "b"))
    assert events.seen == [("breaker", "a/a-model", "half_open"), ("breaker", "a/a-model", "closed")]
    hedged = ResilienceConfig(hedging=HedgingConfig(enabled=True, delay=0.01))
    a.script, events.seen = [("hang", 5)], []
    await unary(d, entry("m", "a", "b", resilience=hedged), ordered("a", "b"))
    assert events.seen == [("hedge", "b")]


async def test_a_timeout_from_the_callers_own_deadline_never_opens_the_breaker() -> None:
    policy = ResilienceConfig(breaker=BreakerConfig(consecutive_failures=1, cooldown=60))
    a = Scripted("a", [("hang", 5)] * 3)
    d, _ = dispatcher(a)
    call = lambda r: r.provider.chat(r.deployment.upstream_model)  # noqa: E731
    for _ in range(2):
        with pytest.raises(RequestTimeout):
            await d.unary(
                entry("m", "a", resilience=policy), common_pb2.Routing(), ctx(time.monotonic() + 0.02), call
            )
    assert a.calls == 2 and d.breakers.opened == 0
    slow = ResilienceConfig(breaker=policy.breaker, timeouts=TimeoutConfig(total=0.02))
    with pytest.raises(RequestTimeout):
        await unary(d, entry("m", "a", resilience=slow), common_pb2.Routing())
    assert d.breakers.opened == 1, "the model's own timeout does count"
