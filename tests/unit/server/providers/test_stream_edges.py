"""The stream edges every adapter shares (server/providers/stream_edge.py), against a raw upstream on
loopback that misbehaves at the edge of a stream: the OpenAI-compatible, Anthropic and Gemini
adapters each say the same thing, with the same error kind, for the same failure."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from server.config import AnthropicProviderConfig, GeminiProviderConfig, OpenAIProviderConfig
from server.errors import GatewayError, RequestTimeout, UpstreamError
from server.providers.anthropic import AnthropicProvider
from server.providers.base import Provider, RequestContext
from server.providers.gemini import GeminiProvider
from server.providers.openai_compat import OpenAICompatibleProvider
from siraya.router.v1 import chat_pb2

pytestmark = pytest.mark.timeout(20)

SSE_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


# How the upstream misbehaves once it has read the request.
BEHAVIOURS: dict[str, Callable[[asyncio.StreamWriter], Awaitable[None]]] = {}


def behaviour(name: str) -> Callable[[Callable[[asyncio.StreamWriter], Awaitable[None]]], None]:
    def register(function: Callable[[asyncio.StreamWriter], Awaitable[None]]) -> None:
        BEHAVIOURS[name] = function

    return register


@behaviour("json instead of a stream")
async def _json(writer: asyncio.StreamWriter) -> None:
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")


@behaviour("silent mid-stream")
async def _stall(writer: asyncio.StreamWriter) -> None:
    writer.write(SSE_HEAD + chunk(b": still thinking\n\n"))
    await writer.drain()
    await asyncio.sleep(5)


@behaviour("cut mid-chunk")
async def _cut(writer: asyncio.StreamWriter) -> None:
    writer.write(SSE_HEAD + b"40\r\ndata: {")
    await writer.drain()
    writer.transport.abort()


@behaviour("not JSON")
async def _garbage(writer: asyncio.StreamWriter) -> None:
    writer.write(SSE_HEAD + chunk(b"data: {not json\n\n") + b"0\r\n\r\n")


@pytest.fixture
async def upstream(request: pytest.FixtureRequest) -> AsyncIterator[int]:
    act = BEHAVIOURS[request.param]

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                (
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length")
                ),
                0,
            )
            await reader.readexactly(length)
            await act(writer)
            await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()


def adapter(kind: str, port: int) -> Provider:
    settings = {"name": kind, "api_key": "k", "read_timeout": 0.3}
    if kind == "openai":
        return OpenAICompatibleProvider(
            OpenAIProviderConfig(base_url=f"http://127.0.0.1:{port}/v1", **settings)
        )
    if kind == "anthropic":
        return AnthropicProvider(AnthropicProviderConfig(base_url=f"http://127.0.0.1:{port}", **settings))
    return GeminiProvider(GeminiProviderConfig(base_url=f"http://127.0.0.1:{port}/v1beta", **settings))


async def stream_error(kind: str, port: int) -> GatewayError:
    params = chat_pb2.ChatCompletionParams(model="m")
    params.messages.add(role=chat_pb2.CHAT_ROLE_USER, text="hi")
    provider = adapter(kind, port)
    try:
        with pytest.raises(GatewayError) as raised:
            async for _ in provider.stream_chat(params, "m", RequestContext("r1")):
                pass
    finally:
        await provider.close()
    return raised.value


@pytest.mark.parametrize("kind", ["openai", "anthropic", "gemini"])
@pytest.mark.parametrize(
    ("upstream", "error_type", "said"),
    [
        ("json instead of a stream", UpstreamError, "did not answer with an event stream."),
        ("silent mid-stream", RequestTimeout, "stalled mid-stream."),
        ("cut mid-chunk", UpstreamError, "cut the stream short."),
        ("not JSON", UpstreamError, "sent a malformed stream event."),
    ],
    indirect=["upstream"],
)
async def test_every_adapter_says_the_same_at_a_streams_edge(
    kind: str, upstream: int, error_type: type[GatewayError], said: str
) -> None:
    error = await stream_error(kind, upstream)
    assert type(error) is error_type
    # An upstream's failure also names the call it came from: "... [POST /v1/chat/completions]."
    assert error.message.startswith(f"Provider '{kind}' {said.rstrip('.')}"), error.message
