"""`siraya-router usage` and `siraya-router logs` against the store a running gateway writes."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from server.__main__ import main
from tests.e2e.console_harness import ALPHA_FIRST, ConsoleHarness
from tests.fakes.openai_upstream import Fault

CHAT = "/v1/chat/completions"


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleHarness]:
    harness = ConsoleHarness(Path(tmp_path_factory.mktemp("cli-usage"))).start()
    try:
        yield harness
    finally:
        harness.stop()


def _cli(gw: ConsoleHarness, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["--config", str(gw.tmp_dir / "siraya.yaml"), *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _json(gw: ConsoleHarness, capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    code, out, err = _cli(gw, capsys, *args, "--json")
    assert code == 0, err
    body: dict[str, Any] = json.loads(out)
    return body


def _written(gw: ConsoleHarness, capsys: pytest.CaptureFixture[str], key_id: str, count: int) -> None:
    """Wait for the gateway's ledger writer to put `count` records of the key in the file."""
    deadline = time.monotonic() + 10
    while len(_json(gw, capsys, "logs", "--key", key_id)["data"]) < count:
        assert time.monotonic() < deadline, "the ledger never reached the store"
        time.sleep(0.05)


def _chat(gw: ConsoleHarness, secret: str, model: str, **extra: Any) -> str:
    raw = gw.client(secret).chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": "hi"}], extra_body=extra or None
    )
    raw.parse()
    return raw.headers["x-request-id"]


def test_logs_lists_a_keys_failures_with_their_attempts(
    gw: ConsoleHarness, capsys: pytest.CaptureFixture[str]
) -> None:
    key_id, secret = gw.new_key("cli-logs")
    ok = _chat(gw, secret, "solo-beta")
    gw.alpha.inject(Fault(path=CHAT, status=500))
    with pytest.raises(openai.APIStatusError) as failed:
        gw.client(secret).chat.completions.create(
            model="solo-alpha", messages=[{"role": "user", "content": "x"}]
        )
    failed_id = failed.value.response.headers["x-request-id"]
    gw.alpha.inject(Fault(path=CHAT, status=500))
    fell_back = _chat(gw, secret, "duo", **ALPHA_FIRST)
    _written(gw, capsys, key_id, 3)

    body = _json(gw, capsys, "logs", "--key", key_id, "--status", "5xx")
    assert [record["id"] for record in body["data"]] == [failed_id]
    assert body["data"][0]["attempts"][0]["error_code"] == "provider_error"
    # The same record, the same shape as GET /v1/generations answers.
    rest = gw.get("/generations", key=key_id, status="5xx").json()["data"][0]
    assert body["data"][0] == rest

    every = _json(gw, capsys, "logs", "--key", key_id, "--since", "1h")
    assert [record["id"] for record in every["data"]] == [fell_back, failed_id, ok]
    paged = _json(gw, capsys, "logs", "--key", key_id, "--limit", "2")
    assert paged["has_more"] is True
    rest_page = _json(gw, capsys, "logs", "--key", key_id, "--limit", "2", "--cursor", paged["next_cursor"])
    assert [record["id"] for record in rest_page["data"]] == [ok]

    code, table, _ = _cli(gw, capsys, "logs", "--key", key_id)
    assert code == 0
    assert fell_back in table and "alpha provider_error" in table and "beta ok" in table
    assert "502 provider_error" in table


def test_usage_by_model_as_a_table_and_as_json(
    gw: ConsoleHarness, capsys: pytest.CaptureFixture[str]
) -> None:
    key_id, secret = gw.new_key("cli-usage")
    for _ in range(2):
        _chat(gw, secret, "solo-beta")
    _chat(gw, secret, "duo")
    _written(gw, capsys, key_id, 3)

    body = _json(gw, capsys, "usage", "--by", "model", "--since", "24h", "--key", key_id)
    rows = {row["group"]: row for row in body["data"]}
    assert (rows["solo-beta"]["requests"], rows["duo"]["requests"]) == (2, 1)
    assert rows["solo-beta"]["cost"] > 0 and rows["duo"]["p95_latency_ms"] > 0
    # Nothing failed or was hedged: the operator paid the providers what the key was charged.
    assert rows["solo-beta"]["upstream_cost"] == rows["solo-beta"]["cost"]
    assert body["until"] - body["since"] == pytest.approx(86400, abs=5)
    rest = gw.get("/usage", key=key_id, group_by="model", since="24h").json()["data"]
    assert [(row["group"], row["requests"], row["cost"], row["upstream_cost"]) for row in rest] == [
        (row["group"], row["requests"], row["cost"], row["upstream_cost"]) for row in body["data"]
    ]
    hourly = _json(gw, capsys, "usage", "--bucket", "hour", "--key", key_id)
    assert sum(row["requests"] for row in hourly["data"]) == 3
    assert all(row["bucket_start"] % 3600 == 0 for row in hourly["data"])

    code, table, _ = _cli(gw, capsys, "usage", "--by", "model", "--since", "24h", "--key", key_id)
    assert code == 0 and "solo-beta" in table and "Requests" in table and "Upstream cost" in table


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("logs", "--status", "bad"), "--status"),
        (("logs", "--since", "yesterday"), "--since"),
        (("logs", "--limit", "0"), "--limit"),
        (("logs", "--cursor", "nope"), "--cursor"),
        (("usage", "--bucket", "minute", "--since", "30d"), "--bucket"),
    ],
)
def test_a_bad_option_is_said_in_one_line(
    gw: ConsoleHarness, capsys: pytest.CaptureFixture[str], args: tuple[str, ...], says: str
) -> None:
    code, out, err = _cli(gw, capsys, *args)
    assert code == 2 and out == ""
    assert err.startswith(f"siraya-router {args[0]}: ") and says in err and err.count("\n") == 1
