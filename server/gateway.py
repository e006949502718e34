"""The gateway core: authenticate, route, call the provider, and stamp what served the request.

It knows neither gRPC nor HTTP: servicers call it with protos and a RequestContext.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from server.accounts.keys import KeyManager, KeyRecord
from server.accounts.sqlite_store import SqliteStore, VideoJob
from server.errors import NotFound, PermissionDenied
from server.providers.base import Provider, RequestContext, VideoContent
from server.routing.catalogue import Catalogue, CatalogueEntry, Deployment, entry_to_proto
from server.routing.router import candidates
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


@dataclass(frozen=True, slots=True)
class Route:
    entry: CatalogueEntry
    deployment: Deployment
    provider: Provider


class Gateway:
    def __init__(
        self, catalogue: Catalogue, providers: dict[str, Provider], keys: KeyManager, store: SqliteStore
    ) -> None:
        self.catalogue = catalogue
        self.providers = providers
        self.keys = keys
        self.store = store
        self._provider_names = set(providers)

    async def close(self) -> None:
        for provider in self.providers.values():
            await provider.close()
        self.store.close()

    def authenticate(self, authorization: str | None) -> KeyRecord:
        return self.keys.authenticate(authorization)

    def _route(self, model: str, kind: str, routing: common_pb2.Routing, key: KeyRecord) -> Route:
        entry = self.catalogue.resolve(model, kind)
        if key.allowed_models and entry.id not in key.allowed_models:
            raise PermissionDenied(
                f"This key is not allowed to use the model '{entry.id}'.", param="model", code="model_not_allowed"
            )
        deployment = candidates(entry, routing, self._provider_names)[0]
        return Route(entry, deployment, self.providers[deployment.provider])

    # models

    def list_models(self) -> list[models_pb2.Model]:
        return [entry_to_proto(entry) for entry in self.catalogue.entries()]

    def get_model(self, model_id: str) -> models_pb2.Model:
        return entry_to_proto(self.catalogue.get(model_id))

    # chat

    async def chat(
        self, params: chat_pb2.ChatCompletionParams, key: KeyRecord, ctx: RequestContext
    ) -> chat_pb2.ChatCompletion:
        route = self._route(params.model, "chat", params.routing, key)
        completion = await route.provider.chat(params, route.deployment.upstream_model, ctx)
        completion.model = route.entry.id
        completion.provider = route.deployment.provider
        return completion

    async def stream_chat(
        self, params: chat_pb2.ChatCompletionParams, key: KeyRecord, ctx: RequestContext
    ) -> AsyncIterator[chat_pb2.ChatCompletionChunk]:
        route = self._route(params.model, "chat", params.routing, key)
        model, provider_name = route.entry.id, route.deployment.provider
        async for chunk in route.provider.stream_chat(params, route.deployment.upstream_model, ctx):
            chunk.model = model
            chunk.provider = provider_name
            yield chunk

    # responses

    async def respond(
        self, params: responses_pb2.ResponseParams, key: KeyRecord, ctx: RequestContext
    ) -> responses_pb2.Response:
        route = self._route(params.model, "chat", params.routing, key)
        response = await route.provider.respond(params, route.deployment.upstream_model, ctx)
        response.model = route.entry.id
        response.provider = route.deployment.provider
        return response

    async def stream_response(
        self, params: responses_pb2.ResponseParams, key: KeyRecord, ctx: RequestContext
    ) -> AsyncIterator[responses_pb2.ResponseStreamEvent]:
        route = self._route(params.model, "chat", params.routing, key)
        model, provider_name = route.entry.id, route.deployment.provider
        async for event in route.provider.stream_response(params, route.deployment.upstream_model, ctx):
            if event.HasField("response"):
                event.response.model = model
                event.response.provider = provider_name
            yield event

    # embeddings and images

    async def embed(
        self, params: embeddings_pb2.EmbeddingParams, key: KeyRecord, ctx: RequestContext
    ) -> embeddings_pb2.EmbeddingList:
        route = self._route(params.model, "embedding", params.routing, key)
        result = await route.provider.embed(params, route.deployment.upstream_model, ctx)
        result.model = route.entry.id
        result.provider = route.deployment.provider
        return result

    async def generate_images(
        self, params: images_pb2.ImageParams, key: KeyRecord, ctx: RequestContext
    ) -> images_pb2.ImagesResult:
        route = self._route(params.model, "image", params.routing, key)
        result = await route.provider.generate_images(params, route.deployment.upstream_model, ctx)
        result.model = route.entry.id
        result.provider = route.deployment.provider
        return result

    # videos: jobs belong to the key that created them; any other key sees a 404

    async def create_video(
        self, params: videos_pb2.VideoParams, key: KeyRecord, ctx: RequestContext
    ) -> videos_pb2.Video:
        route = self._route(params.model, "video", params.routing, key)
        video = await route.provider.create_video(params, route.deployment.upstream_model, ctx)
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

    async def download_video(self, video_id: str, variant: str, key: KeyRecord, ctx: RequestContext) -> VideoContent:
        job, provider = self._owned_job(video_id, key)
        return await provider.download_video(job.upstream_id, variant, ctx)


def _stamp_video(video: videos_pb2.Video, job: VideoJob) -> videos_pb2.Video:
    video.id = job.id
    video.model = job.model
    video.provider = job.provider
    return video
