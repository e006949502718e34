"""The gateway core: authenticate, route, call the provider, and stamp what served the request.

It knows neither gRPC nor HTTP: servicers call it with protos and a RequestContext.
"""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from server.accounts.in_flight import InFlightLimit
from server.accounts.keys import KeyManager, KeyRecord
from server.accounts.metering import Consumption, Demand, Metering
from server.accounts.sqlite_store import SqliteStore, VideoJob
from server.attempt_spend import spend_stream, spend_unary
from server.background_responses import BackgroundResponses
from server.chat_reply import (
    CHAT_ANSWER_FORM,
    CHAT_CHUNK_FORM,
    ChatAnswer,
    ChatChunk,
    charge_chunk_usage,
    charge_usage_json,
    chunk_is_final_any,
    chunk_stamper,
    fold_any_chunk,
    strip_chunk_usage,
    usage_chunk_like,
)
from server.errors import ModelNotFound, NoAvailableProvider, NotFound, PermissionDenied
from server.gateway_usage import (
    chat_demand,
    embedding_consumption,
    embedding_demand,
    event_is_final,
    fold_response_event,
    response_answer_consumption,
    response_demand,
    video_seconds,
)
from server.messages_usage import (
    fold_message_event,
    message_consumption,
    message_event_usage,
    stamp_message,
    stamp_message_event,
)
from server.observability.attempts import observed_call, observed_stream
from server.providers import messages_relay
from server.providers.base import Provider, RelayChatProvider, RequestContext, VideoContent
from server.response_cache.stage import Form, MessagesForm, ProtoForm, ResponseCache, replay
from server.routing.catalogue import Catalogue, CatalogueEntry, entry_to_proto, unpriced_refusal
from server.routing.dispatch import Dispatcher
from server.routing.route import Route
from server.stored_responses import ResponseState, Turn
from siraya.router.codec.bounds import check_chat, check_embedding, check_response
from siraya.router.codec.fields import JsonObject
from siraya.router.v1 import (
    chat_pb2,
    common_pb2,
    embeddings_pb2,
    images_pb2,
    models_pb2,
    responses_pb2,
    videos_pb2,
)

VIDEO_TERMINAL_STATES = frozenset({"completed", "failed"})
MIN_VIDEO_POLL_SECONDS = 0.05


Result = TypeVar("Result")
UsageMessage = common_pb2.Usage | responses_pb2.ResponseUsage


class Gateway:
    def __init__(
        self,
        catalogue: Catalogue,
        providers: dict[str, Provider],
        keys: KeyManager,
        store: SqliteStore,
        *,
        dispatcher: Dispatcher | None = None,
        metering: Metering | None = None,
        in_flight: InFlightLimit | None = None,
        state: ResponseState | None = None,
        background: BackgroundResponses | None = None,
        cache: ResponseCache | None = None,
    ) -> None:
        self.catalogue = catalogue
        self.providers = providers
        self.keys = keys
        self.store = store
        self.dispatcher = dispatcher or Dispatcher(providers)
        self.metering = metering or Metering()
        # Requests per key in flight (server.max_in_flight_per_key), held from admission to the end.
        self.in_flight = in_flight or InFlightLimit()
        self.state = state
        self.background = background
        self.cache = cache
        if cache is not None:
            cache.embedder = self._cache_embedding

    async def close(self) -> None:
        if self.background is not None:
            await self.background.close()
        for provider in self.providers.values():
            await provider.close()
        await self.metering.close()
        await self.dispatcher.close()
        if self.cache is not None:
            await self.cache.close()
        self.store.close()

    async def authenticate(self, authorization: str | None, ctx: RequestContext | None = None) -> KeyRecord:
        """The caller's key; it names the request in `ctx` from here on (logs, spans), whatever fails next."""
        key = await self.keys.authenticate(authorization)
        if ctx is not None:
            ctx.key_id = key.id
        return key

    def model_for(self, model: str, kind: str, key: KeyRecord) -> CatalogueEntry:
        """The entry `key` may call `model` as: 404 when unknown, 403 when the key may not use it."""
        return self._entry(model, kind, key)

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
                _record(ctx, hit[1], hit[2], 0.0)
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
        _record(ctx, route, consumption, cost)
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
                _record(ctx, hit[1], hit[2], 0.0)
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
                                _record(ctx, route, total, cost)
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
                _record(ctx, route, total, await meter.settle(route.deployment, total, cancelled=True))
                raise
            if route is None:
                spend_stream(ctx.outcome.attempts, None, total, reported, items.consumed, demand)
                await meter.fail(NoAvailableProvider("The stream ended before it started."))
                return
            if not settled:
                spend_stream(ctx.outcome.attempts, route, total, reported, items.consumed, demand)
                cost = await meter.settle(route.deployment, total)
                _record(ctx, route, total, cost)
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

    # models

    def list_models(self, key: KeyRecord | None = None) -> list[models_pb2.Model]:
        """The catalogue, or for a key limited to some models, only those: what it lists, it may use."""
        return [
            entry_to_proto(entry) for entry in self.catalogue.entries() if key is None or may_use(key, entry)
        ]

    def get_model(self, model_id: str, key: KeyRecord | None = None) -> models_pb2.Model:
        entry = self.catalogue.get(model_id)
        if key is not None and not may_use(key, entry):
            raise ModelNotFound(model_id)
        return entry_to_proto(entry)

    # chat

    def _chat_unary(
        self,
        params: chat_pb2.ChatCompletionParams,
        key: KeyRecord,
        ctx: RequestContext,
        call: Callable[[Route], Awaitable[Result]],
        consumed: Callable[[Result, Demand], Consumption],
        form: Form[Result] | None,
    ) -> Awaitable[tuple[Result, Route, float | None]]:
        # A plain function handing back `_unary`'s coroutine: no extra frame on the hot path.
        check_chat(params)
        demand = chat_demand(params)
        return self._unary("chat", params.model, params.routing, demand, key, ctx, call, consumed, form)

    def _chat_stream(
        self,
        params: chat_pb2.ChatCompletionParams,
        key: KeyRecord,
        ctx: RequestContext,
        call: Callable[[Route], AsyncIterator[Result]],
        items: StreamItems[Result],
    ) -> AsyncIterator[Result]:
        check_chat(params)
        return self._stream(
            "chat",
            params.model,
            params.routing,
            chat_demand(params),
            key,
            ctx,
            call,
            items,
            params.stream_options.include_usage,
        )

    async def chat(
        self,
        params: chat_pb2.ChatCompletionParams,
        key: KeyRecord,
        ctx: RequestContext,
        openai_body: bytes = b"",
    ) -> ChatAnswer:
        """One chat completion, in whichever form its provider gave it (see `ChatAnswer`).

        `openai_body` is the client's own OpenAI JSON (what `params` was decoded from): an
        OpenAI-compatible upstream receives it as written, with only the gateway's fields changed.
        """
        answer, route, cost = await self._chat_unary(
            params,
            key,
            ctx,
            lambda route: _chat_answer(route, params, openai_body, ctx),
            ChatAnswer.consumption,
            CHAT_ANSWER_FORM,
        )
        answer.stamp(route.entry.id, route.deployment.provider, cost)
        return answer

    def stream_chat(
        self,
        params: chat_pb2.ChatCompletionParams,
        key: KeyRecord,
        ctx: RequestContext,
        openai_body: bytes = b"",
    ) -> AsyncIterator[ChatChunk]:
        """The chunks of one chat stream, stamped: relayed bytes or protos (see `server/chat_reply.py`)."""
        return self._chat_stream(
            params, key, ctx, lambda route: _chat_chunks(route, params, openai_body, ctx), _CHUNKS
        )

    # Anthropic messages: relayed to Anthropic upstreams, translated through chat to the others

    async def message_json(
        self, params: chat_pb2.ChatCompletionParams, body: JsonObject, key: KeyRecord, ctx: RequestContext
    ) -> JsonObject:
        """A Messages request answered as Anthropic's JSON. `params` is its translation into chat: what
        admission and routing read, and what every attempt on a non-Anthropic upstream sends."""
        answer, route, cost = await self._chat_unary(
            params,
            key,
            ctx,
            lambda route: messages_relay.message_json(
                route.provider, body, params, route.deployment.upstream_model, ctx
            ),
            lambda answer, _demand: message_consumption(answer),
            MessagesForm(body, ctx.forward_headers),
        )
        usage = answer.get("usage")
        if isinstance(usage, dict):
            charge_usage_json(usage, cost)
        stamp_message(answer, route)
        return answer

    def stream_message_json(
        self,
        params: chat_pb2.ChatCompletionParams,
        body: JsonObject,
        key: KeyRecord,
        ctx: RequestContext,
        input_estimate: int,
    ) -> AsyncIterator[JsonObject]:
        """`message_json` as Anthropic's stream events (JSON objects)."""
        return self._chat_stream(
            params,
            key,
            ctx,
            lambda route: messages_relay.message_events_json(
                route.provider, body, params, route.deployment.upstream_model, ctx, input_estimate
            ),
            dataclasses.replace(_MESSAGE_EVENTS, form=MessagesForm(body, ctx.forward_headers)),
        )

    # responses

    async def respond(
        self, params: responses_pb2.ResponseParams, key: KeyRecord, ctx: RequestContext
    ) -> responses_pb2.Response:
        check_response(params)
        # Stored responses, previous_response_id and background mode: server/stored_responses.py.
        turn = None if self.state is None else await self.state.begin(params, key)
        if turn is None:
            return await self._respond(params, key, ctx)
        if turn.background and self.background is not None:
            self._entry(params.model, "chat", key)  # an unknown or forbidden model fails the create
            return await self.background.create(turn, key, ctx, self._turn_events)
        response = await self._respond(turn.params, key, ctx, turn.params_for)
        await self.state.keep(turn, response)  # type: ignore[union-attr]
        return response

    async def _respond(
        self,
        params: responses_pb2.ResponseParams,
        key: KeyRecord,
        ctx: RequestContext,
        params_for: Callable[[Route], responses_pb2.ResponseParams] | None = None,
    ) -> responses_pb2.Response:
        """`params_for` may give each attempt its own request (a native upstream's own chain)."""

        def call(route: Route) -> Awaitable[responses_pb2.Response]:
            sent = params if params_for is None else params_for(route)
            return route.provider.respond(sent, route.deployment.upstream_model, ctx)

        response, route, cost = await self._unary(
            "chat",
            params.model,
            params.routing,
            response_demand(params),
            key,
            ctx,
            call,
            response_answer_consumption,
            _RESPONSE,
        )
        response.model = route.entry.id
        response.provider = route.deployment.provider
        if cost is not None and response.HasField("usage"):
            response.usage.cost = cost
        return response

    def _response_events(
        self,
        params: responses_pb2.ResponseParams,
        key: KeyRecord,
        ctx: RequestContext,
        started: Callable[[], Awaitable[None]] | None = None,
        params_for: Callable[[Route], responses_pb2.ResponseParams] | None = None,
    ) -> AsyncIterator[responses_pb2.ResponseStreamEvent]:
        """The Responses stream pipeline; `started` is awaited as each attempt starts (admitted)."""
        check_response(params)

        def call(route: Route) -> AsyncIterator[responses_pb2.ResponseStreamEvent]:
            sent = params if params_for is None else params_for(route)
            return route.provider.stream_response(sent, route.deployment.upstream_model, ctx)

        return self._stream(
            "chat",
            params.model,
            params.routing,
            response_demand(params),
            key,
            ctx,
            call if started is None else _after(started, call),
            _EVENTS,
        )

    async def stream_response(
        self, params: responses_pb2.ResponseParams, key: KeyRecord, ctx: RequestContext
    ) -> AsyncIterator[responses_pb2.ResponseStreamEvent]:
        turn = None if self.state is None else await self.state.begin(params, key)
        if turn is None or self.state is None:
            async for event in self._response_events(params, key, ctx):
                yield event
            return
        if turn.background and self.background is not None:
            self._entry(params.model, "chat", key)
            await self.background.create(turn, key, ctx, self._turn_events)
            # The client may go away: the response runs on, and GET ?stream=true picks it up.
            async for event in self.background.watch(turn.id, key, None):
                yield event
            return
        events = self._response_events(turn.params, key, ctx, None, turn.params_for)
        async for event in self.state.stream(turn, events):
            yield event

    def _turn_events(
        self, turn: Turn, key: KeyRecord, ctx: RequestContext, started: Callable[[], Awaitable[None]]
    ) -> AsyncIterator[responses_pb2.ResponseStreamEvent]:
        return self._response_events(turn.params, key, ctx, started, turn.params_for)

    # embeddings and images

    async def _cache_embedding(
        self, model: str, text: str, key: KeyRecord, ctx: RequestContext
    ) -> Sequence[float]:
        """A text's embedding for the response cache's semantic tier: an ordinary embeddings request
        of the same key (charged and in the ledger as such, under its own id)."""
        own = RequestContext(
            request_id=ctx.request_id + "-semantic",
            key_id=key.id,
            client_request_id=ctx.client_request_id,
            deadline=ctx.deadline,
            forward_headers=ctx.forward_headers,
        )
        result = await self.embed(embeddings_pb2.EmbeddingParams(model=model, text=text), key, own)
        return result.data[0].embedding if result.data else ()

    async def embed(
        self, params: embeddings_pb2.EmbeddingParams, key: KeyRecord, ctx: RequestContext
    ) -> embeddings_pb2.EmbeddingList:
        check_embedding(params)
        result, route, cost = await self._unary(
            "embedding",
            params.model,
            params.routing,
            embedding_demand(params),
            key,
            ctx,
            lambda route: route.provider.embed(params, route.deployment.upstream_model, ctx),
            embedding_consumption,
            _EMBEDDINGS,
        )
        result.model = route.entry.id
        result.provider = route.deployment.provider
        if cost is not None and result.HasField("usage"):
            result.usage.cost = cost
        return result

    async def generate_images(
        self, params: images_pb2.ImageParams, key: KeyRecord, ctx: RequestContext
    ) -> images_pb2.ImagesResult:
        result, route, cost = await self._unary(
            "image",
            params.model,
            params.routing,
            Demand(images=params.n if params.HasField("n") else 1, params=params),
            key,
            ctx,
            lambda route: route.provider.generate_images(params, route.deployment.upstream_model, ctx),
            lambda result, demand: Consumption(images=len(result.data)),
        )
        result.model = route.entry.id
        result.provider = route.deployment.provider
        if cost is not None:
            result.usage.cost = cost
        return result

    # videos: jobs belong to the key that created them; any other key sees a 404

    async def create_video(
        self, params: videos_pb2.VideoParams, key: KeyRecord, ctx: RequestContext
    ) -> videos_pb2.Video:
        video, route, _ = await self._unary(
            "video",
            params.model,
            params.routing,
            Demand(video_seconds=video_seconds(params), params=params),
            key,
            ctx,
            lambda route: route.provider.create_video(params, route.deployment.upstream_model, ctx),
            lambda video, demand: Consumption(video_seconds=video_seconds(params)),
        )
        job = VideoJob(
            id="video_" + secrets.token_hex(16),
            key_id=key.id,
            provider=route.deployment.provider,
            upstream_id=video.id,
            model=route.entry.id,
            created_at=int(time.time()),
        )
        self.store.insert_video_job(job)
        return _stamp_video(video, job)

    def _owned_job(self, video_id: str, key: KeyRecord) -> tuple[VideoJob, Provider]:
        job = self.store.video_job(video_id)
        if job is None or job.key_id != key.id or job.provider not in self.providers:
            raise NotFound(f"No video found with id '{video_id}'.", param="video_id", code="video_not_found")
        return job, self.providers[job.provider]

    async def get_video(self, video_id: str, key: KeyRecord, ctx: RequestContext) -> videos_pb2.Video:
        job, provider = self._owned_job(video_id, key)
        return _stamp_video(await provider.get_video(job.upstream_id, ctx), job)

    async def watch_video(
        self, video_id: str, poll_interval: float, key: KeyRecord, ctx: RequestContext
    ) -> AsyncIterator[videos_pb2.Video]:
        job, provider = self._owned_job(video_id, key)
        last: tuple[str, int] | None = None
        while True:
            video = _stamp_video(await provider.get_video(job.upstream_id, ctx), job)
            state = (video.status, video.progress)
            if state != last:
                last = state
                yield video
            if video.status in VIDEO_TERMINAL_STATES:
                return
            await asyncio.sleep(max(poll_interval, MIN_VIDEO_POLL_SECONDS))

    async def download_video(
        self, video_id: str, variant: str, key: KeyRecord, ctx: RequestContext
    ) -> VideoContent:
        job, provider = self._owned_job(video_id, key)
        return await provider.download_video(job.upstream_id, variant, ctx)


def may_use(key: KeyRecord, entry: CatalogueEntry) -> bool:
    """Whether `key` may call `entry`'s model: every model, unless the key lists the ones it may."""
    return not key.allowed_models or entry.id in key.allowed_models


def _after(
    started: Callable[[], Awaitable[None]], call: Callable[[Route], AsyncIterator[Result]]
) -> Callable[[Route], AsyncIterator[Result]]:
    """`call`, with `started` awaited before each attempt (a background response's in_progress)."""

    async def called(route: Route) -> AsyncIterator[Result]:
        await started()
        async for item in call(route):
            yield item

    return called


def _record(ctx: RequestContext, route: Route, consumption: Consumption, cost: float | None) -> None:
    outcome = ctx.outcome
    outcome.model = route.entry.id
    outcome.provider = route.deployment.provider
    outcome.prompt_tokens = consumption.prompt_tokens
    outcome.completion_tokens = consumption.completion_tokens
    outcome.cached_tokens = consumption.cached_tokens
    outcome.reasoning_tokens = consumption.reasoning_tokens
    outcome.cost = cost


def _stamp_events(
    route: Route, show_usage: bool, first: responses_pb2.ResponseStreamEvent
) -> Callable[[responses_pb2.ResponseStreamEvent], responses_pb2.ResponseStreamEvent]:
    model, provider = route.entry.id, route.deployment.provider

    def stamp(event: responses_pb2.ResponseStreamEvent) -> responses_pb2.ResponseStreamEvent:
        if event.HasField("response"):
            event.response.model = model
            event.response.provider = provider
        return event

    return stamp


def _stamp_message_events(
    route: Route, show_usage: bool, first: JsonObject
) -> Callable[[JsonObject], JsonObject]:
    def stamp(event: JsonObject) -> JsonObject:
        stamp_message_event(event, route)
        return event

    return stamp


def _charge_usage(usage: UsageMessage, cost: float | None) -> None:
    if cost is not None:
        usage.cost = cost


async def _chat_answer(
    route: Route, params: chat_pb2.ChatCompletionParams, openai_body: bytes, ctx: RequestContext
) -> ChatAnswer:
    """One attempt's completion: relayed from an OpenAI-protocol upstream, else the adapter's proto."""
    provider = route.provider
    upstream_model = route.deployment.upstream_model
    relay = getattr(provider, "relay_chat", None)
    if relay is not None:
        return ChatAnswer(await relay(params, openai_body, upstream_model, ctx))
    return ChatAnswer(await provider.chat(params, upstream_model, ctx))


def _chat_chunks(
    route: Route, params: chat_pb2.ChatCompletionParams, openai_body: bytes, ctx: RequestContext
) -> AsyncIterator[ChatChunk]:
    provider = route.provider
    upstream_model = route.deployment.upstream_model
    if getattr(provider, "relay_stream_chat", None) is not None:
        relay: RelayChatProvider = provider  # type: ignore[assignment]
        return relay.relay_stream_chat(params, openai_body, upstream_model, ctx)
    return provider.stream_chat(params, upstream_model, ctx)


@dataclass(frozen=True, slots=True)
class StreamItems(Generic[Result]):
    """How `Gateway._stream` reads and marks the items of one kind of stream."""

    # Fold an item into the running consumption; the usage it carries, else None.
    consumed: Callable[[Result, Consumption], Any]
    # Whether the item whose usage was just folded carries the upstream's final usage.
    final: Callable[[Result], bool]
    # Put the stream's cost into that usage (None: no cost known, so none is shown).
    charge: Callable[[Any, float | None], None]
    # (route, show_usage, first item) -> the stamp for every item of the stream: it marks an item
    # with what served it and returns it in its final form.
    stamper: Callable[[Route, bool, Result], Callable[[Result], Result]]
    # Take running usage off an item (True: the client asked for usage); that usage.
    strip: Callable[[Result, bool], Any]
    # The usage item to end a stream with, like the given item, for usage that came on another.
    usage_item: Callable[[Result, Any], Result]
    # How the items are written to the response cache and read back (None: never cached).
    form: Form[Result] | None


def _fold_message_event(event: JsonObject, total: Consumption) -> Any:
    # message_start's usage is folded as it goes; only message_delta's usage is final and returned.
    fold_message_event(event, total)
    return message_event_usage(event)


def _always_final(_: Any) -> bool:
    return True


def _no_running_usage(item: Any, _: Any) -> Any:
    raise AssertionError("every usage a Responses stream carries is final")


_CHUNKS: StreamItems[Any] = StreamItems(
    fold_any_chunk,
    chunk_is_final_any,
    charge_chunk_usage,
    chunk_stamper,
    strip_chunk_usage,
    usage_chunk_like,
    CHAT_CHUNK_FORM,
)
_EVENTS = StreamItems(
    fold_response_event,
    event_is_final,
    _charge_usage,
    _stamp_events,
    _no_running_usage,
    _no_running_usage,
    ProtoForm(responses_pb2.ResponseStreamEvent),
)
_MESSAGE_EVENTS = StreamItems(
    _fold_message_event,
    _always_final,
    charge_usage_json,
    _stamp_message_events,
    _no_running_usage,
    _no_running_usage,
    None,  # each request's own MessagesForm: its cache key holds the body as written
)
_RESPONSE = ProtoForm(responses_pb2.Response)
_EMBEDDINGS = ProtoForm(embeddings_pb2.EmbeddingList)


def _stamp_video(video: videos_pb2.Video, job: VideoJob) -> videos_pb2.Video:
    video.id = job.id
    video.model = job.model
    video.provider = job.provider
    return video
