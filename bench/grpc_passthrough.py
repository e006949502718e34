"""The gRPC floor `make bench` compares the gateway with: a bare grpc.aio pass-through.

It serves the gateway's two chat methods (/siraya.router.v1.ChatService/CreateChatCompletion and
StreamChatCompletion) as raw bytes: each call POSTs a fixed JSON body to the upstream through one
pooled aiohttp client and replies with the upstream's bytes, one gRPC message for a completion or
one per SSE event for a stream. No proto parsing, no auth, no routing: what is left is grpc.aio and
aiohttp themselves.

Usage: python bench/grpc_passthrough.py --upstream http://127.0.0.1:PORT/v1 [--port 0]; prints `PORT <n>`.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator

import aiohttp
import grpc
from bench_common import run_passthrough, until_signalled

SERVICE = "siraya.router.v1.ChatService"
_HEADERS = {"Content-Type": "application/json", "Authorization": "Bearer sk-upstream-bench"}
_MESSAGES = b'"messages":[{"role":"user","content":"What is the meaning of life?"}]'
_UNARY_BODY = b'{"model":"bench-model",' + _MESSAGES + b"}"
_STREAM_BODY = (
    b'{"model":"bench-model",' + _MESSAGES + b',"stream":true,"stream_options":{"include_usage":true}}'
)


class Passthrough:
    def __init__(self, upstream: str, max_connections: int) -> None:
        self.url = upstream.rstrip("/") + "/chat/completions"
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=max_connections), skip_auto_headers=("User-Agent",)
        )

    async def unary(self, request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        async with self.session.post(self.url, data=_UNARY_BODY, headers=_HEADERS) as upstream:
            return await upstream.read()

    async def stream(self, request: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
        async with self.session.post(self.url, data=_STREAM_BODY, headers=_HEADERS) as upstream:
            async for line in upstream.content:
                if line.startswith(b"data: {"):
                    yield line


async def serve(host: str, port: int, upstream: str, max_connections: int) -> None:
    passthrough = Passthrough(upstream, max_connections)
    handlers = {
        "CreateChatCompletion": grpc.unary_unary_rpc_method_handler(passthrough.unary),
        "StreamChatCompletion": grpc.unary_stream_rpc_method_handler(passthrough.stream),
    }
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    bound = server.add_insecure_port(f"{host}:{port}")
    await server.start()
    print(f"PORT {bound}", flush=True)
    await until_signalled()
    await server.stop(0.5)
    await passthrough.session.close()


def main() -> int:
    return run_passthrough(__doc__.splitlines()[0], serve)


if __name__ == "__main__":
    sys.exit(main())
