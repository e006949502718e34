"""Request ids are the gateway's own: a client's header can neither poison nor merge ledger records.

Issue #20 defect 1: `X-Request-Id: bad\\xff` got a plain-text 500, stopped every later ledger flush
for every key, and a SIGTERM then lost the queued records. Defect 4: ten requests sharing one
`X-Request-Id` were charged ten times and left one ledger row. Both run against a real gateway
process, stopped by SIGTERM, with the ledger read from its database afterwards.
"""

from __future__ import annotations

import signal
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.process_harness import GatewayProcess, UpstreamLoop

CONFIG = """
server: {{host: 127.0.0.1, http_port: 0, grpc_port: 0, data_dir: {data_dir}}}
accounts: {{ledger_flush_interval: 30}}
providers:
  fake: {{type: openai, base_url: '{upstream}', api_key: '${{FAKE_UPSTREAM_KEY}}'}}
models:
  - id: gpt-priced
    provider: fake
    pricing: {{input_per_million: 1000, output_per_million: 2000}}
"""
BODY = {"model": "gpt-priced", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture(scope="module")
def upstreams() -> Iterator[UpstreamLoop]:
    loop = UpstreamLoop()
    yield loop
    loop.close()


@pytest.fixture
def gateway(tmp_path: Path, upstreams: UpstreamLoop) -> Iterator[GatewayProcess]:
    upstream = upstreams.start_upstream()
    process = GatewayProcess(tmp_path, CONFIG.format(data_dir=tmp_path / "data", upstream=upstream.base_url))
    yield process
    process.kill()


def ledger(data_dir: Path) -> tuple[list[tuple[str, int]], int]:
    """(request_id, cost_micros) of every ledger row, and the credit the keys were charged."""
    with sqlite3.connect(data_dir / "siraya.db") as db:
        rows = db.execute("SELECT request_id, cost_micros FROM usage_ledger ORDER BY created_at").fetchall()
        charged = db.execute("SELECT COALESCE(SUM(credit_used_micros), 0) FROM keys").fetchone()[0]
    return rows, charged


def test_bad_and_reused_client_ids_lose_no_record_across_a_sigterm(
    gateway: GatewayProcess, tmp_path: Path
) -> None:
    secret = gateway.cli("keys", "create", "--name", "ids", "--credit-limit", "100").strip().splitlines()[-1]
    gateway.start()
    auth = {"Authorization": f"Bearer {secret}"}
    url = f"{gateway.base_url}/v1/chat/completions"
    ours: list[str] = []
    with httpx.Client(timeout=30) as client:
        bad = client.post(url, json=BODY, headers=[*auth.items(), ("X-Request-Id", b"bad\xff")])
        assert bad.status_code == 200, bad.text
        assert bad.headers["x-request-id"].startswith("req_")
        assert "x-client-request-id" not in bad.headers
        ours.append(bad.headers["x-request-id"])

        models = client.get(
            f"{gateway.base_url}/v1/models", headers=[*auth.items(), ("X-Request-Id", b"\xff")]
        )
        assert models.status_code == 200, models.text

        utf8 = client.post(url, json=BODY, headers=[*auth.items(), ("X-Request-Id", "café".encode())])
        assert utf8.status_code == 200 and "x-client-request-id" not in utf8.headers
        ours.append(utf8.headers["x-request-id"])

        for _ in range(10):
            same = client.post(url, json=BODY, headers={**auth, "X-Request-Id": "same-id"})
            assert same.status_code == 200, same.text
            assert same.headers["x-client-request-id"] == "same-id"
            ours.append(same.headers["x-request-id"])
    assert len(set(ours)) == 12

    gateway.send(signal.SIGTERM)
    assert gateway.wait(60) == 0
    assert "Traceback" not in gateway.stderr()
    rows, charged = ledger(tmp_path / "data")
    assert sorted(request_id for request_id, _ in rows) == sorted(ours)
    assert charged > 0 and sum(cost for _, cost in rows) == charged
