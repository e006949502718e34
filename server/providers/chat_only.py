"""What providers that speak only chat share: the Responses API through chat, and a 400 for the rest."""

from __future__ import annotations

from collections.abc import AsyncIterator

from server.errors import InvalidRequest
from server.providers.base import RequestContext, VideoContent
from server.providers.chat_backed_responses import ChatSpeaker, respond_via_chat, stream_response_via_chat
from siraya.router.v1 import embeddings_pb2, images_pb2, responses_pb2, videos_pb2


class ResponsesThroughChat:
    """`respond` and `stream_response`, served by the provider's own `chat` and `stream_chat`."""

    async def respond(
        self: ChatSpeaker, params: responses_pb2.ResponseParams, upstream_model: str, ctx: RequestContext
    ) -> responses_pb2.Response:
        return await respond_via_chat(self, params, upstream_model, ctx)

    async def stream_response(
        self: ChatSpeaker, params: responses_pb2.ResponseParams, upstream_model: str, ctx: RequestContext
    ) -> AsyncIterator[responses_pb2.ResponseStreamEvent]:
        async for event in stream_response_via_chat(self, params, upstream_model, ctx):
            yield event


class ChatOnly(ResponsesThroughChat):
    """Embeddings, images and videos refused with a 400 naming `model`."""

    name: str
    # How the refusal names what the provider is, e.g. "Anthropic".
    described_as: str

    def _unsupported(self, capability: str) -> InvalidRequest:
        return InvalidRequest(
            f"Provider '{self.name}' ({self.described_as}) does not support {capability}.",
            param="model",
            code="unsupported_model_capability",
        )

    async def embed(
        self, params: embeddings_pb2.EmbeddingParams, upstream_model: str, ctx: RequestContext
    ) -> embeddings_pb2.EmbeddingList:
        raise self._unsupported("embeddings")

    async def generate_images(
        self, params: images_pb2.ImageParams, upstream_model: str, ctx: RequestContext
    ) -> images_pb2.ImagesResult:
        raise self._unsupported("image generation")

    async def create_video(
        self, params: videos_pb2.VideoParams, upstream_model: str, ctx: RequestContext
    ) -> videos_pb2.Video:
        raise self._unsupported("video generation")

    async def get_video(self, upstream_id: str, ctx: RequestContext) -> videos_pb2.Video:
        raise self._unsupported("video generation")

    async def download_video(self, upstream_id: str, variant: str, ctx: RequestContext) -> VideoContent:
        raise self._unsupported("video generation")
