"""ImagesService."""

from __future__ import annotations

import grpc

from server.gateway import Gateway
from server.services.base import call_context, unary_rpc
from siraya.router.codec.validate import check_image_params
from siraya.router.v1 import images_pb2, images_pb2_grpc


class ImagesServicer(images_pb2_grpc.ImagesServiceServicer):
    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway

    @unary_rpc
    async def GenerateImages(
        self, request: images_pb2.GenerateImagesRequest, context: grpc.aio.ServicerContext
    ) -> images_pb2.GenerateImagesResponse:
        authorization, ctx = call_context(context)
        key = await self._gateway.authenticate(authorization, ctx)
        check_image_params(request.params)
        result = await self._gateway.generate_images(request.params, key, ctx)
        return images_pb2.GenerateImagesResponse(result=result)
