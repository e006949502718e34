"""One request, or one upstream, must never cost the process its memory (issue #20, defects 2 and 6).

The gateway runs as its own process (`python -m server serve`), so its peak RSS (`VmHWM` in
/proc/<pid>/status) is its own: the fake Gemini API, the media host and the bulk upstream all run in
this test process. The ceilings are generous, and far below the 2 GB the unbounded code reached.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web

from tests.e2e.process_harness import UPSTREAM_KEY, GatewayProcess, UpstreamLoop
from tests.fakes.gemini_upstream import FakeGeminiUpstream
from tests.fakes.loopback import LoopbackServer

MIB = 1024 * 1024
# Just under the 20 MiB a single URL may fetch, as in the probe.
BIG_PNG = b"\x89PNG\r\n\x1a\n" + bytes(19 * MIB - 8)
# The embeddings reply: 103 MB of float JSON from an upstream that honoured `dimensions`.
HUGE_DIMENSIONS = 9_000_000
MEDIA_RSS_CEILING = 300 * MIB
REPLY_RSS_CEILING = 600 * MIB

CONFIG = """
server:
  host: 127.0.0.1
  http_port: 0
  grpc_port: 0
  data_dir: {data_dir}
providers:
  google:
    type: gemini
    base_url: {gemini_url}
    api_key: ${{FAKE_UPSTREAM_KEY}}
    media_allow_private_addresses: true
    media_allow_http: true
  bulk:
    type: openai
    base_url: {bulk_url}
    api_key: ${{FAKE_UPSTREAM_KEY}}
models:
  - {{id: gemini-flash, provider: google, upstream_model: gemini-2.5-flash}}
  - {{id: bulk-embed, provider: bulk, upstream_model: text-embedding-3-small, kind: embedding}}
  - {{id: bulk-chat, provider: bulk, upstream_model: gpt-4o-mini}}
routing:
  breaker: {{enabled: false}}
"""


class MediaHost(LoopbackServer):
    """An image host: `/big.png` is a 19 MiB PNG, served with its Content-Length."""

    def _build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/big.png", self._big)
        return app

    async def _big(self, request: web.Request) -> web.Response:
        return web.Response(body=BIG_PNG, content_type="image/png")


def _huge_embedding_reply() -> bytes:
    vector = b",".join([b"-0.012345678"] * HUGE_DIMENSIONS)
    return (
        b'{"object":"list","model":"text-embedding-3-small","data":[{"object":"embedding","index":0,'
        b'"embedding":[' + vector + b']}],"usage":{"prompt_tokens":1,"total_tokens":1}}'
    )


class BulkUpstream(LoopbackServer):
    """An OpenAI-protocol upstream whose embeddings reply is ~103 MB, whatever was asked, and whose
    chat stream is one endless event.

    `chunked` replies without a Content-Length, so only counting the bytes as they arrive can stop it.
    """

    api_prefix = "/v1"

    def __init__(self) -> None:
        super().__init__()
        self.reply = _huge_embedding_reply()
        self.chunked = False

    def _build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/embeddings", self._embeddings)
        app.router.add_post("/v1/chat/completions", self._endless_event)
        return app

    async def _endless_event(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        try:
            await response.write(b'data: {"id":"x","choices":[{"delta":{"content":"')
            for _ in range(64):  # 64 MiB of one event's data, and never the blank line that ends it
                await response.write(b"y" * MIB)
        except (ConnectionError, RuntimeError):
            pass
        return response

    async def _embeddings(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        if not self.chunked:
            return web.Response(body=self.reply, content_type="application/json")
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        view = memoryview(self.reply)
        try:
            for start in range(0, len(view), MIB):
                await response.write(view[start : start + MIB])
            await response.write_eof()
        except (ConnectionError, RuntimeError):
            pass  # the gateway hung up on a reply over its budget
        return response


@pytest.fixture
def loop() -> Iterator[UpstreamLoop]:
    upstreams = UpstreamLoop()
    yield upstreams
    upstreams.close()


@pytest.fixture
def gateway(tmp_path: Path, loop: UpstreamLoop) -> Iterator[tuple[GatewayProcess, str, dict[str, Any]]]:
    gemini = FakeGeminiUpstream(api_key=UPSTREAM_KEY)
    media = MediaHost()
    bulk = BulkUpstream()
    for server in (gemini, media, bulk):
        loop.run(server.start())
    config = CONFIG.format(data_dir=tmp_path / "data", gemini_url=gemini.base_url, bulk_url=bulk.base_url)
    process = GatewayProcess(tmp_path, config)
    key = process.create_key()
    process.start()
    try:
        yield process, key, {"gemini": gemini, "media": media, "bulk": bulk}
    finally:
        process.kill()
        for server in (gemini, media, bulk):
            loop.run(server.stop())


def _status(pid: int) -> dict[str, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmHWM", "VmRSS"):
            fields[name] = int(value.split()[0]) * 1024
    return fields


def _image_request(url: str, count: int) -> dict[str, Any]:
    parts: list[dict[str, Any]] = [{"type": "text", "text": "What is in these pictures?"}]
    parts += [{"type": "image_url", "image_url": {"url": url}} for _ in range(count)]
    return {"model": "gemini-flash", "messages": [{"role": "user", "content": parts}]}


async def _post_all(base_url: str, key: str, path: str, bodies: list[dict[str, Any]]) -> list[httpx.Response]:
    async with httpx.AsyncClient(
        base_url=base_url, headers={"Authorization": f"Bearer {key}"}, timeout=120
    ) as client:
        return list(await asyncio.gather(*(client.post(path, json=body) for body in bodies)))


def test_twenty_nineteen_mib_image_urls_are_refused_and_the_peak_rss_stays_under_300_mib(
    gateway: tuple[GatewayProcess, str, dict[str, Any]],
) -> None:
    process, key, servers = gateway
    assert process.process is not None
    pid = process.process.pid
    url = f"http://127.0.0.1:{servers['media'].port}/big.png"

    # The request: one 1.7 KB body naming 20 URLs of 19 MiB each, then a few at once.
    first = asyncio.run(_post_all(process.base_url, key, "/v1/chat/completions", [_image_request(url, 20)]))
    burst = asyncio.run(
        _post_all(process.base_url, key, "/v1/chat/completions", [_image_request(url, 20) for _ in range(4)])
    )
    for reply in first + burst:
        assert reply.status_code == 400, reply.text
        error = reply.json()["error"]
        assert error["type"] == "invalid_request_error"
        assert error["param"].startswith("messages[0].content[") and error["param"].endswith("].image_url")

    # Requests within every budget still work when many arrive at once: the process budget queues them.
    servers["gemini"].requests.clear()
    fitting = asyncio.run(
        _post_all(process.base_url, key, "/v1/chat/completions", [_image_request(url, 1) for _ in range(6)])
    )
    assert [reply.status_code for reply in fitting] == [200] * 6, [reply.text[:300] for reply in fitting]
    servers["gemini"].requests.clear()

    peak = _status(pid)["VmHWM"]
    assert peak < MEDIA_RSS_CEILING, f"the gateway's peak RSS was {peak / MIB:.0f} MiB"


def test_an_oversized_upstream_reply_is_a_502_while_health_stays_live_and_rss_bounded(
    gateway: tuple[GatewayProcess, str, dict[str, Any]],
) -> None:
    process, key, servers = gateway
    assert process.process is not None
    pid = process.process.pid
    body = {"model": "bulk-embed", "input": "hello", "dimensions": 1536}
    stalls: list[float] = []

    async def attack() -> list[httpx.Response]:
        async def watch_health(done: asyncio.Event) -> None:
            async with httpx.AsyncClient(base_url=process.base_url, timeout=30) as client:
                while not done.is_set():
                    started = time.monotonic()
                    assert (await client.get("/health/live")).status_code == 200
                    stalls.append(time.monotonic() - started)
                    await asyncio.sleep(0.05)

        done = asyncio.Event()
        watcher = asyncio.create_task(watch_health(done))
        try:
            # With a Content-Length, then chunked (only the count of arrived bytes can stop that one),
            # then streams whose one event never ends.
            replies = await _post_all(process.base_url, key, "/v1/embeddings", [body] * 3)
            servers["bulk"].chunked = True
            replies += await _post_all(process.base_url, key, "/v1/embeddings", [body] * 3)
            streams = [
                {"model": "bulk-chat", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
            ]
            replies += await _post_all(process.base_url, key, "/v1/chat/completions", streams * 3)
        finally:
            done.set()
            await watcher
        return replies

    replies = asyncio.run(attack())
    for reply in replies:
        assert reply.status_code == 502, reply.text[:300]
        error = reply.json()["error"]
        assert (error["type"], error["code"]) == ("upstream_error", "provider_error")
    assert stalls and max(stalls) < 2.0, f"/health/live stalled for {max(stalls):.1f} s"
    peak = _status(pid)["VmHWM"]
    assert peak < REPLY_RSS_CEILING, f"the gateway's peak RSS was {peak / MIB:.0f} MiB"
