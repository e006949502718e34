"""A performance guard that cannot flake: the gateway's own Python calls per request have a ceiling.

`make bench` measures speed; this counts work. Every call into (or resumption of) a function of
the gateway's own packages while one request is served, counted with `sys.setprofile` on the event
loop's thread and averaged over many requests. A new layer, a per-request rebuild of something that
should be built once, or a codec that walks a message twice shows up as more calls, on any machine
and under any load. Library code (aiohttp, protobuf) is not counted, so upgrading a library does not
move the figure. The ceilings sit about 20% above what this code measured; lower them when a change
makes the path cheaper.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from types import FrameType
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web

from server.accounts.keys import NewKey
from server.config import load_config
from siraya_app.start import start_gateway
from tests.fakes.loopback import LoopbackServer

ROOT = Path(__file__).resolve().parents[3]
OWN_CODE = tuple(str(ROOT / package) for package in ("server", "http_bridge", "siraya"))
REQUESTS = 300
WARM_UP = 30

# Calls into the gateway's own code per request, measured on this code base (208 and 358: the
# relay lane, issue #14, took a stream from 432 and a chat from 218), plus ~5% and ~12%.
CHAT_CEILING = 220
STREAM_CEILING = 400

Send = Callable[[dict[str, Any]], Awaitable[bytes]]
USAGE = {"prompt_tokens": 12, "completion_tokens": 9, "total_tokens": 21}
COMPLETION = orjson.dumps(
    {
        "id": "chatcmpl-budget",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "budget-model",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "counted", "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": USAGE,
    }
)


def _chunk(delta: dict[str, Any], finish: str | None = None, usage: dict[str, int] | None = None) -> bytes:
    choices = [] if usage else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
    chunk = {
        "id": "chatcmpl-budget",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": "budget-model",
        "choices": choices,
        "usage": usage,
    }
    return b"data: " + orjson.dumps(chunk) + b"\n\n"


# The bench's shape: a role chunk, nine words, a finish chunk, the usage chunk, [DONE].
STREAM = (
    _chunk({"role": "assistant", "content": ""})
    + b"".join(_chunk({"content": f" word{i}"}) for i in range(9))
    + _chunk({}, "stop")
    + _chunk({}, usage=USAGE)
    + b"data: [DONE]\n\n"
)
CONFIG = """
server: {{host: 127.0.0.1, http_port: 0, grpc_port: 0, data_dir: {data_dir}}}
providers:
  budget: {{type: openai, base_url: "http://127.0.0.1:{port}/v1", api_key: sk-upstream-budget}}
models:
  - {{id: budget-chat, provider: budget, upstream_model: budget-model, kind: chat,
      pricing: {{input_per_million: 0.15, output_per_million: 0.6}}}}
"""


class CallCounter:
    """Counts 'call' events (calls and coroutine resumptions) whose code lives in OWN_CODE."""

    def __init__(self) -> None:
        self.calls = 0
        self._own: dict[str, bool] = {}

    def __call__(self, frame: FrameType, event: str, arg: object) -> None:
        if event != "call":
            return
        filename = frame.f_code.co_filename
        own = self._own.get(filename)
        if own is None:
            own = self._own[filename] = filename.startswith(OWN_CODE)
        if own:
            self.calls += 1


async def _chat(request: web.Request) -> web.StreamResponse:
    body = await request.json()
    if not body.get("stream"):
        return web.Response(body=COMPLETION, content_type="application/json")
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    await response.write(STREAM)
    await response.write_eof()
    return response


class BudgetUpstream(LoopbackServer):
    """An OpenAI-shaped upstream with one fixed completion and one fixed stream."""

    def _build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", _chat)
        return app


@pytest.fixture
async def send(tmp_path: Path) -> AsyncIterator[Send]:
    """Send one body to the running bridge (in-process mode, a key with a credit limit)."""
    async with BudgetUpstream() as upstream:
        config_path = tmp_path / "siraya.yaml"
        config_path.write_text(CONFIG.format(data_dir=tmp_path / "data", port=upstream.port))
        gateway = await start_gateway(load_config(config_path), in_process=True)
        try:
            _, key = await gateway.gateway.keys.create(NewKey(name="budget", credit_limit=1000.0))
            url = f"http://127.0.0.1:{gateway.http_port}/v1/chat/completions"
            headers = {"Authorization": f"Bearer {key}"}
            async with aiohttp.ClientSession() as client:

                async def one(body: dict[str, Any]) -> bytes:
                    async with client.post(url, json=body, headers=headers) as response:
                        payload = await response.read()
                        assert response.status == 200, payload
                        return payload

                yield one
        finally:
            await gateway.stop()


async def _calls_per_request(send: Send, body: dict[str, Any]) -> float:
    for _ in range(WARM_UP):
        await send(body)
    counter = CallCounter()
    sys.setprofile(counter)
    try:
        for _ in range(REQUESTS):
            await send(body)
    finally:
        sys.setprofile(None)
    return counter.calls / REQUESTS


MESSAGES = [{"role": "user", "content": "What is the meaning of life?"}]


async def test_a_chat_completion_stays_within_its_call_budget(send: Any) -> None:
    body = {"model": "budget-chat", "messages": MESSAGES}
    assert b'"content":"counted"' in await send(body)
    calls = await _calls_per_request(send, body)
    print(f"chat: {calls:.1f} calls into the gateway's code per request")
    assert calls <= CHAT_CEILING, f"{calls:.1f} calls per chat completion (ceiling {CHAT_CEILING})"


async def test_a_streamed_chat_completion_stays_within_its_call_budget(send: Any) -> None:
    body = {
        "model": "budget-chat",
        "messages": MESSAGES,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    payload = await send(body)
    assert payload.count(b"data: ") == 13 and payload.endswith(b"data: [DONE]\n\n"), payload
    calls = await _calls_per_request(send, body)
    print(f"stream: {calls:.1f} calls into the gateway's code per request")
    assert calls <= STREAM_CEILING, f"{calls:.1f} calls per streamed completion (ceiling {STREAM_CEILING})"
