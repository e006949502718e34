"""Slow and greedy clients are bounded (issue #20, defect 5).

A thousand slowloris connections (one header byte at a time) are closed with a 408 once the header
deadline passes, while normal requests keep being served; a body that stops arriving gets a 408;
connections past the per-process limit get a 503; requests past a key's in-flight limit get a 429.
Every assertion is on counts and deadlines, never on latency figures.
"""

from __future__ import annotations

import asyncio
import re
import resource
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from server.accounts.keys import NewKey
from tests.e2e.harness import CONFIG_TEMPLATE, UPSTREAM_KEY, GatewayHarness, _unused_port
from tests.e2e.raw_http import assert_anthropic_error, assert_openai_error, exchange, request_bytes
from tests.fakes.openai_upstream import Fault

SLOW_CLIENTS = 1000
HEADER_TIMEOUT = 3.0
BODY_TIMEOUT = 2.0
# Time a connection may wait in the listen backlog before the gateway accepts it and starts its clock,
# plus timer slack on a loaded two-core machine. Small against the hour aiohttp allows by default.
GRACE = 4.0
IN_FLIGHT_LIMIT = 2
CHAT = {"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]}


class EdgeHarness(GatewayHarness):
    """The e2e gateway with extra `server:` settings."""

    def __init__(self, tmp_dir: Path, server_settings: dict[str, object]) -> None:
        super().__init__(tmp_dir, in_process=True)
        self.server_settings = server_settings

    async def _start(self) -> None:
        await self._start_upstreams()
        extra = "".join(f"  {name}: {value}\n" for name, value in self.server_settings.items())
        config = CONFIG_TEMPLATE.replace("  max_body_bytes: 65536\n", "  max_body_bytes: 65536\n" + extra)
        config = config.format(
            data_dir=self.tmp_dir / "data",
            native_url=self.native.base_url,
            chat_only_url=self.chat_only.base_url,
            dead_port=_unused_port(),
        )
        await self._start_gateway(config, {"FAKE_UPSTREAM_KEY": UPSTREAM_KEY}, "tests")
        assert self.running is not None
        _, self.other_key = await self.running.gateway.keys.create(NewKey(name="someone-else"))


def _enough_files(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        return
    if hard != resource.RLIM_INFINITY and hard < needed:
        pytest.skip(f"the open-file limit ({hard}) is below the {needed} this test needs")
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EdgeHarness]:
    # Both ends of every slow connection live in this process.
    _enough_files(2 * SLOW_CLIENTS + 600)
    settings = {
        "header_timeout": HEADER_TIMEOUT,
        "body_timeout": BODY_TIMEOUT,
        "max_connections": 4 * SLOW_CLIENTS,
        "max_in_flight_per_key": IN_FLIGHT_LIMIT,
    }
    running = EdgeHarness(tmp_path_factory.mktemp("edge"), settings).start()
    yield running
    running.stop()


def _metric(text: str, name: str, labels: str = "") -> float:
    pattern = (
        re.escape(name) + (r"\{" + re.escape(labels) + r"\}" if labels else r"(?:\{\})?") + r" (?P<value>\S+)"
    )
    found = re.search(r"^" + pattern + "$", text, re.MULTILINE)
    return float(found.group("value")) if found else 0.0


def _metrics(harness: GatewayHarness) -> str:
    return httpx.get(f"{harness.root_url}/metrics", timeout=10).text


class SlowClient:
    """One connection that sends its request head one byte at a time and never finishes it."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, connecting_at: float
    ) -> None:
        self.reader, self.writer = reader, writer
        # Before the connection was asked for: the gateway's clock for it cannot start earlier.
        self.connecting_at = connecting_at
        self.closed_at: float | None = None
        self.answer = b""

    async def watch(self) -> None:
        """Read until the server closes the connection."""
        try:
            while chunk := await self.reader.read(65536):
                self.answer += chunk
        except OSError:
            pass
        self.closed_at = time.monotonic()

    def trickle(self) -> None:
        if self.closed_at is None and not self.writer.is_closing():
            self.writer.write(b"a")


async def _open_slow_clients(port: int, count: int) -> list[SlowClient]:
    clients: list[SlowClient] = []
    for start in range(0, count, 100):  # in batches, within the listen backlog

        async def one() -> SlowClient:
            connecting_at = time.monotonic()
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            return SlowClient(reader, writer, connecting_at)

        clients += await asyncio.gather(*(one() for _ in range(min(100, count - start))))
    return clients


async def _slowloris_meanwhile(harness: EdgeHarness) -> tuple[list[SlowClient], int, float]:
    """Open the slow clients, serve normal requests while they are open, and wait for their end.

    Returns (the clients, normal requests answered 200, open connections /metrics counted)."""
    assert harness.running is not None
    clients = await _open_slow_clients(harness.running.http_port, SLOW_CLIENTS)
    watchers = [asyncio.create_task(client.watch()) for client in clients]

    async def trickle() -> None:
        while True:
            for client in clients:
                client.trickle()
            await asyncio.sleep(0.5)

    trickler = asyncio.create_task(trickle())
    served = 0
    open_connections = 0.0
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            metrics = await http.get(f"{harness.root_url}/metrics")
            open_connections = _metric(metrics.text, "siraya_http_connections")
            headers = {"Authorization": f"Bearer {harness.api_key}"}
            for _ in range(10):
                # A fresh connection each time: a new client arriving during the attack.
                response = await http.post(
                    f"{harness.base_url}/chat/completions",
                    json=CHAT,
                    headers={**headers, "Connection": "close"},
                )
                served += response.status_code == 200
        last_deadline = max(client.connecting_at for client in clients) + HEADER_TIMEOUT + GRACE
        await asyncio.wait(watchers, timeout=max(0.0, last_deadline - time.monotonic()))
    finally:
        trickler.cancel()
        for client in clients:
            client.writer.close()
        for watcher in watchers:
            watcher.cancel()
        await asyncio.gather(*watchers, trickler, return_exceptions=True)
    return clients, served, open_connections


def test_a_thousand_slowloris_connections_are_closed_at_the_header_deadline(edge: EdgeHarness) -> None:
    before = _metric(_metrics(edge), "siraya_http_timeouts_total", 'phase="headers"')
    clients, served, open_connections = asyncio.run(_slowloris_meanwhile(edge))

    assert served == 10, "normal requests kept being served during the attack"
    closed = [client for client in clients if client.closed_at is not None]
    in_time = [c for c in closed if c.closed_at - c.connecting_at <= HEADER_TIMEOUT + GRACE]  # type: ignore[operator]
    not_early = [c for c in closed if c.closed_at - c.connecting_at >= HEADER_TIMEOUT - 0.05]  # type: ignore[operator]
    assert len(in_time) == SLOW_CLIENTS, f"{len(closed)} closed, {len(in_time)} within the deadline"
    assert len(not_early) == SLOW_CLIENTS, "no slow connection was cut before its deadline"
    assert open_connections >= SLOW_CLIENTS, "the slow connections were all open at once"
    told = [c for c in clients if c.answer.startswith(b"HTTP/1.1 408 ")]
    assert len(told) == SLOW_CLIENTS, "each was told why: a 408"
    assert b'"type":"timeout_error"' in told[0].answer
    after = _metric(_metrics(edge), "siraya_http_timeouts_total", 'phase="headers"')
    assert after - before == SLOW_CLIENTS


def test_an_idle_kept_alive_connection_outlives_the_header_deadline(edge: EdgeHarness) -> None:
    """Idle time between requests is keep-alive's business; the header clock starts at a request's
    first byte."""
    assert edge.running is not None
    request = request_bytes("GET", "/v1/models", {"Authorization": f"Bearer {edge.api_key}"})
    with socket.create_connection(
        ("127.0.0.1", edge.running.http_port), timeout=HEADER_TIMEOUT + GRACE + 5
    ) as sock:
        reader = sock.makefile("rb")
        for _ in range(2):
            sock.sendall(request)
            assert reader.readline().startswith(b"HTTP/1.1 200 ")
            length = 0
            while (line := reader.readline()) != b"\r\n":
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            reader.read(length)
            time.sleep(HEADER_TIMEOUT * 1.5)
        sock.sendall(request[:10])
        started = time.monotonic()
        answer = reader.read()
        waited = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    assert HEADER_TIMEOUT - 0.5 <= waited <= HEADER_TIMEOUT + GRACE


def test_a_body_that_stops_arriving_gets_a_408(edge: EdgeHarness) -> None:
    assert edge.running is not None
    head = request_bytes(
        "POST",
        "/v1/chat/completions",
        {
            "Authorization": f"Bearer {edge.api_key}",
            "Content-Type": "application/json",
            "Content-Length": "1000",
        },
    )
    started = time.monotonic()
    response = exchange(edge.running.http_port, head + b'{"model": ', timeout=BODY_TIMEOUT + GRACE + 5)
    assert time.monotonic() - started <= BODY_TIMEOUT + GRACE
    assert_openai_error(response, 408, "timeout_error", "request_timeout")
    assert response.headers.get("connection", "").lower() == "close"


def test_slow_headers_on_messages_get_a_timeout_in_anthropics_shape(edge: EdgeHarness) -> None:
    """The header deadline's answer takes the shape of the door the request line names."""
    assert edge.running is not None
    head = b"POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "
    started = time.monotonic()
    response = exchange(edge.running.http_port, head, timeout=HEADER_TIMEOUT + GRACE + 5)
    assert time.monotonic() - started <= HEADER_TIMEOUT + GRACE
    assert_anthropic_error(response, 504, "timeout_error")


def test_a_messages_body_that_stops_arriving_gets_a_timeout_in_anthropics_shape(edge: EdgeHarness) -> None:
    assert edge.running is not None
    headers = {"x-api-key": edge.api_key, "Content-Type": "application/json", "Content-Length": "1000"}
    head = request_bytes("POST", "/v1/messages", headers)
    response = exchange(edge.running.http_port, head + b'{"model": ', timeout=BODY_TIMEOUT + GRACE + 5)
    assert_anthropic_error(response, 504, "timeout_error")
    assert response.headers.get("connection", "").lower() == "close"


def test_a_request_past_its_keys_in_flight_limit_gets_a_429(edge: EdgeHarness) -> None:
    edge.native.inject(Fault(path="/v1/chat/completions", hang=3.0, times=IN_FLIGHT_LIMIT))
    headers = {"Authorization": f"Bearer {edge.api_key}"}
    before = len(edge.native.requests_to("/v1/chat/completions"))
    refused_before = _metric(_metrics(edge), "siraya_key_in_flight_refusals_total")

    async def scenario() -> tuple[list[int], httpx.Response, int]:
        async with httpx.AsyncClient(timeout=20) as http:
            url = f"{edge.base_url}/chat/completions"
            held = [
                asyncio.create_task(http.post(url, json=CHAT, headers=headers))
                for _ in range(IN_FLIGHT_LIMIT)
            ]
            deadline = time.monotonic() + 10
            while len(edge.native.requests_to("/v1/chat/completions")) - before < IN_FLIGHT_LIMIT:
                assert time.monotonic() < deadline, "the held requests never reached the upstream"
                await asyncio.sleep(0.02)
            refused = await http.post(url, json=CHAT, headers=headers)
            other = await http.post(url, json=CHAT, headers={"Authorization": f"Bearer {edge.other_key}"})
            statuses = [(await task).status_code for task in held]
            return statuses, refused, other.status_code

    statuses, refused, other_status = asyncio.run(scenario())
    assert statuses == [200] * IN_FLIGHT_LIMIT
    assert refused.status_code == 429, refused.text
    error = refused.json()["error"]
    assert error["type"] == "rate_limit_error" and error["code"] == "rate_limit_exceeded"
    assert int(refused.headers["Retry-After"]) >= 1
    assert other_status == 200, "the limit is per key"
    assert _metric(_metrics(edge), "siraya_key_in_flight_refusals_total") - refused_before == 1
    # Finished requests, unary and streamed, give their place back.
    for stream in (False, True, False, True, True):
        response = httpx.post(
            f"{edge.base_url}/chat/completions", json={**CHAT, "stream": stream}, headers=headers, timeout=20
        )
        assert response.status_code == 200, response.text


def test_connections_past_the_process_limit_get_a_503(tmp_path: Path) -> None:
    limit = 8
    harness = EdgeHarness(tmp_path, {"max_connections": limit, "header_timeout": 30}).start()
    try:
        assert harness.running is not None
        port = harness.running.http_port
        refused_before = _metric(_metrics(harness), "siraya_http_connections_refused_total")
        held = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(limit)]
        try:
            time.sleep(0.3)
            with socket.create_connection(("127.0.0.1", port), timeout=10) as extra:
                answer = b""
                while chunk := extra.recv(65536):
                    answer += chunk
            assert answer.startswith(b"HTTP/1.1 503 "), answer[:200]
            assert b'"type":"service_unavailable_error"' in answer
        finally:
            for sock in held:
                sock.close()
        time.sleep(0.3)
        text = _metrics(harness)
        assert _metric(text, "siraya_http_connections_refused_total") - refused_before == 1
        response = httpx.post(
            f"{harness.base_url}/chat/completions",
            json=CHAT,
            headers={"Authorization": f"Bearer {harness.api_key}"},
            timeout=20,
        )
        assert response.status_code == 200, "closed connections give their place back"
    finally:
        harness.stop()
