"""The Anthropic Messages adapter's I/O: one pooled upstream client, POST {base_url}/v1/messages.

`base_url` is the API root without the version, as Anthropic's SDKs take it:
"https://api.anthropic.com" (the well-known default). A trailing "/v1" is tolerated and not doubled.
Every request carries `x-api-key`, `anthropic-version: 2023-06-01` and a JSON content type; config
`headers` override or add to these (an `anthropic-version` or `anthropic-beta` header, say).

The Responses API is served through chat (`respond_via_chat`); Anthropic has no embeddings, image
or video generation, so those are refused as an unsupported model capability. A Messages request
from an Anthropic client is relayed as it was written (`relay_message`, `relay_message_stream`:
the same-protocol lane of server/providers/messages_relay.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager

import orjson

from server.config import AnthropicProviderConfig, LimitsConfig
from server.config.providers.anthropic import DEFAULT_BASE_URL
from server.errors import UpstreamError
from server.providers.anthropic.errors import error_from_event, error_from_response
from server.providers.anthropic.request import ANTHROPIC_SUPPORT, resolve_media, to_anthropic
from server.providers.anthropic.response import AnthropicShapeError, from_anthropic
from server.providers.anthropic.stream import StreamTranslator
from server.providers.base import RequestContext
from server.providers.chat_only import ChatOnly
from server.providers.param_policy import enforce_chat_support
from server.providers.sse_reader import read_sse
from server.providers.stream_edge import (
    EVENT_STREAM,
    STREAM_FAILURES,
    ended_early,
    not_an_event_stream,
    stream_failure,
)
from server.providers.tool_call_limit import first_tool_call_only, first_tool_calls_streamed, single_tool_call
from server.providers.transport import Reply
from server.providers.upstream_http import UpstreamHttp
from siraya.router.codec.fields import JsonObject
from siraya.router.v1 import chat_pb2

__all__ = ["ANTHROPIC_SUPPORT", "ANTHROPIC_VERSION", "DEFAULT_BASE_URL", "AnthropicProvider"]

ANTHROPIC_VERSION = "2023-06-01"
_MESSAGES_PATH = "/v1/messages"


def messages_url(base_url: str) -> str:
    root = base_url.rstrip("/")
    if root.endswith("/v1"):
        root = root[:-3]
    return root + _MESSAGES_PATH


class AnthropicProvider(ChatOnly):
    """One Anthropic Messages upstream."""

    native_responses = False
    described_as = "Anthropic"

    def __init__(
        self,
        config: AnthropicProviderConfig,
        limits: LimitsConfig = LimitsConfig(),  # noqa: B008 - frozen, so sharing the default is safe
    ) -> None:
        self.name = config.name
        self._config = config
        self._url = messages_url(config.base_url)
        self._limits = limits
        self._http = UpstreamHttp(config, error_from_response, limits)
        self._secrets = self._http.secrets
        headers = {"content-type": "application/json", "anthropic-version": ANTHROPIC_VERSION}
        if config.api_key:
            headers["x-api-key"] = config.api_key
        headers.update((name.lower(), value) for name, value in config.headers.items())
        self._headers = headers

    async def close(self) -> None:
        await self._http.close()

    # transport

    def _body(self, params: chat_pb2.ChatCompletionParams, upstream_model: str, stream: bool) -> bytes:
        enforce_chat_support(
            params,
            ANTHROPIC_SUPPORT,
            require_parameters=params.routing.provider.require_parameters,
            provider=self.name,
        )
        return orjson.dumps(to_anthropic(params, upstream_model, stream, resolve_media(params)))

    def _request_headers(self, ctx: RequestContext) -> dict[str, str]:
        if not ctx.forward_headers:
            return self._headers
        return {**ctx.forward_headers, **self._headers}

    def _post(
        self, body: bytes, ctx: RequestContext, limit: int | None = None
    ) -> AbstractAsyncContextManager[Reply]:
        return self._http.request("POST", self._url, ctx, self._request_headers(ctx), body, limit=limit)

    # chat

    async def chat(
        self, params: chat_pb2.ChatCompletionParams, upstream_model: str, ctx: RequestContext
    ) -> chat_pb2.ChatCompletion:
        body = self._body(params, upstream_model, stream=False)
        async with self._post(body, ctx, self._limits.reply_bytes_chat) as response:
            raw = await response.read()
        try:
            completion = from_anthropic(orjson.loads(raw))
        except orjson.JSONDecodeError:
            raise UpstreamError(
                f"Provider '{self.name}' returned an invalid response: the body is not JSON."
            ) from None
        except AnthropicShapeError as error:
            raise UpstreamError(f"Provider '{self.name}' returned an invalid response: {error}.") from None
        # Anthropic was told (disable_parallel_tool_use); the cap makes `false` hold whatever came back.
        return first_tool_call_only(completion) if single_tool_call(params) else completion

    def stream_chat(
        self, params: chat_pb2.ChatCompletionParams, upstream_model: str, ctx: RequestContext
    ) -> AsyncIterator[chat_pb2.ChatCompletionChunk]:
        chunks = self._stream_chat(params, upstream_model, ctx)
        return first_tool_calls_streamed(chunks) if single_tool_call(params) else chunks

    async def _stream_chat(
        self, params: chat_pb2.ChatCompletionParams, upstream_model: str, ctx: RequestContext
    ) -> AsyncIterator[chat_pb2.ChatCompletionChunk]:
        body = self._body(params, upstream_model, stream=True)
        translator = StreamTranslator(self.name, secrets=self._secrets)
        async with self._post(body, ctx) as response:
            if EVENT_STREAM not in response.headers.get("Content-Type", ""):
                raise not_an_event_stream(self.name)
            try:
                async for _, data in read_sse(response.content, self._limits.sse_event_bytes):
                    for chunk in translator.feed(orjson.loads(data)):
                        yield chunk
            except STREAM_FAILURES as error:
                raise stream_failure(self.name, error) from None
            except AnthropicShapeError as error:
                raise UpstreamError(
                    f"Provider '{self.name}' sent an invalid stream event: {error}."
                ) from None
        if not translator.finished:
            raise ended_early(self.name, "message_stop")

    # Anthropic Messages, relayed: the body and the events pass through, parsed only to be metered

    async def relay_message(self, body: JsonObject, ctx: RequestContext) -> JsonObject:
        async with self._post(orjson.dumps(body), ctx) as response:
            raw = await response.read()
        try:
            answer = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise UpstreamError(
                f"Provider '{self.name}' returned an invalid response: the body is not JSON."
            ) from None
        if not isinstance(answer, dict) or not isinstance(answer.get("content"), list):
            raise UpstreamError(
                f"Provider '{self.name}' returned an invalid response: the reply has no 'content' array."
            )
        return answer

    async def relay_message_stream(self, body: JsonObject, ctx: RequestContext) -> AsyncIterator[JsonObject]:
        finished = False
        async with self._post(orjson.dumps(body), ctx) as response:
            if EVENT_STREAM not in response.headers.get("Content-Type", ""):
                raise not_an_event_stream(self.name)
            try:
                async for _, data in read_sse(response.content):
                    event = orjson.loads(data)
                    if not isinstance(event, dict):
                        raise UpstreamError(
                            f"Provider '{self.name}' sent a stream event that is not an object."
                        )
                    kind = event.get("type")
                    if kind == "error":
                        raise error_from_event(self.name, event, self._secrets)
                    if kind == "message_stop":
                        finished = True
                    yield event
            except STREAM_FAILURES as error:
                raise stream_failure(self.name, error) from None
        if not finished:
            raise ended_early(self.name, "message_stop")
