"""The moderation upstream is called through the transport seam: through its `proxy:` (or the
environment's), bounded by its timeout, and a proxy or an upstream that fails is the upstream
being unavailable (the policy's fail-open or fail-closed decides)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest

from server.accounts.moderation import Moderator
from server.config import ModerationConfig, ModerationUpstreamConfig
from server.errors import PermissionDenied
from siraya.router.v1 import chat_pb2
from tests.e2e.accounts_harness import FakeModerations
from tests.fakes.http_proxy import LoopbackProxy

pytestmark = pytest.mark.timeout(20)


def chat(text: str) -> chat_pb2.ChatCompletionParams:
    params = chat_pb2.ChatCompletionParams(model="m")
    params.messages.add(role=chat_pb2.CHAT_ROLE_USER, text=text)
    return params


def policy(
    base_url: str, proxy: str | None, *, fail_open: bool = False, timeout: float = 5.0
) -> ModerationConfig:
    upstream = ModerationUpstreamConfig(
        base_url=base_url, api_key="sk-moderation-key", proxy=proxy, timeout=timeout
    )
    return ModerationConfig(name="mod", upstream=upstream, fail_open=fail_open)


@pytest.fixture
async def moderations() -> AsyncIterator[FakeModerations]:
    fake = FakeModerations()
    await fake.start()
    yield fake
    await fake.stop()


async def test_the_verdict_call_goes_through_the_upstreams_proxy(moderations: FakeModerations) -> None:
    async with LoopbackProxy(credentials=("mod", "pass-word")) as proxy:
        moderator = Moderator(
            [policy(moderations.base_url, f"http://mod:pass-word@127.0.0.1:{proxy.port}")], {}
        )
        try:
            await moderator.check("key", "m", chat("a kind word"))
            with pytest.raises(PermissionDenied) as raised:
                await moderator.check("key", "m", chat("something forbidden"))
        finally:
            await moderator.close()
    assert raised.value.code == "content_flagged" and "harassment" in raised.value.message
    assert proxy.seen.forwarded == [moderations.base_url + "/moderations"] * 2
    assert moderations.calls == 2


async def test_the_environments_proxy_applies_unless_no_proxy_says_otherwise(
    moderations: FakeModerations,
) -> None:
    async with LoopbackProxy() as proxy:
        environ = {"HTTP_PROXY": proxy.url}
        proxied = Moderator([policy(moderations.base_url, None)], environ)
        direct = Moderator([policy(moderations.base_url, None)], {**environ, "NO_PROXY": "127.0.0.1"})
        try:
            await proxied.check("key", "m", chat("hello"))
            assert proxy.calls == 1
            await direct.check("key", "m", chat("hello"))
            assert proxy.calls == 1
        finally:
            await proxied.close()
            await direct.close()
    assert moderations.calls == 2


async def test_a_proxy_that_is_not_there_leaves_the_policy_to_decide(moderations: FakeModerations) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    closed = Moderator([policy(moderations.base_url, f"http://127.0.0.1:{port}")], {})
    open_ = Moderator([policy(moderations.base_url, f"http://127.0.0.1:{port}", fail_open=True)], {})
    try:
        with pytest.raises(PermissionDenied) as raised:
            await closed.check("key", "m", chat("hello"))
        assert "could not be moderated" in raised.value.message
        await open_.check("key", "m", chat("hello"))  # admitted
    finally:
        await closed.close()
        await open_.close()
    assert moderations.calls == 0


async def test_a_silent_upstream_is_cut_at_its_timeout() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    moderator = Moderator([policy(f"http://127.0.0.1:{port}/v1", None, timeout=0.2)], {})
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        with pytest.raises(PermissionDenied):
            await moderator.check("key", "m", chat("hello"))
    finally:
        await moderator.close()
        server.close()
    assert loop.time() - started < 2
