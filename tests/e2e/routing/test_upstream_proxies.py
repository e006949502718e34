"""Providers reached through an HTTP proxy on loopback, proved by what the proxy relayed.

- In process: a provider's own `proxy:` (with credentials) reaches a plain http upstream in
  absolute form, unary and streamed; a proxy that refuses the credentials, or is not there, is a
  502 that says so, and neither the client nor the log ever sees the proxy's password.
- A gateway process: the environment's HTTPS_PROXY tunnels (CONNECT) to an https upstream whose
  certificate the process trusts through SSL_CERT_FILE, TLS end to end; NO_PROXY sends a plain
  upstream direct; Debian's tinyproxy, when installed, carries a provider's calls both ways (a
  CONNECT tunnel and absolute form).
"""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from server.observability.logs import configure_logging, unconfigure_logging
from tests.e2e.loop_gateway import LoopGateway
from tests.e2e.process_harness import UPSTREAM_KEY as PROCESS_UPSTREAM_KEY
from tests.e2e.process_harness import GatewayProcess, UpstreamLoop
from tests.fakes.http_proxy import LoopbackProxy
from tests.fakes.openai_upstream import FakeOpenAIUpstream
from tests.fakes.tls import LoopbackCertificates, make_certificates

UPSTREAM_KEY = "sk-upstream-proxied-0123456789abcdef"
PASSWORD = "pr0xy-s3cret-pass"
WRONG_PASSWORD = "not-the-pr0xy-pass"
BASIC = "Basic YWxpY2U6cHIweHktczNjcmV0LXBhc3M="  # alice:pr0xy-s3cret-pass
PROXY_VARIABLES = ("http_proxy", "https_proxy", "no_proxy", "all_proxy")

CONFIG = """
server:
  host: 127.0.0.1
  http_port: 0
  grpc_port: 0
  data_dir: {data_dir}
providers:
  proxied: {{base_url: "{fake}", api_key: "{key}", proxy: "http://alice:{password}@127.0.0.1:{proxy_port}"}}
  wrong_password:
    base_url: "{fake}"
    api_key: "{key}"
    proxy: "http://alice:{wrong}@127.0.0.1:{proxy_port}"
  proxy_down:
    base_url: "{fake}"
    api_key: "{key}"
    proxy: "http://alice:{password}@127.0.0.1:{closed_port}"
models:
  - {{id: m-proxied, provider: proxied, upstream_model: gpt-4o-mini}}
  - {{id: m-wrong-password, provider: wrong_password, upstream_model: gpt-4o-mini}}
  - {{id: m-proxy-down, provider: proxy_down, upstream_model: gpt-4o-mini}}
"""


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _assert_no_credentials(*texts: str) -> None:
    for text in texts:
        for secret in (PASSWORD, WRONG_PASSWORD, BASIC.split()[1], "alice"):
            assert secret not in text, f"{secret!r} leaked into: {text}"


# -- in process: a provider's own proxy: -------------------------------------------------------


class ProxiedHarness(LoopGateway):
    def __init__(self, tmp_dir: Path) -> None:
        self.fake = FakeOpenAIUpstream(api_key=UPSTREAM_KEY)
        self.proxy = LoopbackProxy(credentials=("alice", PASSWORD))
        super().__init__(tmp_dir, in_process=True, upstreams=(self.fake, self.proxy))

    async def _start(self) -> None:
        await self._start_upstreams()
        config = CONFIG.format(
            data_dir=self.tmp_dir / "data",
            fake=self.fake.base_url,
            key=UPSTREAM_KEY,
            password=PASSWORD,
            wrong=WRONG_PASSWORD,
            proxy_port=self.proxy.port,
            closed_port=_closed_port(),
        )
        await self._start_gateway(config, {}, "proxies")


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxiedHarness]:
    harness = ProxiedHarness(tmp_path_factory.mktemp("upstream_proxies")).start()
    yield harness
    harness.stop()


@pytest.fixture
def log() -> Iterator[io.StringIO]:
    # The scrubber is told no secret here: what the log holds is what the gateway wrote.
    stream = io.StringIO()
    root = logging.getLogger()
    level = root.level
    handler = configure_logging("info", "json", secrets=[], stream=stream)
    yield stream
    unconfigure_logging(handler)
    root.setLevel(level)


def test_a_providers_proxy_carries_its_calls_unary_and_streamed(gw: ProxiedHarness) -> None:
    gw.proxy.reset()
    gw.fake.requests.clear()
    client = openai.OpenAI(base_url=gw.base_url, api_key=gw.api_key, max_retries=0, timeout=20)
    messages: Any = [{"role": "user", "content": "through the proxy"}]
    completion = client.chat.completions.create(model="m-proxied", messages=messages)
    assert completion.choices[0].message.content
    chunks = list(client.chat.completions.create(model="m-proxied", messages=messages, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)

    url = gw.fake.base_url + "/chat/completions"
    assert gw.proxy.seen.forwarded == [url, url]
    assert gw.proxy.seen.authorizations == [BASIC, BASIC]
    assert gw.proxy.seen.bytes_down > 0
    # The upstream got both calls, with its own key, from the proxy.
    calls = gw.fake.requests_to("/v1/chat/completions")
    assert len(calls) == 2
    assert all(call.headers["authorization"] == f"Bearer {UPSTREAM_KEY}" for call in calls)
    assert [call.json["stream"] for call in calls] == [False, True]


@pytest.mark.parametrize(
    ("model", "what"),
    [
        ("m-wrong-password", "the proxy asked for credentials, or refused the ones given (HTTP 407)"),
        ("m-proxy-down", "the proxy could not be connected to (ConnectionRefusedError)"),
    ],
)
def test_a_failing_proxy_is_a_502_that_says_so_and_never_shows_its_credentials(
    gw: ProxiedHarness, log: io.StringIO, model: str, what: str
) -> None:
    response = httpx.post(
        gw.base_url + "/chat/completions",
        json={"model": model, "messages": [{"role": "user", "content": "hi"}]},
        headers={"Authorization": f"Bearer {gw.api_key}"},
        timeout=30,
    )
    assert response.status_code == 502, response.text
    message = response.json()["error"]["message"]
    assert "could not be reached through its proxy" in message and what in message
    assert "127.0.0.1" not in message  # where the proxy is, is the log's to say
    lines = [json.loads(line) for line in log.getvalue().splitlines()]
    (attempt,) = [line for line in lines if line.get("logger") == "siraya.upstream"]
    assert " via proxy http://127.0.0.1:" in attempt["upstream_url"]
    _assert_no_credentials(response.text, log.getvalue())


# -- a gateway process: the environment's proxies -----------------------------------------------

PROCESS_CONFIG = """
server:
  host: 127.0.0.1
  http_port: 0
  grpc_port: 0
  data_dir: {data_dir}
providers:
  secure: {{base_url: "{secure}", api_key: "${{FAKE_UPSTREAM_KEY}}"}}
  plain: {{base_url: "{plain}", api_key: "${{FAKE_UPSTREAM_KEY}}"}}
  tiny_secure: {{base_url: "{secure}", api_key: "${{FAKE_UPSTREAM_KEY}}", proxy: "{tiny}"}}
  tiny_plain: {{base_url: "{plain_by_name}", api_key: "${{FAKE_UPSTREAM_KEY}}", proxy: "{tiny}"}}
models:
  - {{id: m-secure, provider: secure, upstream_model: gpt-4o-mini}}
  - {{id: m-plain, provider: plain, upstream_model: gpt-4o-mini}}
  - {{id: m-tiny-secure, provider: tiny_secure, upstream_model: gpt-4o-mini}}
  - {{id: m-tiny-plain, provider: tiny_plain, upstream_model: gpt-4o-mini}}
"""


class Tinyproxy:
    """Debian's tinyproxy on a free loopback port, logging every request it relays to a file."""

    def __init__(self, folder: Path) -> None:
        self.log = folder / "tinyproxy.log"
        self.port = _closed_port()
        self.config = folder / "tinyproxy.conf"
        self.config.write_text(
            f'Port {self.port}\nListen 127.0.0.1\nTimeout 60\nLogFile "{self.log}"\nLogLevel Info\n'
            "MaxClients 20\nDisableViaHeader Yes\n"
        )
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        binary = shutil.which("tinyproxy")
        assert binary is not None
        self.process = subprocess.Popen(
            [binary, "-d", "-c", str(self.config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        raise TimeoutError("tinyproxy did not start")

    def requests(self) -> list[str]:
        text = self.log.read_text() if self.log.exists() else ""
        return [line.split("): ", 1)[1] for line in text.splitlines() if "Request (file descriptor" in line]

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


class ProcessSetup:
    def __init__(self, tmp_path: Path) -> None:
        self.certificates: LoopbackCertificates = make_certificates(tmp_path / "tls")
        self.upstreams = UpstreamLoop()
        self.secure = FakeOpenAIUpstream(api_key=PROCESS_UPSTREAM_KEY)
        self.secure.tls = self.certificates.server_context()
        self.secure.host_name = "localhost"  # not in NO_PROXY: its calls take the proxy
        self.plain = FakeOpenAIUpstream(api_key=PROCESS_UPSTREAM_KEY)
        self.proxy = LoopbackProxy(credentials=("alice", PASSWORD))
        for server in (self.secure, self.plain, self.proxy):
            self.upstreams.run(server.start())
        self.tinyproxy = Tinyproxy(tmp_path) if shutil.which("tinyproxy") else None
        if self.tinyproxy is not None:
            self.tinyproxy.start()
        config = PROCESS_CONFIG.format(
            data_dir=tmp_path / "data",
            secure=self.secure.base_url,
            plain=self.plain.base_url,
            plain_by_name=self.plain.base_url.replace("127.0.0.1", "localhost"),
            tiny=self.tinyproxy.url if self.tinyproxy else "none",
        )
        self.gateway = GatewayProcess(tmp_path, config)
        for name in PROXY_VARIABLES:
            self.gateway.env.pop(name, None)
            self.gateway.env.pop(name.upper(), None)
        proxy = f"http://alice:{PASSWORD}@127.0.0.1:{self.proxy.port}"
        self.gateway.env.update(
            HTTPS_PROXY=proxy,
            HTTP_PROXY=proxy,
            NO_PROXY="127.0.0.1,::1",
            SSL_CERT_FILE=str(self.certificates.ca),
        )
        self.key = self.gateway.create_key()
        self.gateway.start()

    def chat(self, model: str) -> httpx.Response:
        return httpx.post(
            self.gateway.base_url + "/v1/chat/completions",
            json={"model": model, "messages": [{"role": "user", "content": "hello"}]},
            headers={"Authorization": f"Bearer {self.key}"},
            timeout=30,
        )

    def close(self) -> None:
        self.gateway.kill()
        if self.tinyproxy is not None:
            self.tinyproxy.stop()
        for server in (self.secure, self.plain, self.proxy):
            self.upstreams.run(server.stop())
        self.upstreams.close()


@pytest.fixture(scope="module")
def process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProcessSetup]:
    setup = ProcessSetup(tmp_path_factory.mktemp("proxied_process"))
    try:
        yield setup
    finally:
        setup.close()


def test_the_environments_https_proxy_tunnels_to_an_https_upstream(process: ProcessSetup) -> None:
    process.proxy.reset()
    process.secure.requests.clear()
    for _ in range(2):
        response = process.chat("m-secure")
        assert response.status_code == 200, response.text
    # CONNECT to the upstream's name, with the credentials from HTTPS_PROXY; one tunnel, kept alive.
    assert process.proxy.seen.tunnels == [f"localhost:{process.secure.port}"]
    assert process.proxy.seen.authorizations == [BASIC]
    assert len(process.secure.requests_to("/v1/chat/completions")) == 2
    _assert_no_credentials(process.gateway.stdout(), process.gateway.stderr())


def test_no_proxy_hosts_are_called_direct(process: ProcessSetup) -> None:
    process.proxy.reset()
    process.plain.requests.clear()
    response = process.chat("m-plain")
    assert response.status_code == 200, response.text
    assert process.proxy.calls == 0  # HTTP_PROXY is set, but 127.0.0.1 is in NO_PROXY
    assert len(process.plain.requests_to("/v1/chat/completions")) == 1


def test_tinyproxy_carries_a_providers_calls_both_ways(process: ProcessSetup) -> None:
    if process.tinyproxy is None:
        pytest.skip("tinyproxy is not installed (apt-get install tinyproxy)")
    process.proxy.reset()
    before = len(process.tinyproxy.requests())
    for model in ("m-tiny-secure", "m-tiny-plain"):
        response = process.chat(model)
        assert response.status_code == 200, response.text
    relayed = process.tinyproxy.requests()[before:]
    assert f"CONNECT localhost:{process.secure.port} HTTP/1.1" in relayed
    assert f"POST http://localhost:{process.plain.port}/v1/chat/completions HTTP/1.1" in relayed
    assert process.proxy.calls == 0  # a provider's own proxy: replaces the environment's
    assert os.path.getsize(process.tinyproxy.log) > 0
