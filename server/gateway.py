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
from server.errors import ModelNotFound, NoAvailableProvider, NotFound, PermissionDenied
from server.gateway_usage import (
    chat_demand,
    chunk_usage,
    chunk_usage_json,
    embedding_demand,
    event_usage,
    fold_chunk,
    fold_chunk_json,
    fold_response_event,
    response_consumption,
    response_demand,
    usage_consumption,
    usage_consumption_json,
    video_seconds,
)
from server.observability.attempts import observed_call, observed_stream
from server.providers.base import Provider, RequestContext, VideoContent, chat_json, stream_chat_json
from server.routing.catalogue import Catalogue, CatalogueEntry, entry_to_proto
from server.routing.dispatch import Dispatcher, Route
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
        try:
            entry = self.catalogue.resolve(model, kind)
        except ModelNotFound:
            raise ModelNotFound(model, self.catalogue.usable(kind, key.allowed_models)) from None
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
        consumed: Callable[[Result], Consumption],
    ) -> tuple[Result, Route, float | None]:
        """Admit, dispatch and settle one unary request: (result, the route that served it, cost)."""
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
        consumption = consumed(result)
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
    ) -> AsyncIterator[Result]:
        """Admit, dispatch and settle one stream; `items` says how to read and mark its items.

        The item carrying the upstream's usage settles the stream before it is sent, so its usage can
        carry the cost; a stream without one settles at its end. A client that goes away cancels the
        stream: what was produced until then is still settled, unless it already was.
        """
        entry = self._entry(model, kind, key)
        ctx.key_id, ctx.outcome.model = key.id, entry.id
        meter = await self.metering.admit(key, entry, demand, ctx)
        total = Consumption()
        route: Route | None = None
        settled = False
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
                if ctx.outcome.first_item_at is None:
                    ctx.outcome.first_item_at = time.monotonic()
                items.consumed(item, total)
                if not settled and (usage := items.final_usage(item)) is not None:
                    settled = True
                    cost = await meter.settle(route.deployment, total)
                    _record(ctx, route, total, cost)
                    if cost is not None:
                        items.charge(usage, cost)
                items.stamp(item, route)
                yield item
        except BaseException as error:
            if settled:
                raise
            if route is None or not isinstance(error, (asyncio.CancelledError, GeneratorExit)):
                await meter.fail(error)
                raise
            _record(ctx, route, total, await meter.settle(route.deployment, total, cancelled=True))
            raise
        if route is None:
            await meter.fail(NoAvailableProvider("The stream ended before it started."))
            return
        if not settled:
            _record(ctx, route, total, await meter.settle(route.deployment, total))

    # models

    def list_models(self) -> list[models_pb2.Model]:
        return [entry_to_proto(entry) for entry in self.catalogue.entries()]

    def get_model(self, model_id: str) -> models_pb2.Model:
        return entry_to_proto(self.catalogue.get(model_id))

    # chat

    def _chat_unary(
        self,
        params: chat_pb2.ChatCompletionParams,
        key: KeyRecord,
        ctx: RequestContext,
        call: Callable[[Route], Awaitable[Result]],
        consumed: Callable[[Result], Consumption],
    ) -> Awaitable[tuple[Result, Route, float | None]]:
        # A plain function handing back `_unary`'s coroutine: no extra frame on the hot path.
        demand = chat_demand(params)
        return self._unary("chat", params.model, params.routing, demand, key, ctx, call, consumed)

    def _chat_stream(
        self,
        params: chat_pb2.ChatCompletionParams,
        key: KeyRecord,
        ctx: RequestContext,
        call: Callable[[Route], AsyncIterator[Result]],
        items: StreamItems[Result],
    ) -> AsyncIterator[Result]:
        return self._stream("chat", params.model, params.routing, chat_demand(params), key, ctx, call, items)

    async def chat(
        self, params: chat_pb2.ChatCompletionParams, key: KeyRecord, ctx: RequestContext
    ) -> chat_pb2.ChatCompletion:
        completion, route, cost = await self._chat_unary(
            params,
            key,
            ctx,
            lambda route: route.provider.chat(params, route.deployment.upstream_model, ctx),
            lambda completion: usage_consumption(completion.usage),
        )
        completion.model = route.entry.id
        completion.provider = route.deployment.provider
        if cost is not None and completion.HasField("usage"):
            completion.usage.cost = cost
        return completion

    async def chat_json(
        self, params: chat_pb2.ChatCompletionParams, key: KeyRecord, ctx: RequestContext
    ) -> JsonObject:
        """`chat` with the completion as the JSON object OpenAI sends: for callers that write JSON
        anyway, an OpenAI-protocol upstream's answer then never becomes a proto."""
        completion, route, cost = await self._chat_unary(
            params,
            key,
            ctx,
            lambda route: chat_json(route.provider, params, route.deployment.upstream_model, ctx),
            lambda completion: usage_consumption_json(completion.get("usage")),
        )
        usage = completion.get("usage")
        if cost is not None and usage is not None:
            _charge_usage_json(usage, cost)
        _stamp_json(completion, route)
        return completion

    def stream_chat(
        self, params: chat_pb2.ChatCompletionParams, key: KeyRecord, ctx: RequestContext
    ) -> AsyncIterator[chat_pb2.ChatCompletionChunk]:
        return self._chat_stream(
            params,
            key,
            ctx,
            lambda route: route.provider.stream_chat(params, route.deployment.upstream_model, ctx),
            _CHUNKS,
        )

    def stream_chat_json(
        self, params: chat_pb2.ChatCompletionParams, key: KeyRecord, ctx: RequestContext
    ) -> AsyncIterator[JsonObject]:
        """`stream_chat` with each chunk as the JSON object OpenAI's stream carries: for callers that
        write JSON anyway, an OpenAI-protocol upstream's chunks then never become protos."""
        return self._chat_stream(
            params,
            key,
            ctx,
            lambda route: stream_chat_json(route.provider, params, route.deployment.upstream_model, ctx),
            _JSON_CHUNKS,
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
            lambda response: response_consumption(response.usage),
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
            lambda result: usage_consumption(result.usage),
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
            lambda result: Consumption(images=len(result.data)),
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
            lambda video: Consumption(video_seconds=video_seconds(params)),
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


def _stamp_chunk(chunk: chat_pb2.ChatCompletionChunk, route: Route) -> None:
    chunk.model = route.entry.id
    chunk.provider = route.deployment.provider


def _stamp_event(event: responses_pb2.ResponseStreamEvent, route: Route) -> None:
    if event.HasField("response"):
        event.response.model = route.entry.id
        event.response.provider = route.deployment.provider


def _stamp_json(answer: JsonObject, route: Route) -> None:
    """A completion or chunk kept as OpenAI's JSON object: `provider` goes last, as in the encoder."""
    answer["model"] = route.entry.id
    answer["provider"] = route.deployment.provider


def _charge_usage(usage: UsageMessage, cost: float) -> None:
    usage.cost = cost


def _charge_usage_json(usage: JsonObject, cost: float) -> None:
    usage["cost"] = cost


@dataclass(frozen=True, slots=True)
class StreamItems(Generic[Result]):
    """How `Gateway._stream` reads and marks the items of one kind of stream."""

    # Fold an item into the running consumption.
    consumed: Callable[[Result, Consumption], None]
    # The upstream's final usage, when the item carries it.
    final_usage: Callable[[Result], Any]
    # Put the stream's cost into that usage.
    charge: Callable[[Any, float], None]
    # Mark the item with what served it.
    stamp: Callable[[Result, Route], None]


_CHUNKS = StreamItems(fold_chunk, chunk_usage, _charge_usage, _stamp_chunk)
_JSON_CHUNKS = StreamItems(fold_chunk_json, chunk_usage_json, _charge_usage_json, _stamp_json)
_EVENTS = StreamItems(fold_response_event, event_usage, _charge_usage, _stamp_event)


def _stamp_video(video: videos_pb2.Video, job: VideoJob) -> videos_pb2.Video:
    video.id = job.id
    video.model = job.model
    video.provider = job.provider
    return video
