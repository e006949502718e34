"""The gateway core: authenticate, route, call the provider, and stamp what served the request.

It knows neither gRPC nor HTTP: servicers call it with protos and a RequestContext.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from server.accounts.keys import KeyManager, KeyRecord
from server.accounts.metering import Consumption, Demand, Metering
from server.accounts.sqlite_store import SqliteStore, VideoJob
from server.chat_reply import (
    ChatAnswer,
    ChatChunk,
    charge_chunk_usage,
    chunk_is_final_any,
    chunk_stamper,
    fold_any_chunk,
    strip_chunk_usage,
    usage_chunk_like,
)
from server.errors import NoAvailableProvider, NotFound, PermissionDenied
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
from server.observability.attempts import observed_call, observed_stream
from server.providers.base import Provider, RelayChatProvider, RequestContext, VideoContent
from server.routing.catalogue import Catalogue, CatalogueEntry, entry_to_proto
from server.routing.dispatch import Dispatcher
from server.routing.route import Route
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
    ) -> None:
        self.catalogue = catalogue
        self.providers = providers
        self.keys = keys
        self.store = store
        self.dispatcher = dispatcher or Dispatcher(providers)
        self.metering = metering or Metering()

    async def close(self) -> None:
        for provider in self.providers.values():
            await provider.close()
        await self.metering.close()
        await self.dispatcher.close()
        self.store.close()

    async def authenticate(self, authorization: str | None) -> KeyRecord:
        return await self.keys.authenticate(authorization)

    def _entry(self, model: str, kind: str, key: KeyRecord) -> CatalogueEntry:
        entry = self.catalogue.resolve(model, kind)
        if key.allowed_models and entry.id not in key.allowed_models:
            raise PermissionDenied(
                f"This key is not allowed to use the model '{entry.id}'.",
                param="model",
                code="model_not_allowed",
            )
        return entry

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
    ) -> tuple[Result, Route, float | None]:
        """Admit, dispatch and settle one unary request: (result, the route that served it, cost).

        `consumed` reads the upstream's usage off the result; given the demand, it falls back to
        the request's estimate when the upstream reported none.
        """
        entry = self._entry(model, kind, key)
        ctx.key_id, ctx.outcome.model = key.id, entry.id
        meter = await self.metering.admit(key, entry, demand, ctx)
        try:
            result, route = await self.dispatcher.unary(
                entry,
                routing,
                ctx,
                observed_call(call, ctx, kind),
                resolve=lambda fallback: self._entry(fallback, kind, key),
                params=demand.params,
            )
        except BaseException as error:
            await meter.fail(error)
            raise
        consumption = consumed(result, demand)
        cost = await meter.settle(route.deployment, consumption)
        _record(ctx, route, consumption, cost)
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
        settled at its end on the request's estimated prompt and the counted text.

        A client that goes away cancels the stream: the usage known until then is settled (the
        upstream's running count of the prompt, else the estimate, plus the text relayed), unless
        the stream already was.
        """
        entry = self._entry(model, kind, key)
        ctx.key_id, ctx.outcome.model = key.id, entry.id
        meter = await self.metering.admit(key, entry, demand, ctx)
        total = Consumption()
        route: Route | None = None
        settled = reported = False
        # The last item that carried running usage, and that usage, taken off it.
        running: tuple[Result, Any] | None = None
        stamp: Callable[[Result], Result] | None = None
        try:
            attempts = observed_stream(call, ctx, kind)
            routed = self.dispatcher.stream(
                entry,
                routing,
                ctx,
                attempts,
                resolve=lambda fallback: self._entry(fallback, kind, key),
                params=demand.params,
            )
            async for item, route in routed:
                if stamp is None:
                    ctx.outcome.first_item_at = time.monotonic()
                    ctx.outcome.provider = route.deployment.provider
                    stamp = items.stamper(route, show_usage, item)
                if (usage := items.consumed(item, total)) is not None:
                    reported = True
                    if items.final(item):
                        running = None
                        if not settled:
                            settled = True
                            cost = await meter.settle(route.deployment, total)
                            _record(ctx, route, total, cost)
                            if show_usage:
                                items.charge(usage, cost)
                        if not show_usage:
                            continue
                    else:
                        running = (item, items.strip(item, show_usage))
                yield stamp(item)
        except BaseException as error:
            if settled:
                raise
            if route is None or not isinstance(error, (asyncio.CancelledError, GeneratorExit)):
                await meter.fail(error)
                raise
            if not reported:
                total.prompt_tokens = demand.prompt_tokens
            _record(ctx, route, total, await meter.settle(route.deployment, total, cancelled=True))
            raise
        if route is None:
            await meter.fail(NoAvailableProvider("The stream ended before it started."))
            return
        if settled:
            return
        if not reported:
            total.prompt_tokens = demand.prompt_tokens
        cost = await meter.settle(route.deployment, total)
        _record(ctx, route, total, cost)
        if show_usage and running is not None and stamp is not None:
            like, usage = running
            items.charge(usage, cost)
            yield stamp(items.usage_item(like, usage))

    # models

    def list_models(self) -> list[models_pb2.Model]:
        return [entry_to_proto(entry) for entry in self.catalogue.entries()]

    def get_model(self, model_id: str) -> models_pb2.Model:
        return entry_to_proto(self.catalogue.get(model_id))

    # chat

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
        answer, route, cost = await self._unary(
            "chat",
            params.model,
            params.routing,
            chat_demand(params),
            key,
            ctx,
            lambda route: _chat_answer(route, params, openai_body, ctx),
            ChatAnswer.consumption,
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
        return self._stream(
            "chat",
            params.model,
            params.routing,
            chat_demand(params),
            key,
            ctx,
            lambda route: _chat_chunks(route, params, openai_body, ctx),
            _CHUNKS,
            params.stream_options.include_usage,
        )

    # responses

    async def respond(
        self, params: responses_pb2.ResponseParams, key: KeyRecord, ctx: RequestContext
    ) -> responses_pb2.Response:
        response, route, cost = await self._unary(
            "chat",
            params.model,
            params.routing,
            response_demand(params),
            key,
            ctx,
            lambda route: route.provider.respond(params, route.deployment.upstream_model, ctx),
            response_answer_consumption,
        )
        response.model = route.entry.id
        response.provider = route.deployment.provider
        if cost is not None and response.HasField("usage"):
            response.usage.cost = cost
        return response

    def stream_response(
        self, params: responses_pb2.ResponseParams, key: KeyRecord, ctx: RequestContext
    ) -> AsyncIterator[responses_pb2.ResponseStreamEvent]:
        return self._stream(
            "chat",
            params.model,
            params.routing,
            response_demand(params),
            key,
            ctx,
            lambda route: route.provider.stream_response(params, route.deployment.upstream_model, ctx),
            _EVENTS,
        )

    # embeddings and images

    async def embed(
        self, params: embeddings_pb2.EmbeddingParams, key: KeyRecord, ctx: RequestContext
    ) -> embeddings_pb2.EmbeddingList:
        result, route, cost = await self._unary(
            "embedding",
            params.model,
            params.routing,
            embedding_demand(params),
            key,
            ctx,
            lambda route: route.provider.embed(params, route.deployment.upstream_model, ctx),
            embedding_consumption,
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


def _no_running_usage(item: Any, _: Any) -> Any:
    raise AssertionError("every usage a Responses stream carries is final")


_CHUNKS: StreamItems[Any] = StreamItems(
    fold_any_chunk, chunk_is_final_any, charge_chunk_usage, chunk_stamper, strip_chunk_usage, usage_chunk_like
)
_EVENTS = StreamItems(
    fold_response_event, event_is_final, _charge_usage, _stamp_events, _no_running_usage, _no_running_usage
)


def _stamp_video(video: videos_pb2.Video, job: VideoJob) -> videos_pb2.Video:
    video.id = job.id
    video.model = job.model
    video.provider = job.provider
    return video
