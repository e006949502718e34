"""`RunningGateway.stop` is bounded: a handler still running after STOP_SECONDS is cancelled, not
waited on for aiohttp's default minute (a graceful stop drains first: test_operations_drain.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from server.accounts.keys import NewKey
from server.config import load_config
from siraya_app import start as server_app
from siraya_app.start import start_gateway
from tests.fakes.openai_upstream import FakeOpenAIUpstream

UPSTREAM_KEY = "sk-upstream-stop-0123456789"


async def test_stop_cancels_a_stream_still_open_after_its_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(server_app, "STOP_SECONDS", 0.2)
    # One chunk every ten seconds: the stream is still open when the gateway stops.
    async with FakeOpenAIUpstream(api_key=UPSTREAM_KEY, chunk_delay=10) as upstream:
        path = tmp_path / "siraya.yaml"
        path.write_text(
            f"""
server: {{host: 127.0.0.1, http_port: 0, grpc_port: 0, data_dir: {tmp_path / "data"}}}
providers: {{fake: {{type: openai, base_url: '{upstream.base_url}', api_key: {UPSTREAM_KEY}}}}}
models: [{{id: gpt-test, provider: fake}}]
"""
        )
        running = await start_gateway(load_config(path, {}))
        _, secret = await running.gateway.keys.create(NewKey(name="stop"))
        body = {"model": "gpt-test", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
        async with httpx.AsyncClient(timeout=30) as client:
            stream = asyncio.ensure_future(
                client.post(
                    f"http://127.0.0.1:{running.http_port}/v1/chat/completions",
                    json=body,
                    headers={"Authorization": f"Bearer {secret}"},
                )
            )
            while upstream.active_streams == 0:
                assert not stream.done(), stream.result()
                await asyncio.sleep(0.01)
            # Without the bound, aiohttp waits up to 60 s for the handler.
            await asyncio.wait_for(running.stop(), 10)
            with pytest.raises(httpx.HTTPError):
                await asyncio.wait_for(stream, 10)
