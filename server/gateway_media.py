"""The gateway's image and video endpoints. Video jobs belong to the key that created them; any
other key sees a 404."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator

from server.accounts.keys import KeyRecord
from server.accounts.metering import Consumption, Demand
from server.accounts.sqlite_store import VideoJob
from server.errors import NotFound
from server.gateway_pipeline import Pipeline
from server.gateway_usage import video_seconds
from server.providers.base import Provider, RequestContext, VideoContent
from siraya.router.v1 import images_pb2, videos_pb2

VIDEO_TERMINAL_STATES = frozenset({"completed", "failed"})
MIN_VIDEO_POLL_SECONDS = 0.05


class MediaEndpoints(Pipeline):
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


def _stamp_video(video: videos_pb2.Video, job: VideoJob) -> videos_pb2.Video:
    video.id = job.id
    video.model = job.model
    video.provider = job.provider
    return video
