"""The usage and log API end to end: GET /v1/generations, /v1/usage, /v1/providers, /v1/audit and
their gRPC twins, with requests made through the OpenAI SDK against fake upstreams."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import openai
import pytest

from siraya.router.v1 import admin_pb2, admin_pb2_grpc
from tests.e2e.console_harness import ADMIN_KEY, ALPHA_FIRST, ConsoleHarness
from tests.fakes.openai_upstream import Fault

CHAT = "/v1/chat/completions"
MESSAGES = [{"role": "user", "content": "hello there"}]


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleHarness]:
    harness = ConsoleHarness(Path(tmp_path_factory.mktemp("usage-api"))).start()
    try:
        yield harness
    finally:
        harness.stop()


def _chat(gw: ConsoleHarness, secret: str, model: str, **extra: Any) -> str:
    """One completion through the SDK; the gateway's request id."""
    raw = gw.client(secret).chat.completions.with_raw_response.create(
        model=model, messages=MESSAGES, extra_body=extra or None
    )
    raw.parse()
    return raw.headers["x-request-id"]


def _failing_chat(gw: ConsoleHarness, secret: str, model: str) -> str:
    with pytest.raises(openai.APIStatusError) as failed:
        gw.client(secret).chat.completions.create(model=model, messages=MESSAGES)
    return failed.value.response.headers["x-request-id"]


def _ids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [record["id"] for record in response.json()["data"]]


def test_a_fallback_is_recorded_with_every_attempt(gw: ConsoleHarness) -> None:
    key_id, secret = gw.new_key("fallback")
    gw.alpha.inject(Fault(path=CHAT, status=500))
    request_id = _chat(gw, secret, "duo", **ALPHA_FIRST)

    listed = gw.get("/generations", key=key_id).json()["data"]
    assert [record["id"] for record in listed] == [request_id]
    record = listed[0]
    assert (record["status"], record["http_status"], record["provider_name"]) == ("success", 200, "beta")
    first, second = record["attempts"]
    assert (first["provider"], first["model"], first["upstream_model"]) == ("alpha", "duo", "gpt-4o-mini")
    assert (first["outcome"], first["error_code"], first["http_status"]) == ("error", "provider_error", 502)
    assert (second["provider"], second["outcome"], second["error_code"]) == ("beta", "ok", None)
    # A waterfall: the fallback started after the first attempt ended, within the request's time.
    assert 0 <= first["start_ms"] <= second["start_ms"]
    assert second["start_ms"] >= first["start_ms"] + first["latency_ms"] - 1
    assert second["start_ms"] + second["latency_ms"] <= record["latency"] + 1
    assert record["total_cost"] > 0

    # The key itself reads the same record, attempts included, by its id.
    own = gw.get("/generation", secret, id=request_id).json()["data"]
    assert own["attempts"] == record["attempts"]


def test_a_stream_records_its_served_attempt(gw: ConsoleHarness) -> None:
    key_id, secret = gw.new_key("streamer")
    stream = gw.client(secret).chat.completions.create(
        model="solo-beta", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text
    (record,) = gw.get("/generations", key=key_id).json()["data"]
    assert record["streamed"] is True
    (attempt,) = record["attempts"]
    assert (attempt["provider"], attempt["outcome"]) == ("beta", "ok")
    assert attempt["latency_ms"] > 0


def test_every_filter_of_the_list(gw: ConsoleHarness) -> None:
    key_id, secret = gw.new_key("filters")
    before = time.time()
    ok_alpha = _chat(gw, secret, "solo-alpha")
    ok_beta = _chat(gw, secret, "solo-beta")
    gw.alpha.inject(Fault(path=CHAT, status=500))
    failed = _failing_chat(gw, secret, "solo-alpha")
    newest_first = [failed, ok_beta, ok_alpha]

    assert _ids(gw.get("/generations", key=key_id)) == newest_first
    assert _ids(gw.get("/generations", key=key_id, model="solo-alpha")) == [failed, ok_alpha]
    assert _ids(gw.get("/generations", key=key_id, provider="beta")) == [ok_beta]
    assert _ids(gw.get("/generations", key=key_id, status="5xx")) == [failed]
    assert _ids(gw.get("/generations", key=key_id, status="502")) == [failed]
    assert _ids(gw.get("/generations", key=key_id, status="error")) == [failed]
    assert _ids(gw.get("/generations", key=key_id, status="success")) == [ok_beta, ok_alpha]
    assert _ids(gw.get("/generations", key=key_id, since=str(before))) == newest_first
    assert _ids(gw.get("/generations", key=key_id, since="10m")) == newest_first
    assert _ids(gw.get("/generations", key=key_id, until=str(before))) == []
    assert _ids(gw.get("/generations", key=key_id, min_cost="0.000001")) == [ok_beta, ok_alpha]
    assert _ids(gw.get("/generations", key=key_id, max_cost="0")) == [failed]
    failure = gw.get("/generations", key=key_id, status="5xx").json()["data"][0]
    assert (failure["error_code"], failure["attempts"][0]["error_code"]) == (
        "provider_error",
        "provider_error",
    )

    # Pages of one, walked by cursor, give the same list.
    seen: list[str] = []
    cursor = None
    while True:
        params = {"key": key_id, "limit": "1", **({"cursor": cursor} if cursor else {})}
        page = gw.get("/generations", **params).json()
        seen += [record["id"] for record in page["data"]]
        if not page["has_more"]:
            assert page["next_cursor"] is None
            break
        cursor = page["next_cursor"]
    assert seen == newest_first


def test_usage_is_grouped_and_bucketed(gw: ConsoleHarness) -> None:
    key_id, secret = gw.new_key("usage")
    for _ in range(3):
        _chat(gw, secret, "solo-alpha")
    _chat(gw, secret, "solo-beta")
    gw.alpha.inject(Fault(path=CHAT, status=500))
    _failing_chat(gw, secret, "solo-alpha")

    body = gw.get("/usage", key=key_id, group_by="model", since="1h").json()
    rows = {row["group"]: row for row in body["data"]}
    assert set(rows) == {"solo-alpha", "solo-beta"}
    alpha, beta = rows["solo-alpha"], rows["solo-beta"]
    assert (alpha["requests"], alpha["errors"], beta["requests"], beta["errors"]) == (4, 1, 1, 0)
    assert (
        alpha["prompt_tokens"] > 0
        and alpha["total_tokens"] == alpha["prompt_tokens"] + alpha["completion_tokens"]
    )
    assert alpha["cost"] > 0
    assert 0 < alpha["p50_latency_ms"] <= alpha["p95_latency_ms"]
    assert body["until"] - body["since"] == pytest.approx(3600, abs=5)

    providers = {
        row["group"]: row["requests"]
        for row in gw.get("/usage", key=key_id, group_by="provider").json()["data"]
    }
    assert providers == {"alpha": 3, "beta": 1, None: 1}
    (total,) = gw.get("/usage", key=key_id).json()["data"]
    assert (total["group"], total["bucket_start"], total["requests"]) == (None, None, 5)
    minutes = gw.get("/usage", key=key_id, bucket="minute", since="1h").json()["data"]
    assert sum(row["requests"] for row in minutes) == 5
    assert all(row["bucket_start"] % 60 == 0 for row in minutes)
    by_key = gw.get("/usage", group_by="key", since="1h").json()["data"]
    assert {row["group"]: row["requests"] for row in by_key}[key_id] == 5


def test_a_user_key_sees_only_its_own_records(gw: ConsoleHarness) -> None:
    mine, my_secret = gw.new_key("mine")
    theirs, their_secret = gw.new_key("theirs")
    my_request = _chat(gw, my_secret, "solo-beta")
    their_request = _chat(gw, their_secret, "solo-beta")

    assert _ids(gw.get("/generations", my_secret)) == [my_request]
    assert _ids(gw.get("/generations", my_secret, key=mine)) == [my_request]
    refused = gw.get("/generations", my_secret, key=theirs)
    assert refused.status_code == 403
    assert refused.json()["error"]["type"] == "permission_error"
    assert gw.get("/usage", my_secret, key=theirs).status_code == 403
    (own_total,) = gw.get("/usage", my_secret).json()["data"]
    assert own_total["requests"] == 1
    by_key = gw.get("/usage", my_secret, group_by="key").json()["data"]
    assert [row["group"] for row in by_key] == [mine]
    # Another key's request id is not found either.
    assert gw.get("/generation", my_secret, id=their_request).status_code == 404
    # The admin sees both; the audit log is the admin's alone.
    assert set(_ids(gw.get("/generations", since="10m"))) >= {my_request, their_request}
    assert gw.get("/audit", my_secret).status_code == 401
    assert gw.get("/generations", "sk-not-a-key").status_code == 401


def test_providers_show_breaker_state_and_observed_speed(gw: ConsoleHarness) -> None:
    _, secret = gw.new_key("providers")
    _chat(gw, secret, "solo-beta")
    gw.alpha.inject(Fault(path=CHAT, status=500))
    _failing_chat(gw, secret, "guarded")

    deployments = gw.get("/providers").json()["data"]
    by_model = {(d["model"], d["provider"]): d for d in deployments}
    beta = by_model[("solo-beta", "beta")]
    assert beta["breaker_state"] == "closed"
    assert beta["latency_ms"] is not None and beta["latency_ms"] > 0
    assert beta["attempts"] >= 1 and beta["deployment"] == "beta/gpt-4o-mini"
    guarded = by_model[("guarded", "alpha")]
    assert guarded["breaker_state"] == "open"
    assert (guarded["failures"], guarded["error_rate"]) == (1, 1.0)  # its one attempt failed
    # A user key restricted to one model sees only that model's deployments.
    _, narrow = gw.new_key("narrow", allowed_models=("solo-beta",))
    assert {d["model"] for d in gw.get("/providers", narrow).json()["data"]} == {"solo-beta"}


def test_key_administration_is_audited(gw: ConsoleHarness) -> None:
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    created = httpx.post(
        gw.base_url + "/keys", json={"name": "audited", "rpm_limit": 5}, headers=admin
    ).json()
    key_id = created["id"]
    httpx.patch(gw.base_url + f"/keys/{key_id}", json={"credit_limit": 2.5}, headers=admin).raise_for_status()
    httpx.post(gw.base_url + f"/keys/{key_id}/rotate", headers=admin).raise_for_status()
    httpx.delete(gw.base_url + f"/keys/{key_id}", headers=admin).raise_for_status()

    events = [event for event in gw.get("/audit").json()["data"] if event["target"] == key_id]
    assert [event["action"] for event in events] == ["key.revoke", "key.rotate", "key.update", "key.create"]
    for event in events:
        assert (event["actor"], event["source"], event["via"]) == ("admin", "127.0.0.1", "rest")
        assert time.time() - event["at"] < 60
    assert events[2]["detail"] == {"credit_limit": 2.5}
    assert events[3]["detail"]["rpm_limit"] == 5 and events[3]["detail"]["name"] == "audited"
    assert created["secret"] not in gw.get("/audit").text


@pytest.mark.parametrize(
    ("path", "params", "param"),
    [
        ("/generations", {"status": "weird"}, "status"),
        ("/generations", {"since": "yesterday"}, "since"),
        ("/generations", {"limit": "1000"}, "limit"),
        ("/generations", {"cursor": "not-a-cursor"}, "cursor"),
        ("/generations", {"modle": "duo"}, "modle"),
        ("/generations", {"min_cost": "-1"}, "min_cost"),
        ("/usage", {"group_by": "colour"}, "group_by"),
        ("/usage", {"bucket": "minute", "since": "30d"}, "bucket"),
        ("/usage", {"since": "1h", "until": "2h"}, "since"),
    ],
)
def test_bad_queries_are_refused_by_name(
    gw: ConsoleHarness, path: str, params: dict[str, str], param: str
) -> None:
    response = gw.get(path, **params)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param


async def test_the_grpc_twins_answer_and_audit_their_caller(gw: ConsoleHarness) -> None:
    key_id, secret = gw.new_key("grpc")
    request_id = _chat(gw, secret, "solo-beta")
    admin = [("authorization", f"Bearer {ADMIN_KEY}")]
    async with grpc.aio.insecure_channel(gw.grpc_target) as channel:
        usage = admin_pb2_grpc.UsageServiceStub(channel)
        listed = await usage.ListGenerations(
            admin_pb2.ListGenerationsRequest(filter=admin_pb2.GenerationFilter(key_id=key_id)), metadata=admin
        )
        assert [generation.id for generation in listed.generations] == [request_id]
        assert listed.generations[0].attempts[0].provider == "beta"
        totals = await usage.GetUsage(
            admin_pb2.GetUsageRequest(
                filter=admin_pb2.GenerationFilter(key_id=key_id), group_by=admin_pb2.USAGE_GROUP_PROVIDER
            ),
            metadata=[("authorization", f"Bearer {secret}")],
        )
        assert [(row.group, row.requests) for row in totals.rows] == [("beta", 1)]
        keys = admin_pb2_grpc.KeysServiceStub(channel)
        await keys.RevokeKey(admin_pb2.RevokeKeyRequest(id=key_id), metadata=admin)
        events = await usage.ListAuditEvents(admin_pb2.ListAuditEventsRequest(limit=5), metadata=admin)
    revoke = next(event for event in events.events if event.target == key_id)
    assert (revoke.action, revoke.via) == ("key.revoke", "grpc")
    assert "127.0.0.1" in revoke.source
