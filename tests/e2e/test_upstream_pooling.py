"""A performance guard that cannot flake: keep-alive requests reuse pooled upstream connections.

A client, session or connector built per request (the costliest hot-path mistake measured by
`make bench`) opens one upstream connection per request. Counting the connections the upstream saw
catches that without timing anything.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import orjson
from aiohttp import web

from server.accounts.keys import NewKey
from server.config import load_config
from siraya_app.start import start_gateway

COMPLETION = orjson.dumps(
    {
        "id": "chatcmpl-pool",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "pool-model",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "pooled", "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
    }
)
CONFIG = """
server: {{host: 127.0.0.1, http_port: 0, grpc_port: 0, data_dir: {data_dir}}}
providers:
  pool: {{type: openai, base_url: "http://127.0.0.1:{port}/v1", api_key: sk-upstream-pool}}
models:
  - {{id: pool-chat, provider: pool, upstream_model: pool-model, kind: chat}}
"""


async def test_keep_alive_requests_reuse_a_few_upstream_connections(tmp_path: Path) -> None:
    connections: set[object] = set()  # the transports themselves, so ids are never reused

    async def chat(request: web.Request) -> web.Response:
        connections.add(request.transport)
        await request.read()
        return web.Response(body=COMPLETION, content_type="application/json")

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    config_path = tmp_path / "siraya.yaml"
    config_path.write_text(CONFIG.format(data_dir=tmp_path / "data", port=port))
    gateway = await start_gateway(load_config(config_path), in_process=True)
    try:
        _, key = await gateway.gateway.keys.create(NewKey(name="pool"))
        url = f"http://127.0.0.1:{gateway.http_port}/v1/chat/completions"
        body = {"model": "pool-chat", "messages": [{"role": "user", "content": "hi"}]}
        headers = {"Authorization": f"Bearer {key}"}
        async with aiohttp.ClientSession() as client:

            async def one() -> None:
                async with client.post(url, json=body, headers=headers) as response:
                    assert response.status == 200, await response.text()
                    assert (await response.json())["choices"][0]["message"]["content"] == "pooled"

            for _ in range(200):
                await one()
            # One request at a time: each finds the previous one's connection idle in the pool.
            assert len(connections) == 1, f"200 sequential requests opened {len(connections)} connections"

            in_flight = 16
            for _ in range(25):
                await asyncio.gather(*(one() for _ in range(in_flight)))
        # 400 more requests, never more than 16 at once: never more connections than that.
        assert len(connections) <= in_flight + 1, f"{len(connections)} connections for {in_flight} in flight"
    finally:
        await gateway.stop()
        await runner.cleanup()
