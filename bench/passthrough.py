"""The floor `make bench` compares the gateway with: a bare aiohttp pass-through.

aiohttp server -> one pooled aiohttp client -> the upstream, bytes in and bytes out: no auth, no
JSON parsing, no routing, no accounting. POST /v1/<path> is forwarded to <upstream>/<path>; a body
with `"stream":true` is relayed chunk by chunk as it arrives (the bare streaming pass-through),
anything else is read whole and answered whole.

Usage: python bench/passthrough.py --upstream http://127.0.0.1:PORT/v1 [--port 0]; prints `PORT <n>`.
"""

from __future__ import annotations

import sys

import aiohttp
from aiohttp import web
from bench_common import run_passthrough, until_signalled

UPSTREAM = web.AppKey("upstream", str)
SESSION = web.AppKey("session", aiohttp.ClientSession)
_HEADERS = {"Content-Type": "application/json", "Authorization": "Bearer sk-upstream-bench"}


async def forward(request: web.Request) -> web.StreamResponse:
    body = await request.read()
    url = request.app[UPSTREAM] + request.match_info["path"]
    async with request.app[SESSION].post(url, data=body, headers=_HEADERS) as upstream:
        if b'"stream":true' not in body:
            return web.Response(
                body=await upstream.read(), status=upstream.status, content_type=upstream.content_type
            )
        response = web.StreamResponse(status=upstream.status, headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        async for data in upstream.content.iter_any():
            await response.write(data)
        await response.write_eof()
        return response


async def serve(host: str, port: int, upstream: str, max_connections: int) -> None:
    app = web.Application()
    app[UPSTREAM] = upstream.rstrip("/") + "/"
    app.router.add_post("/v1/{path:.+}", forward)
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=max_connections), skip_auto_headers=("User-Agent",)
    )
    app[SESSION] = session
    runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=4096)
    await site.start()
    print(f"PORT {site._server.sockets[0].getsockname()[1]}", flush=True)  # type: ignore[union-attr]
    await until_signalled()
    await runner.cleanup()
    await session.close()


def main() -> int:
    return run_passthrough(__doc__.splitlines()[0], serve)


if __name__ == "__main__":
    sys.exit(main())
