"""VideosService: asynchronous video jobs, owned by the key that created them."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc

from server.gateway import Gateway
from server.services.base import call_context, streaming_rpc, unary_rpc
from siraya.router.codec.validate import check_video_params, check_watch_request
from siraya.router.v1 import videos_pb2, videos_pb2_grpc

DEFAULT_POLL_SECONDS = 2.0


class VideosServicer(videos_pb2_grpc.VideosServiceServicer):
    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway

    @unary_rpc
    async def CreateVideo(
        self, request: videos_pb2.CreateVideoRequest, context: grpc.aio.ServicerContext
    ) -> videos_pb2.CreateVideoResponse:
        authorization, ctx = call_context(context)
        key = await self._gateway.authenticate(authorization, ctx)
        check_video_params(request.params)
        return videos_pb2.CreateVideoResponse(
            video=await self._gateway.create_video(request.params, key, ctx)
        )

    @unary_rpc
    async def GetVideo(
        self, request: videos_pb2.GetVideoRequest, context: grpc.aio.ServicerContext
    ) -> videos_pb2.GetVideoResponse:
        authorization, ctx = call_context(context)
        key = await self._gateway.authenticate(authorization, ctx)
        return videos_pb2.GetVideoResponse(video=await self._gateway.get_video(request.id, key, ctx))

    @streaming_rpc
    async def WatchVideo(
        self, request: videos_pb2.WatchVideoRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[videos_pb2.WatchVideoResponse]:
        authorization, ctx = call_context(context)
        key = await self._gateway.authenticate(authorization, ctx)
        check_watch_request(request)
        interval = request.poll_interval if request.HasField("poll_interval") else DEFAULT_POLL_SECONDS
        async for video in self._gateway.watch_video(request.id, interval, key, ctx):
            yield videos_pb2.WatchVideoResponse(video=video)

    @streaming_rpc
    async def DownloadVideoContent(
        self, request: videos_pb2.DownloadVideoContentRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[videos_pb2.DownloadVideoContentResponse]:
        authorization, ctx = call_context(context)
        key = await self._gateway.authenticate(authorization, ctx)
        variant = request.variant if request.HasField("variant") else "video"
        content = await self._gateway.download_video(request.id, variant, key, ctx)
        first = True
        async for data in content.chunks:
            reply = videos_pb2.DownloadVideoContentResponse(data=data)
            if first:
                reply.content_type = content.content_type
                first = False
            yield reply
