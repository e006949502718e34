"""The Google Gemini API adapter: HTTP I/O around the pure translation modules of this package.

Configuration (`type: gemini`): `base_url` is the API root including its version, by default
`https://generativelanguage.googleapis.com/v1beta` (DEFAULT_BASE_URL, from its settings model);
`api_key` is sent as the `x-goog-api-key` header, never in the URL. One pooled upstream client
(UpstreamHttp) per provider; client media (https image URLs, data: URLs) is inlined through one
MediaFetcher, which refuses private addresses and plain http unless `media_allow_private_addresses` /
`media_allow_http`, under the media budgets of `limits` (per request and per process). A body with
media goes out as pieces (`media_splice`), and the media's budget is given back once it is sent.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from functools import partial
from typing import Any, TypeVar
from urllib.parse import urlsplit

import orjson
from yarl import URL

from server.config import GeminiProviderConfig, LimitsConfig
from server.config.providers.gemini import DEFAULT_BASE_URL
from server.errors import InvalidRequest, UpstreamError
from server.providers.base import RequestContext, VideoContent
from server.providers.chat_only import ResponsesThroughChat
from server.providers.embedding_input import load_tokenizer_for
from server.providers.gemini import media as media_codec
from server.providers.gemini import video as video_codec
from server.providers.gemini.errors import classify_error, error_from_body, parse_google_error
from server.providers.gemini.request import CHAT_SUPPORT, generate_content_request, media_references
from server.providers.gemini.response import MalformedResponse, chat_completion
from server.providers.gemini.stream import ChunkTranslator
from server.providers.media_budget import MediaLimits
from server.providers.media_splice import Payload, Splicer
from server.providers.param_policy import enforce_chat_support, requires_parameters
from server.providers.remote_media import Media, MediaFetcher, MediaPolicy, sniff_media_type
from server.providers.sse_reader import read_sse
from server.providers.stream_edge import EVENT_STREAM, STREAM_FAILURES, not_an_event_stream, stream_failure
from server.providers.tool_call_limit import first_tool_call_only, first_tool_calls_streamed, single_tool_call
from server.providers.transport import Reply, TransportError
from server.providers.upstream_http import UpstreamHttp
from siraya.router.v1 import chat_pb2, embeddings_pb2, images_pb2, videos_pb2

__all__ = ["DEFAULT_BASE_URL", "GeminiProvider"]

T = TypeVar("T")
_DOWNLOAD_CHUNK_BYTES = 64 * 1024
_MAX_IMAGE_REQUESTS = 10
_MAX_REDIRECTS = 3
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


class GeminiProvider(ResponsesThroughChat):
    """One Gemini API upstream (Google AI Studio keys; Vertex AI is a different protocol)."""

    def __init__(
        self,
        config: GeminiProviderConfig,
        limits: LimitsConfig = LimitsConfig(),  # noqa: B008 - frozen, so sharing the default is safe
        *,
        media_fetcher: MediaFetcher | None = None,
    ) -> None:
        self.name = config.name
        # Gemini has no Responses API; the gateway's chat-backed translation serves it.
        self.native_responses = False
        self._config = config
        self._base_url = config.base_url.rstrip("/")
        self._origin = _origin(self._base_url)
        self._limits = limits
        self._http = UpstreamHttp(config, error_from_body, limits)
        self._secrets = self._http.secrets
        self._headers = {"Content-Type": "application/json", **config.headers}
        if config.api_key:
            self._headers["x-goog-api-key"] = config.api_key
        self._fetcher = media_fetcher or MediaFetcher(
            MediaPolicy(
                max_bytes=limits.media_bytes_per_url,
                allow_private_addresses=config.media_allow_private_addresses,
                allow_http=config.media_allow_http,
            ),
            limits=MediaLimits(
                urls_per_request=limits.media_urls_per_request,
                bytes_per_request=limits.media_bytes_per_request,
                bytes_in_flight=limits.media_bytes_in_flight,
                fetches_in_flight=limits.media_fetches_in_flight,
            ),
        )

    async def close(self) -> None:
        await self._http.close()
        await self._fetcher.close()

    # -- transport -----------------------------------------------------------------------------

    def _url(self, path: str) -> str:
        return f"{self._base_url}/{path.lstrip('/')}"

    def _request_headers(self, ctx: RequestContext, with_key: bool = True) -> dict[str, str]:
        if not with_key:
            # Another origin gets none of the configured headers: they may hold credentials too.
            return dict(ctx.forward_headers)
        return {**ctx.forward_headers, **self._headers} if ctx.forward_headers else self._headers

    def _open(
        self,
        method: str,
        url: str,
        ctx: RequestContext,
        body: Any = None,
        *,
        with_key: bool = True,
        limit: int | None = None,
    ) -> AbstractAsyncContextManager[Reply]:
        if isinstance(body, Payload):
            data: bytes | list[bytes] | None = body.pieces
        else:
            data = orjson.dumps(body) if body is not None else None
        headers = self._request_headers(ctx, with_key)
        return self._http.request(method, url, ctx, headers, data, limit=limit)

    async def _call_json(
        self, method: str, path: str, ctx: RequestContext, body: Any = None, *, limit: int
    ) -> Any:
        """The reply's JSON (a reply over `limit` bytes is a 502); a Payload body is freed once sent."""
        try:
            async with self._open(method, self._url(path), ctx, body, limit=limit) as response:
                if isinstance(body, Payload):
                    body.sent()
                raw = await response.read()
        finally:
            if isinstance(body, Payload):
                body.sent()
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise UpstreamError(
                f"Provider '{self.name}' returned an invalid response: the body is not JSON."
            ) from None

    def _decode(self, decode: Callable[[], T]) -> T:
        try:
            return decode()
        except MalformedResponse as error:
            raise UpstreamError(f"Provider '{self.name}' returned an invalid response: {error}.") from None

    async def _stream_events(self, path: str, body: Payload, ctx: RequestContext) -> AsyncIterator[Any]:
        async with self._open("POST", self._url(path), ctx, body) as response:
            body.sent()
            if EVENT_STREAM not in response.headers.get("Content-Type", ""):
                raise not_an_event_stream(self.name)
            try:
                async for _, data in read_sse(response.content, self._limits.sse_event_bytes):
                    parsed = orjson.loads(data)
                    if isinstance(parsed, dict) and "error" in parsed:
                        error = parse_google_error(parsed["error"])
                        raise classify_error(self.name, error, None, None, self._secrets)
                    yield parsed
            except STREAM_FAILURES as error:
                raise stream_failure(self.name, error) from None

    # -- chat and responses --------------------------------------------------------------------

    async def _chat_body(self, params: chat_pb2.ChatCompletionParams, upstream_model: str) -> Payload:
        """The request body, its media fetched (under the media budgets) and spliced in as base64."""
        enforce_chat_support(
            params, CHAT_SUPPORT, require_parameters=requires_parameters(params), provider=self.name
        )
        refs = media_references(params)
        if not refs:
            return Payload([orjson.dumps(generate_content_request(params, upstream_model, {}))])
        media, lease = await self._fetcher.fetch_all([(ref.param, ref.url) for ref in refs])
        try:
            splicer = Splicer()
            body = generate_content_request(params, upstream_model, splicer.hold_all(media))
            del media
            return Payload(splicer.encode(body), lease)
        except BaseException:
            lease.release()
            raise

    async def chat(
        self, params: chat_pb2.ChatCompletionParams, upstream_model: str, ctx: RequestContext
    ) -> chat_pb2.ChatCompletion:
        body = await self._chat_body(params, upstream_model)
        path = f"{media_codec.model_path(upstream_model)}:generateContent"
        data = await self._call_json("POST", path, ctx, body, limit=self._limits.reply_bytes_chat)
        completion = self._decode(lambda: chat_completion(data, upstream_model))
        return first_tool_call_only(completion) if single_tool_call(params) else completion

    def stream_chat(
        self, params: chat_pb2.ChatCompletionParams, upstream_model: str, ctx: RequestContext
    ) -> AsyncIterator[chat_pb2.ChatCompletionChunk]:
        chunks = self._stream_chat(params, upstream_model, ctx)
        return first_tool_calls_streamed(chunks) if single_tool_call(params) else chunks

    async def _stream_chat(
        self, params: chat_pb2.ChatCompletionParams, upstream_model: str, ctx: RequestContext
    ) -> AsyncIterator[chat_pb2.ChatCompletionChunk]:
        body = await self._chat_body(params, upstream_model)
        try:
            path = f"{media_codec.model_path(upstream_model)}:streamGenerateContent?alt=sse"
            translator = ChunkTranslator(upstream_model)
            async for event in self._stream_events(path, body, ctx):
                for chunk in self._decode(partial(translator.feed, event)):
                    yield chunk
        finally:
            body.sent()  # also when the stream ends before its upstream call began
        for chunk in self._decode(translator.finish):
            yield chunk

    # -- embeddings and images -----------------------------------------------------------------

    async def embed(
        self, params: embeddings_pb2.EmbeddingParams, upstream_model: str, ctx: RequestContext
    ) -> embeddings_pb2.EmbeddingList:
        await load_tokenizer_for(params)
        body = media_codec.embed_request(params, upstream_model)
        path = f"{media_codec.model_path(upstream_model)}:batchEmbedContents"
        data = await self._call_json("POST", path, ctx, body, limit=self._limits.reply_bytes_embeddings)
        return self._decode(lambda: media_codec.embedding_list(data, upstream_model, len(body["requests"])))

    async def generate_images(
        self, params: images_pb2.ImageParams, upstream_model: str, ctx: RequestContext
    ) -> images_pb2.ImagesResult:
        model = media_codec.model_path(upstream_model)
        if media_codec.is_imagen(upstream_model):
            data = await self._call_json(
                "POST",
                f"{model}:predict",
                ctx,
                media_codec.imagen_request(params),
                limit=self._limits.reply_bytes_images,
            )
            return self._decode(lambda: media_codec.images_from_imagen(data, params))
        count = params.n if params.HasField("n") else 1
        if not 1 <= count <= _MAX_IMAGE_REQUESTS:
            raise InvalidRequest(f"n must be between 1 and {_MAX_IMAGE_REQUESTS}.", param="n")
        body = media_codec.gemini_image_request(params)
        # Gemini image models answer one image per request: n images are n concurrent requests.
        bodies = await asyncio.gather(
            *(
                self._call_json(
                    "POST", f"{model}:generateContent", ctx, body, limit=self._limits.reply_bytes_images
                )
                for _ in range(count)
            )
        )
        return self._decode(lambda: media_codec.images_from_gemini(list(bodies), params))

    # -- videos --------------------------------------------------------------------------------

    async def _video_body(self, params: videos_pb2.VideoParams) -> Payload:
        """The predictLongRunning body; a fetched reference image stays in the media budget until sent."""
        if not (params.HasField("input_reference") and params.input_reference.HasField("image_url")):
            return Payload([orjson.dumps(video_codec.video_request(params, self._reference_image(params)))])
        param = "input_reference.image_url"
        media, lease = await self._fetcher.fetch_all([(param, params.input_reference.image_url)])
        try:
            splicer = Splicer()
            body = video_codec.video_request(params, splicer.hold(media.pop(param)))
            return Payload(splicer.encode(body), lease)
        except BaseException:
            lease.release()
            raise

    def _reference_image(self, params: videos_pb2.VideoParams) -> Media | None:
        """The reference image the request carries itself (an image_url one is fetched instead)."""
        if not params.HasField("input_reference"):
            return None
        reference = params.input_reference
        if reference.data:
            media_type = reference.mime_type or sniff_media_type(reference.data) or ""
            if not media_type.startswith("image/"):
                raise InvalidRequest("input_reference must be an image.", param="input_reference")
            return Media(data=reference.data, media_type=media_type)
        raise InvalidRequest(
            "input_reference must carry the image itself (file ids are not supported by Gemini).",
            param="input_reference",
            code="unsupported_parameter",
        )

    async def create_video(
        self, params: videos_pb2.VideoParams, upstream_model: str, ctx: RequestContext
    ) -> videos_pb2.Video:
        body = await self._video_body(params)
        path = f"{media_codec.model_path(upstream_model)}:predictLongRunning"
        data = await self._call_json("POST", path, ctx, body, limit=self._limits.reply_bytes_videos)
        ref = video_codec.VideoRef(
            operation=self._decode(lambda: video_codec.operation_name(data)),
            created_at=int(time.time()),
            seconds=params.seconds if params.HasField("seconds") else video_codec.DEFAULT_SECONDS,
            size=params.size if params.HasField("size") else video_codec.DEFAULT_SIZE,
        )
        return video_codec.new_video(ref, video_codec.encode_video_id(ref), params)

    async def get_video(self, upstream_id: str, ctx: RequestContext) -> videos_pb2.Video:
        ref = video_codec.decode_video_id(upstream_id)
        operation = await self._call_json("GET", ref.operation, ctx, limit=self._limits.reply_bytes_videos)
        return self._decode(lambda: video_codec.video_from_operation(operation, ref, upstream_id))

    async def _open_download(
        self, uri: str, ctx: RequestContext
    ) -> tuple[AbstractAsyncContextManager[Reply], Reply]:
        """Open the file URI, following redirects by hand so the key never leaves the API's origin."""
        for _ in range(_MAX_REDIRECTS + 1):
            opened = self._open("GET", uri, ctx, with_key=_origin(uri) == self._origin)
            response = await opened.__aenter__()
            location = response.headers.get("Location")
            if response.status not in _REDIRECTS or not location:
                return opened, response
            await opened.__aexit__(None, None, None)
            uri = str(URL(uri).join(URL(location)))
        raise UpstreamError(f"Provider '{self.name}' redirected the video download too many times.")

    async def download_video(self, upstream_id: str, variant: str, ctx: RequestContext) -> VideoContent:
        if variant not in ("", "video"):
            raise InvalidRequest(f"Gemini videos have no '{variant}' variant.", param="variant")
        ref = video_codec.decode_video_id(upstream_id)
        operation = await self._call_json("GET", ref.operation, ctx, limit=self._limits.reply_bytes_videos)
        file = self._decode(lambda: video_codec.video_file(operation))
        if file.data is not None:
            return VideoContent(file.content_type, _single(file.data))
        assert file.uri is not None
        opened, response = await self._open_download(file.uri, ctx)

        async def chunks() -> AsyncIterator[bytes]:
            try:
                async for chunk in response.content.iter_chunked(_DOWNLOAD_CHUNK_BYTES):
                    yield chunk
            except TransportError:
                raise UpstreamError(f"Provider '{self.name}' cut the video download short.") from None
            finally:
                await opened.__aexit__(None, None, None)

        content_type = response.headers.get("Content-Type", file.content_type)
        if content_type.startswith(("application/octet-stream", "binary/")):
            content_type = file.content_type
        return VideoContent(content_type, chunks())


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


async def _single(data: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(data), _DOWNLOAD_CHUNK_BYTES):
        yield data[start : start + _DOWNLOAD_CHUNK_BYTES]
