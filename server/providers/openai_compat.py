"""The adapter for every upstream that speaks OpenAI's protocol: OpenAI, Groq, Together, vLLM, Ollama, ...

Adding such an upstream is configuration only (base URL, key, headers). One pooled upstream
client (UpstreamHttp) per provider; request and reply bodies go through the shared OpenAI codecs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from functools import partial
from typing import Any, TypeVar

import orjson

from server.config import LimitsConfig, OpenAIProviderConfig
from server.errors import GatewayError, UpstreamError
from server.providers.base import RequestContext, VideoContent
from server.providers.chat_backed_responses import respond_via_chat, stream_response_via_chat
from server.providers.openai_relay import (
    chunk_problem,
    completion_problem,
    relay_event,
    relay_request,
    without_cache_control,
)
from server.providers.sse_reader import SseParser
from server.providers.stream_edge import (
    EVENT_STREAM,
    STREAM_FAILURES,
    ended_early,
    not_an_event_stream,
    stream_failure,
)
from server.providers.transport import Reply, TransportError
from server.providers.upstream_errors import classify_http_error, redact
from server.providers.upstream_http import UpstreamHttp
from siraya.router.codec import chat as chat_codec
from siraya.router.codec import embeddings as embeddings_codec
from siraya.router.codec import images as images_codec
from siraya.router.codec import responses as responses_codec
from siraya.router.codec import videos as videos_codec
from siraya.router.codec.errors import CodecError
from siraya.router.codec.fields import JsonObject
from siraya.router.v1 import chat_pb2, embeddings_pb2, images_pb2, responses_pb2, videos_pb2

T = TypeVar("T")
_REPLY_CAPS = ("max_tokens", "max_completion_tokens")
_DONE = b"[DONE]"
_DOWNLOAD_CHUNK_BYTES = 64 * 1024


class OpenAICompatibleProvider:
    """One OpenAI-protocol upstream."""

    def __init__(
        self,
        config: OpenAIProviderConfig,
        limits: LimitsConfig = LimitsConfig(),  # noqa: B008 - frozen, so sharing the default is safe
    ) -> None:
        self.name = config.name
        self.native_responses = config.native_responses
        self._base_url = config.base_url
        self._limits = limits
        self._http = UpstreamHttp(config, classify_http_error, limits)
        self._secrets = self._http.secrets
        self._headers = {"Content-Type": "application/json", **config.headers}
        if config.api_key:
            self._headers["Authorization"] = f"Bearer {config.api_key}"

    async def close(self) -> None:
        await self._http.close()

    # transport

    def _request_headers(self, ctx: RequestContext) -> dict[str, str]:
        if not ctx.forward_headers:
            return self._headers
        return {**ctx.forward_headers, **self._headers}

    def _open(
        self,
        method: str,
        path: str,
        ctx: RequestContext,
        body: Any = None,
        params: dict[str, str] | None = None,
        limit: int | None = None,
    ) -> AbstractAsyncContextManager[Reply]:
        """`body` is JSON to encode, or bytes already encoded (a relayed request)."""
        data = body if body is None or type(body) is bytes else orjson.dumps(body)
        url = self._base_url + path
        return self._http.request(
            method, url, ctx, self._request_headers(ctx), data, params=params, limit=limit
        )

    async def _call_json(
        self,
        method: str,
        path: str,
        ctx: RequestContext,
        decode: Callable[[Any], T],
        body: Any = None,
        *,
        limit: int,
    ) -> T:
        """`decode` of the reply's JSON; a reply over `limit` bytes is a 502."""
        async with self._open(method, path, ctx, body, limit=limit) as response:
            raw = await response.read()
        try:
            return decode(orjson.loads(raw))
        except (orjson.JSONDecodeError, CodecError) as error:
            raise UpstreamError(
                f"Provider '{self.name}' returned an invalid response: {_describe(error)}"
            ) from None

    async def _stream_events(
        self, path: str, body: Any, ctx: RequestContext, handle: Callable[[str | None, bytes], T]
    ) -> AsyncIterator[T]:
        """`handle(event name, data)` of each SSE event until [DONE] (or, for typed event streams, the
        body's end).

        It reads the network itself and handles each event in a plain loop: one generator between
        the socket and the caller, since every layer is paid again for each chunk.
        """
        async with self._open("POST", path, ctx, body) as response:
            if EVENT_STREAM not in response.headers.get("Content-Type", ""):
                raise not_an_event_stream(self.name)
            parser = SseParser(self._limits.sse_event_bytes)
            content = response.content
            try:
                while received := await content.readany():
                    for event, data in parser.feed(received):
                        if data == _DONE:
                            return
                        yield handle(event, data)
                for event, data in parser.end():
                    if data == _DONE:
                        return
                    yield handle(event, data)
            except STREAM_FAILURES as error:
                raise stream_failure(self.name, error) from None
            if path.endswith("/chat/completions"):
                raise ended_early(self.name, "[DONE]")

    def _decode_event(self, event: str | None, data: bytes, decode: Callable[[Any], T], what: str) -> T:
        try:
            return decode(self._parse_event(event, data))
        except CodecError as error:
            raise UpstreamError(
                f"Provider '{self.name}' sent an invalid {what}: {_describe(error)}"
            ) from None

    def _parse_event(self, event: str | None, data: bytes) -> Any:
        """An event's JSON; an error event (OpenAI's `{"error": ...}` mid-stream) raises."""
        try:
            parsed = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise UpstreamError(f"Provider '{self.name}' sent a malformed stream event.") from None
        if isinstance(parsed, dict) and "error" in parsed and event in (None, "error"):
            raise _stream_error(self.name, parsed["error"], self._secrets)
        return parsed

    def _relay_chunk(self, event: str | None, data: bytes) -> JsonObject:
        """A chat stream event the relay lane must read (`relay_event`): parsed and checked."""
        chunk = self._parse_event(event, data)
        problem = chunk_problem(chunk)
        if problem is not None:
            raise UpstreamError(f"Provider '{self.name}' sent an invalid chunk: {problem}.")
        return chunk  # type: ignore[no-any-return]

    # chat

    async def chat(
        self, params: chat_pb2.ChatCompletionParams, upstream_model: str, ctx: RequestContext
    ) -> chat_pb2.ChatCompletion:
        body = chat_codec.encode_chat_request(params, upstream_model, stream=False)
        return await self._call_json(
            "POST",
            "/chat/completions",
            ctx,
            chat_codec.decode_chat_completion,
            body,
            limit=self._limits.reply_bytes_chat,
        )

    def stream_chat(
        self, params: chat_pb2.ChatCompletionParams, upstream_model: str, ctx: RequestContext
    ) -> AsyncIterator[chat_pb2.ChatCompletionChunk]:
        body = _asking_for_usage(chat_codec.encode_chat_request(params, upstream_model, stream=True))
        decode = partial(self._decode_event, decode=chat_codec.decode_chat_chunk, what="chunk")
        return self._stream_events("/chat/completions", body, ctx, decode)

    # chat, relayed: the client's OpenAI body goes up as written, the upstream's answer comes back so

    async def relay_chat(
        self,
        params: chat_pb2.ChatCompletionParams,
        openai_body: bytes,
        upstream_model: str,
        ctx: RequestContext,
    ) -> JsonObject:
        """The upstream's completion as the JSON object it sent, checked only where the gateway reads it.

        `openai_body` is the client's own request (empty for a gRPC caller that sent only `params`).
        """
        body = self._relayed_body(params, openai_body, upstream_model, stream=False)
        limit = self._limits.reply_bytes_chat
        async with self._open("POST", "/chat/completions", ctx, body, limit=limit) as response:
            raw = await response.read()
        problem: str | None = "the body is not JSON"
        try:
            answer = orjson.loads(raw)
        except orjson.JSONDecodeError:
            answer = None
        else:
            problem = completion_problem(answer)
        if problem is not None:
            raise UpstreamError(f"Provider '{self.name}' returned an invalid response: {problem}.")
        return answer  # type: ignore[no-any-return]

    def relay_stream_chat(
        self,
        params: chat_pb2.ChatCompletionParams,
        openai_body: bytes,
        upstream_model: str,
        ctx: RequestContext,
    ) -> AsyncIterator[bytes | JsonObject]:
        """The upstream's stream events as they came (`relay_event`), until [DONE]."""
        body = self._relayed_body(params, openai_body, upstream_model, stream=True)
        return self._stream_events("/chat/completions", body, ctx, partial(relay_event, self._relay_chunk))

    @staticmethod
    def _relayed_body(
        params: chat_pb2.ChatCompletionParams, openai_body: bytes, upstream_model: str, stream: bool
    ) -> bytes:
        if openai_body:
            client_body = orjson.loads(openai_body)
            if b'"cache_control"' in openai_body:
                client_body = without_cache_control(client_body)
            for cap in _REPLY_CAPS:
                # The gateway's own reply cap (what a limited key's credit pays for) when the client
                # set none: the one field of the request the gateway adds.
                if cap not in client_body and params.HasField(cap):
                    client_body[cap] = getattr(params, cap)
            return relay_request(client_body, upstream_model, stream)
        body = chat_codec.encode_chat_request(params, upstream_model, stream=stream)
        return orjson.dumps(_asking_for_usage(body) if stream else body)

    # responses

    async def respond(
        self, params: responses_pb2.ResponseParams, upstream_model: str, ctx: RequestContext
    ) -> responses_pb2.Response:
        if self.native_responses:
            body = responses_codec.encode_response_request(params, upstream_model, stream=False)
            return await self._call_json(
                "POST",
                "/responses",
                ctx,
                responses_codec.decode_response,
                body,
                limit=self._limits.reply_bytes_responses,
            )
        return await respond_via_chat(self, params, upstream_model, ctx)

    async def stream_response(
        self, params: responses_pb2.ResponseParams, upstream_model: str, ctx: RequestContext
    ) -> AsyncIterator[responses_pb2.ResponseStreamEvent]:
        if self.native_responses:
            body = responses_codec.encode_response_request(params, upstream_model, stream=True)
            decode = partial(self._decode_event, decode=responses_codec.decode_response_event, what="event")
            events = self._stream_events("/responses", body, ctx, decode)
            async for event in events:
                yield event
            return
        async for event in stream_response_via_chat(self, params, upstream_model, ctx):
            yield event

    # embeddings, images, videos

    async def embed(
        self, params: embeddings_pb2.EmbeddingParams, upstream_model: str, ctx: RequestContext
    ) -> embeddings_pb2.EmbeddingList:
        body = embeddings_codec.encode_embedding_request(params, upstream_model)
        return await self._call_json(
            "POST",
            "/embeddings",
            ctx,
            embeddings_codec.decode_embedding_list,
            body,
            limit=self._limits.reply_bytes_embeddings,
        )

    async def generate_images(
        self, params: images_pb2.ImageParams, upstream_model: str, ctx: RequestContext
    ) -> images_pb2.ImagesResult:
        body = images_codec.encode_image_request(params, upstream_model)
        return await self._call_json(
            "POST",
            "/images/generations",
            ctx,
            images_codec.decode_images_result,
            body,
            limit=self._limits.reply_bytes_images,
        )

    async def create_video(
        self, params: videos_pb2.VideoParams, upstream_model: str, ctx: RequestContext
    ) -> videos_pb2.Video:
        body = videos_codec.encode_video_request(params, upstream_model)
        return await self._call_json(
            "POST", "/videos", ctx, videos_codec.decode_video, body, limit=self._limits.reply_bytes_videos
        )

    async def get_video(self, upstream_id: str, ctx: RequestContext) -> videos_pb2.Video:
        return await self._call_json(
            "GET",
            f"/videos/{upstream_id}",
            ctx,
            videos_codec.decode_video,
            limit=self._limits.reply_bytes_videos,
        )

    async def download_video(self, upstream_id: str, variant: str, ctx: RequestContext) -> VideoContent:
        opened = self._open("GET", f"/videos/{upstream_id}/content", ctx, params={"variant": variant})
        response = await opened.__aenter__()

        async def chunks() -> AsyncIterator[bytes]:
            try:
                async for chunk in response.content.iter_chunked(_DOWNLOAD_CHUNK_BYTES):
                    yield chunk
            except TransportError:
                raise UpstreamError(f"Provider '{self.name}' cut the video download short.") from None
            finally:
                await opened.__aexit__(None, None, None)

        return VideoContent(response.headers.get("Content-Type", "application/octet-stream"), chunks())


def _asking_for_usage(body: JsonObject) -> JsonObject:
    """A chat stream's body with `stream_options.include_usage` on, whatever the client asked.

    Without it an OpenAI-protocol upstream reports no usage and the stream could only be estimated;
    the gateway meters the usage chunk, and takes it out again when the client did not ask for it.
    """
    options = body.get("stream_options")
    body["stream_options"] = {**options, "include_usage": True} if options else {"include_usage": True}
    return body


def _describe(error: Exception) -> str:
    if isinstance(error, CodecError):
        return error.message
    return "the body is not JSON"


def _stream_error(provider: str, error: Any, secrets: tuple[str, ...]) -> GatewayError:
    message = error.get("message") if isinstance(error, dict) else None
    detail = f": {redact(message, secrets)}" if isinstance(message, str) else "."
    return UpstreamError(f"Provider '{provider}' reported an error mid-stream{detail}")
