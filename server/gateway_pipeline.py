"""The core every endpoint of the `Gateway` takes: the one unary path (`_unary`) and the one stream
path (`_stream`), with the model checks they start with (`_entry`, `_fallbacks`).

The endpoints (`server/gateway_chat.py`, `gateway_responses.py`, `gateway_embeddings.py`,
`gateway_media.py`) are mixins built on this class; `Gateway` (`server/gateway.py`) joins them and
sets the attributes declared here.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from server.accounts.in_flight import InFlightLimit
from server.accounts.keys import KeyRecord
from server.accounts.metering import Consumption, Demand, Metering
from server.accounts.sqlite_store import SqliteStore
from server.attempt_spend import spend_stream, spend_unary
from server.background_responses import BackgroundResponses
from server.errors import ModelNotFound, NoAvailableProvider, PermissionDenied
from server.model_access import may_use
from server.observability.attempts import observed_call, observed_stream
from server.providers.base import Provider, RequestContext
from server.request_outcome import record_outcome
from server.response_cache.stage import Form, ResponseCache, replay
from server.routing.catalogue import Catalogue, CatalogueEntry, unpriced_refusal
from server.routing.dispatch import Dispatcher
from server.routing.route import Route
from server.stored_responses import ResponseState
from server.stream_items import Result, StreamItems
from siraya.router.v1 import common_pb2


class Pipeline:
    catalogue: Catalogue
    providers: dict[str, Provider]
    store: SqliteStore
    dispatcher: Dispatcher
    metering: Metering
    in_flight: InFlightLimit
    state: ResponseState | None
    background: BackgroundResponses | None
    cache: ResponseCache | None

    def _entry(self, model: str, kind: str, key: KeyRecord) -> CatalogueEntry:
        try:
            entry = self.catalogue.resolve(model, kind)
        except ModelNotFound:
            raise ModelNotFound(model, self.catalogue.usable(kind, key.allowed_models)) from None
        if not may_use(key, entry):
            raise PermissionDenied(
                f"This key is not allowed to use the model '{entry.id}'.",
                param="model",
                code="model_not_allowed",
            )
        if entry.unpriced and key.credit_limit is not None:
            raise unpriced_refusal(entry)
        return entry

    def _fallbacks(self, routing: common_pb2.Routing, kind: str, key: KeyRecord) -> dict[str, CatalogueEntry]:
        """Each fallback model the request names (`models`), resolved and checked as the model itself
        is, before admission: its reservation covers whichever of them serves (a fallback with no
        price is refused to a key with a credit limit, as the model would be, rather than skipped)."""
        return {model: self._entry(model, kind, key) for model in routing.models}

    async def _unary(
        self,
        kind: str,
        model: str,
        routing: common_pb2.Routing,
        demand: Demand,
        key: KeyRecord,
        ctx: RequestContext,
        call: Callable[[Route], Awaitable[Result]],
        consumed: Callable[[Result, Demand], Consumption],
        form: Form[Result] | None = None,
    ) -> tuple[Result, Route, float | None]:
        """Admit, dispatch and settle one unary request: (result, the route that served it, cost).

        `consumed` reads the upstream's usage off the result; given the demand, it falls back to
        the request's estimate when the upstream reported none. With a `form`, the answer may come
        from the response cache and go to it (server/response_cache/).
        """
        entry = self._entry(model, kind, key)
        ctx.key_id, ctx.outcome.model = key.id, entry.id
        cached = None
        if form is not None and self.cache is not None:
            cached = self.cache.plan(entry, demand, key, ctx, form, False)
            hit = None if cached is None else await cached.hit(key, ctx)
            if hit is not None:
                record_outcome(ctx, hit[1], hit[2], 0.0)
                return hit[0][0], hit[1], 0.0
        fallbacks = self._fallbacks(routing, kind, key)
        in_flight, key_id = self.in_flight.counts, key.id
        count = in_flight.get(key_id, 0)
        if count >= self.in_flight.limit:
            raise self.in_flight.refused(count)
        in_flight[key_id] = count + 1
        try:
            meter = await self.metering.admit(key, entry, demand, ctx, tuple(fallbacks.values()))
            try:
                result, route = await self.dispatcher.unary(
                    entry,
                    routing,
                    ctx,
                    observed_call(call, ctx, kind),
                    resolve=fallbacks.__getitem__,
                    params=demand.params,
                )
            except BaseException as error:
                spend_unary(ctx.outcome.attempts, None, None, consumed, demand)
                await meter.fail(error)
                raise
            if ctx.outcome.bodies is not None:
                ctx.outcome.bodies.answer(result)
            consumption = consumed(result, demand)
            spend_unary(ctx.outcome.attempts, result, consumption, consumed, demand)
            cost = await meter.settle(route.deployment, consumption)
        finally:
            in_flight[key_id] -= 1
        record_outcome(ctx, route, consumption, cost)
        if cached is not None:
            cached.add(result)
            await cached.keep(route, consumption)
        return result, route, cost

    async def _stream(
        self,
        kind: str,
        model: str,
        routing: common_pb2.Routing,
        demand: Demand,
        key: KeyRecord,
        ctx: RequestContext,
        call: Callable[[Route], AsyncIterator[Result]],
        items: StreamItems[Result],
        show_usage: bool = True,
    ) -> AsyncIterator[Result]:
        """Admit, dispatch and settle one stream; `items` says how to read and mark its items.

        Every upstream is made to report usage (an OpenAI-protocol one is asked for it; Anthropic and
        Gemini always send it), so the stream is settled on the upstream's own count. The item
        carrying the final usage settles the stream before it is sent, so its usage can carry the
        cost; the client sees it only with `show_usage` (chat's `stream_options.include_usage`).
        Usage on any other item is running usage: it is counted, never shown, and becomes the usage
        chunk at the end when no final one came. A stream whose upstream sent no usage at all is
        settled at its end on its prompt and text, counted with the tokenizer.

        A client that goes away cancels the stream: the usage known until then is settled (the
        upstream's running count of the prompt, else the tokenizer's, plus the text relayed,
        counted with the tokenizer), unless the stream already was.
        """
        entry = self._entry(model, kind, key)
        ctx.key_id, ctx.outcome.model = key.id, entry.id
        cached = None
        if self.cache is not None and items.form is not None:
            cached = self.cache.plan(entry, demand, key, ctx, items.form, True)
            hit = None if cached is None else await cached.hit(key, ctx)
            if hit is not None:
                record_outcome(ctx, hit[1], hit[2], 0.0)
                ctx.outcome.first_item_at = time.monotonic()
                for item in replay(hit[0], items.consumed, ctx):
                    yield item
                return
        fallbacks = self._fallbacks(routing, kind, key)
        in_flight, key_id = self.in_flight.counts, key.id
        count = in_flight.get(key_id, 0)
        if count >= self.in_flight.limit:
            raise self.in_flight.refused(count)
        in_flight[key_id] = count + 1
        try:
            meter = await self.metering.admit(key, entry, demand, ctx, tuple(fallbacks.values()))
            total = Consumption()
            route: Route | None = None
            settled = reported = False
            # The last item that carried running usage, and that usage, taken off it.
            running: tuple[Result, Any] | None = None
            # Marks each item with what served it and gives it in its final form (the first item's).
            stamp: Callable[[Result], Result] | None = None
            bodies = ctx.outcome.bodies  # observability.store_bodies: the answer's text, as it streams
            try:
                attempts = observed_stream(call, ctx, kind)
                routed = self.dispatcher.stream(
                    entry,
                    routing,
                    ctx,
                    attempts,
                    resolve=fallbacks.__getitem__,
                    params=demand.params,
                )
                async for item, route in routed:
                    if stamp is None:
                        ctx.outcome.first_item_at = time.monotonic()
                        ctx.outcome.provider = route.deployment.provider
                        stamp = items.stamper(route, show_usage, item)
                    if bodies is not None:
                        bodies.add(item)
                    if (usage := items.consumed(item, total)) is not None:
                        reported = True
                        if items.final(item):
                            running = None
                            if not settled:
                                settled = True
                                spend_stream(ctx.outcome.attempts, route, total, True, items.consumed, demand)
                                cost = await meter.settle(route.deployment, total)
                                record_outcome(ctx, route, total, cost)
                                if show_usage:
                                    items.charge(usage, cost)
                            if not show_usage:
                                continue
                        else:
                            running = (item, items.strip(item, show_usage))
                    item = stamp(item)
                    if cached is not None:
                        cached.add(item)
                    yield item
            except BaseException as error:
                if settled:
                    raise
                # What each attempt spent upstream, a stream cut or cancelled included (the key
                # pays for a cancelled one only).
                spend_stream(ctx.outcome.attempts, route, total, reported, items.consumed, demand)
                if route is None or not isinstance(error, (asyncio.CancelledError, GeneratorExit)):
                    await meter.fail(error)
                    raise
                record_outcome(ctx, route, total, await meter.settle(route.deployment, total, cancelled=True))
                raise
            if route is None:
                spend_stream(ctx.outcome.attempts, None, total, reported, items.consumed, demand)
                await meter.fail(NoAvailableProvider("The stream ended before it started."))
                return
            if not settled:
                spend_stream(ctx.outcome.attempts, route, total, reported, items.consumed, demand)
                cost = await meter.settle(route.deployment, total)
                record_outcome(ctx, route, total, cost)
                if show_usage and running is not None and stamp is not None:
                    like, usage = running
                    items.charge(usage, cost)
                    last = stamp(items.usage_item(like, usage))
                    if cached is not None:
                        cached.add(last)
                    yield last
            if cached is not None:
                await cached.keep(route, total)
        finally:
            in_flight[key_id] -= 1
