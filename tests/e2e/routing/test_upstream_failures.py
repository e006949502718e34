"""Upstream failures a client can act on: refused, DNS, TLS and timeouts told apart, the upstream's
own status and message (scrubbed), the call tried, and one WARNING log line per failed attempt.

Each provider below is broken in one way a newcomer's config can be, against real loopback servers.
"""

from __future__ import annotations

import io
import json
import logging
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from server.observability.logs import configure_logging, unconfigure_logging
from tests.e2e.loop_gateway import LoopGateway
from tests.fakes.openai_upstream import FakeOpenAIUpstream, Fault

UPSTREAM_KEY = "sk-upstream-failures-0123456789abcdef"
WRONG_KEY = "sk-wrong-gateway-key-9876543210fedcba"

CONFIG = """
server:
  host: 127.0.0.1
  http_port: 0
  grpc_port: 0
  data_dir: {data_dir}
providers:
  refused: {{base_url: "http://127.0.0.1:{closed_port}/v1", api_key: "{key}", connect_timeout: 5}}
  nowhere: {{base_url: "http://siraya-upstream.invalid/v1", api_key: "{key}", connect_timeout: 5}}
  tls_to_plain: {{base_url: "https://127.0.0.1:{fake_port}/v1", api_key: "{key}", connect_timeout: 5}}
  slow: {{base_url: "{fake}", api_key: "{key}", read_timeout: 0.3}}
  unanswered: {{base_url: "http://127.0.0.1:{full_port}/v1", api_key: "{key}", connect_timeout: 0.3}}
  wrong_key: {{base_url: "{fake}", api_key: "{wrong_key}"}}
  no_version: {{base_url: "http://127.0.0.1:{fake_port}", api_key: "{key}"}}
  good: {{base_url: "{fake}", api_key: "{key}"}}
models:
  - {{id: m-refused, provider: refused, upstream_model: gpt-4o-mini}}
  - {{id: m-nowhere, provider: nowhere, upstream_model: gpt-4o-mini}}
  - {{id: m-tls, provider: tls_to_plain, upstream_model: gpt-4o-mini}}
  - {{id: m-slow, provider: slow, upstream_model: gpt-4o-mini}}
  - {{id: m-unanswered, provider: unanswered, upstream_model: gpt-4o-mini}}
  - {{id: m-wrong-key, provider: wrong_key, upstream_model: gpt-4o-mini}}
  - {{id: m-no-version, provider: no_version, upstream_model: gpt-4o-mini}}
  - {{id: m-good, provider: good, upstream_model: gpt-4o-mini}}
"""


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class FullBacklog:
    """A port whose listen queue is full: the kernel drops further SYNs, so a connect just waits."""

    def __init__(self) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(0)
        self.port = int(self.listener.getsockname()[1])
        self.fillers: list[socket.socket] = []
        for _ in range(3):
            filler = socket.socket()
            filler.setblocking(False)
            try:
                filler.connect(("127.0.0.1", self.port))
            except BlockingIOError:
                pass
            self.fillers.append(filler)

    def close(self) -> None:
        for sock in (*self.fillers, self.listener):
            sock.close()


class FailuresHarness(LoopGateway):
    def __init__(self, tmp_dir: Path) -> None:
        self.fake = FakeOpenAIUpstream(api_key=UPSTREAM_KEY)
        self.full = FullBacklog()
        super().__init__(tmp_dir, in_process=True, upstreams=(self.fake,))

    def stop(self) -> None:
        super().stop()
        self.full.close()

    async def _start(self) -> None:
        await self._start_upstreams()
        config = CONFIG.format(
            data_dir=self.tmp_dir / "data",
            closed_port=_closed_port(),
            fake=self.fake.base_url,
            fake_port=self.fake.port,
            full_port=self.full.port,
            key=UPSTREAM_KEY,
            wrong_key=WRONG_KEY,
        )
        await self._start_gateway(config, {}, "failures")


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FailuresHarness]:
    harness = FailuresHarness(tmp_path_factory.mktemp("upstream_failures")).start()
    yield harness
    harness.stop()


@pytest.fixture
def log() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    root = logging.getLogger()
    level = root.level
    handler = configure_logging("info", "json", secrets=[UPSTREAM_KEY, WRONG_KEY], stream=stream)
    yield stream
    unconfigure_logging(handler)
    root.setLevel(level)


def chat(gw: FailuresHarness, model: str) -> httpx.Response:
    return httpx.post(
        gw.base_url + "/chat/completions",
        json={"model": model, "messages": [{"role": "user", "content": "hi"}]},
        headers={"Authorization": f"Bearer {gw.api_key}"},
        timeout=30,
    )


def error_of(response: httpx.Response) -> dict[str, Any]:
    error: dict[str, Any] = response.json()["error"]
    return error


def attempt_lines(log: io.StringIO, provider: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in log.getvalue().splitlines()]
    return [
        line for line in lines if line.get("logger") == "siraya.upstream" and line.get("provider") == provider
    ]


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        for secret in (UPSTREAM_KEY, WRONG_KEY, WRONG_KEY[-4:] + ".", "sk-wr"):
            assert secret not in text, f"{secret!r} leaked into: {text}"


def check(
    gw: FailuresHarness, log: io.StringIO, model: str, provider: str, status: int, *phrases: str
) -> dict[str, Any]:
    """The client's error holds every phrase and the call tried; the log has one WARNING for it."""
    response = chat(gw, model)
    assert response.status_code == status, response.text
    message = error_of(response)["message"]
    for phrase in (
        *phrases,
        "[POST /v1/chat/completions]" if provider != "no_version" else "[POST /chat/completions]",
    ):
        assert phrase in message, f"{phrase!r} not in {message!r}"
    assert "127.0.0.1" not in message and ".invalid" not in message  # the host is the log's to name
    (line,) = attempt_lines(log, provider)
    assert line["level"] == "warning"
    assert (line["model"], line["upstream_model"], line["attempt"]) == (model, "gpt-4o-mini", 1)
    assert line["request_id"] == response.headers["X-Request-Id"]
    assert line["upstream_url"].startswith("POST http")
    for phrase in phrases:
        assert phrase in line["msg"]
    assert_no_secret(response.text, log.getvalue())
    return line


def test_a_refused_port_says_nothing_listens(gw: FailuresHarness, log: io.StringIO) -> None:
    line = check(gw, log, "m-refused", "refused", 502, "refused the connection", "nothing listens")
    assert line["upstream_url"].startswith("POST http://127.0.0.1:")


def test_an_unknown_host_says_its_name_does_not_resolve(gw: FailuresHarness, log: io.StringIO) -> None:
    line = check(gw, log, "m-nowhere", "nowhere", 502, "host name does not resolve", "DNS")
    assert line["upstream_url"] == "POST http://siraya-upstream.invalid/v1/chat/completions"


def test_tls_to_a_plain_http_port_says_the_handshake_failed(gw: FailuresHarness, log: io.StringIO) -> None:
    check(gw, log, "m-tls", "tls_to_plain", 502, "TLS handshake", "https")


def test_a_slow_upstream_is_a_read_timeout(gw: FailuresHarness, log: io.StringIO) -> None:
    gw.fake.inject(Fault(path="/v1/chat/completions", hang=3))
    check(gw, log, "m-slow", "slow", 408, "did not answer within 0.3s", "read timeout")


def test_a_connect_that_never_completes_is_a_connect_timeout(gw: FailuresHarness, log: io.StringIO) -> None:
    check(
        gw, log, "m-unanswered", "unanswered", 408, "could not be connected to within 0.3s", "connect timeout"
    )


def test_an_upstream_401_keeps_its_status_and_message_without_the_key(
    gw: FailuresHarness, log: io.StringIO
) -> None:
    # The fake answers as OpenAI does: "Incorrect API key provided: sk-wr****...dcba. You can find ..."
    check(
        gw,
        log,
        "m-wrong-key",
        "wrong_key",
        502,
        "rejected the gateway's credentials (HTTP 401)",
        "Incorrect API key provided",
    )


def test_an_upstream_message_echoing_the_whole_key_is_scrubbed(gw: FailuresHarness, log: io.StringIO) -> None:
    gw.fake.inject(
        Fault(
            path="/v1/chat/completions",
            status=403,
            error_type="invalid_request_error",
            message=f"Key {UPSTREAM_KEY} may not use this project.",
        )
    )
    check(gw, log, "m-good", "good", 502, "(HTTP 403)", "may not use this project")


def test_a_base_url_without_v1_names_the_path_tried(gw: FailuresHarness, log: io.StringIO) -> None:
    check(gw, log, "m-no-version", "no_version", 502, "(HTTP 404)", "base_url", "/v1")


def test_a_successful_request_logs_no_attempt_warning(gw: FailuresHarness, log: io.StringIO) -> None:
    assert chat(gw, "m-good").status_code == 200
    assert attempt_lines(log, "good") == []
