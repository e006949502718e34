"""Operator spend (issue #18, item 5): each ledger record says what every upstream attempt cost at its
provider (`upstream_cost`), apart from what the key was charged (`total_cost`): a hedge that lost, a
failed call the provider still billed, a stream cut or cancelled. And an upstream's own `usage.cost`
is recorded beside ours, never charged; a difference over 1% is counted in a metric."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from server import tokens
from siraya.router.v1 import admin_pb2, admin_pb2_grpc
from tests.e2e.console_harness import ADMIN_KEY, ALPHA_FIRST, ConsoleHarness
from tests.fakes.openai_upstream import Fault, ScriptedReply
from tests.fakes.openai_upstream.replies import split_words

CHAT = "/v1/chat/completions"
PROMPT = "Tell me what the hedged request cost the operator, please."
MESSAGES: Any = [{"role": "user", "content": PROMPT}]
# Alpha is the cheap deployment and beta the dear one, so that each attempt's price shows.
HEDGED = """  - id: hedged
    hedging: {enabled: true, delay: 0.2}
    retry: {max_attempts: 1}
    deployments:
      - {provider: alpha, upstream_model: gpt-4o-mini, pricing: {input_per_million: 1, output_per_million: 2}}
      - {provider: beta, upstream_model: gpt-4o-mini, pricing: {input_per_million: 3, output_per_million: 5}}
"""


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleHarness]:
    harness = ConsoleHarness(Path(tmp_path_factory.mktemp("upstream-cost")), extra_models=HEDGED).start()
    try:
        yield harness
    finally:
        harness.stop()


def _micros(usd: float) -> int:
    return round(usd * 1_000_000)


def _record(gw: ConsoleHarness, key_id: str, request_id: str, status: str | None = None) -> dict[str, Any]:
    """The ledger record of a request, once it is written (a cancelled stream's comes a little later)."""
    deadline = time.monotonic() + 10
    while True:
        for record in gw.get("/generations", key=key_id).json()["data"]:
            if record["id"] == request_id and (status is None or record["status"] == status):
                return record  # type: ignore[no-any-return]
        assert time.monotonic() < deadline, f"no ledger record {request_id} ({status})"
        time.sleep(0.05)


def _counted_prompt_bounds() -> tuple[int, int]:
    counted = len(tokens.encoding("cl100k_base").encode_ordinary(PROMPT))
    return counted, counted + 16  # the text's own tokens plus the message framing allowance


def _assert_sums(record: dict[str, Any]) -> None:
    attempts = record["attempts"]
    assert _micros(record["upstream_cost"]) == sum(_micros(a["upstream_cost"]) for a in attempts)


@pytest.mark.parametrize("stream", [False, True])
def test_a_hedge_that_lost_is_the_operators_spend_not_the_keys(gw: ConsoleHarness, stream: bool) -> None:
    key_id, secret = gw.new_key("hedger", credit_limit=1.0)
    gw.alpha.inject(Fault(path=CHAT, hang=5))
    create = gw.client(secret).chat.completions.with_raw_response.create
    if stream:
        raw: Any = create(
            model="hedged",
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
            extra_body=ALPHA_FIRST,
        )
        usage = [chunk.usage for chunk in raw.parse() if chunk.usage is not None][-1]
    else:
        raw = create(model="hedged", messages=MESSAGES, extra_body=ALPHA_FIRST)
        usage = raw.parse().usage
    record = _record(gw, key_id, raw.headers["x-request-id"])

    loser, winner = record["attempts"]
    assert (loser["provider"], loser["outcome"], winner["provider"], winner["outcome"]) == (
        "alpha",
        "cancelled",
        "beta",
        "ok",
    )
    # The winner: the fake's reported usage at beta's price, and that is all the key pays.
    assert (winner["tokens_prompt"], winner["tokens_completion"]) == (
        usage.prompt_tokens,
        usage.completion_tokens,
    )
    assert winner["token_source"] == "reported"
    beta_cost = usage.prompt_tokens * 3 + usage.completion_tokens * 5
    assert _micros(winner["upstream_cost"]) == beta_cost == _micros(record["total_cost"])
    # The loser was cancelled before any answer: its prompt, counted, at alpha's price.
    low, high = _counted_prompt_bounds()
    assert loser["token_source"] == "counted" and low < loser["tokens_prompt"] <= high
    assert loser["tokens_completion"] == 0
    assert _micros(loser["upstream_cost"]) == loser["tokens_prompt"] * 1
    assert _micros(record["upstream_cost"]) == beta_cost + loser["tokens_prompt"]
    _assert_sums(record)
    key = gw.get("/key", secret).json()["data"]
    assert _micros(key["usage"]) == beta_cost


def test_a_failed_call_the_provider_billed_is_spend_the_key_does_not_pay(gw: ConsoleHarness) -> None:
    key_id, secret = gw.new_key("billed-failure", credit_limit=1.0)
    gw.alpha.inject(Fault(path=CHAT, status=500, usage={"prompt_tokens": 700, "completion_tokens": 30}))
    raw = gw.client(secret).chat.completions.with_raw_response.create(
        model="duo", messages=MESSAGES, extra_body=ALPHA_FIRST
    )
    usage = raw.parse().usage
    assert usage is not None
    record = _record(gw, key_id, raw.headers["x-request-id"])
    failed, served = record["attempts"]
    assert (failed["outcome"], failed["http_status"], served["outcome"]) == ("error", 502, "ok")
    # duo costs $2 / $4 per million on either deployment.
    assert (failed["tokens_prompt"], failed["tokens_completion"], failed["token_source"]) == (
        700,
        30,
        "reported",
    )
    assert _micros(failed["upstream_cost"]) == 700 * 2 + 30 * 4
    charged = usage.prompt_tokens * 2 + usage.completion_tokens * 4
    assert _micros(record["total_cost"]) == charged == _micros(served["upstream_cost"])
    assert _micros(record["upstream_cost"]) == charged + 700 * 2 + 30 * 4

    # A failure without usage in its body cost the operator nothing.
    gw.alpha.inject(Fault(path=CHAT, status=500))
    plain = gw.client(secret).chat.completions.with_raw_response.create(
        model="duo", messages=MESSAGES, extra_body=ALPHA_FIRST
    )
    plain.parse()
    unbilled = _record(gw, key_id, plain.headers["x-request-id"])["attempts"][0]
    assert (unbilled["outcome"], unbilled["upstream_cost"], unbilled["tokens_prompt"]) == ("error", 0.0, 0)


def test_a_stream_cut_after_tokens_is_spend_although_the_key_pays_nothing(gw: ConsoleHarness) -> None:
    key_id, secret = gw.new_key("cut", credit_limit=1.0)
    # Words a token per four bytes gets wrong: CJK, where a character is a token or two, and digits.
    reply = "国际化的人工智能网关 31415926535897932384 antidisestablishmentarianism and the rest"
    gw.beta.script_chat(ScriptedReply(content=reply))
    gw.beta.inject(Fault(path=CHAT, reset_after_chunks=3))
    raw = gw.client(secret).chat.completions.with_raw_response.create(
        model="solo-beta", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    with pytest.raises(openai.APIError):
        for _ in raw.parse():
            pass
    record = _record(gw, key_id, raw.headers["x-request-id"])
    assert (record["status"], record["total_cost"]) == ("error", 0.0)
    (attempt,) = record["attempts"]
    low, high = _counted_prompt_bounds()
    assert attempt["token_source"] == "counted" and low < attempt["tokens_prompt"] <= high
    # The fake sent its role chunk and two words before the cut: those words, as the tokenizer counts
    # them, never the upstream's usage (it never came) nor a token per four bytes of them.
    sent = split_words(reply)[:2]
    counted = len(tokens.encoding("cl100k_base").encode_ordinary("".join(sent)))
    assert counted - sum(-(-len(word.encode()) // 4) for word in sent) >= 5
    assert attempt["tokens_completion"] == counted
    # solo-beta: $1 / $2 per million.
    spent = attempt["tokens_prompt"] + attempt["tokens_completion"] * 2
    assert _micros(attempt["upstream_cost"]) == spent == _micros(record["upstream_cost"])


def test_a_cancelled_stream_costs_the_operator_what_the_key_pays(gw: ConsoleHarness) -> None:
    key_id, secret = gw.new_key("canceller", credit_limit=1.0)
    long_prompt = [{"role": "user", "content": "word " * 40}]
    gw.beta.chunk_delay = 0.2
    try:
        with httpx.stream(
            "POST",
            gw.base_url + "/chat/completions",
            json={"model": "solo-beta", "messages": long_prompt, "stream": True},
            headers={"Authorization": f"Bearer {secret}"},
            timeout=10,
        ) as response:
            request_id = response.headers["x-request-id"]
            seen = 0
            for line in response.iter_lines():
                seen += line.startswith("data: ")
                if seen == 3:
                    break
    finally:
        gw.beta.chunk_delay = 0.0
    record = _record(gw, key_id, request_id, status="cancelled")
    (attempt,) = record["attempts"]
    assert attempt["outcome"] == "cancelled" and attempt["tokens_completion"] > 0
    assert record["upstream_cost"] == record["total_cost"] == attempt["upstream_cost"] > 0


def _mismatches(gw: ConsoleHarness) -> float:
    text = httpx.get(gw.root_url + "/metrics", timeout=10).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "siraya_upstream_cost_mismatch_total" and sample.labels == {
                "model": "solo-beta",
                "provider": "beta",
            }:
                return float(sample.value)
    return 0.0


@pytest.mark.parametrize("stream", [False, True])
def test_an_upstreams_own_cost_is_recorded_and_checked_never_charged(
    gw: ConsoleHarness, stream: bool
) -> None:
    key_id, secret = gw.new_key("reported-cost", credit_limit=1.0)
    usage = {"prompt_tokens": 100_000, "completion_tokens": 50_000}
    ours = 100_000 * 1 + 50_000 * 2  # solo-beta's price, in micros: $0.20
    client = gw.client(secret).chat.completions

    def ask(upstream_says: float) -> tuple[str, float | None]:
        gw.beta.script_chat(
            ScriptedReply(content="a b c", usage=usage, extra_usage_fields={"cost": upstream_says})
        )
        if not stream:
            raw = client.with_raw_response.create(model="solo-beta", messages=MESSAGES)
            parsed = raw.parse().usage
            return raw.headers["x-request-id"], getattr(parsed, "cost", None)
        raw_stream = client.with_raw_response.create(
            model="solo-beta", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
        final = [chunk.usage for chunk in raw_stream.parse() if chunk.usage is not None][-1]
        return raw_stream.headers["x-request-id"], getattr(final, "cost", None)

    before = _mismatches(gw)
    agreed, shown = ask(0.2)
    assert shown == pytest.approx(0.2)
    record = _record(gw, key_id, agreed)
    assert _micros(record["upstream_reported_cost"]) == ours == _micros(record["upstream_cost"])
    assert _micros(record["attempts"][0]["upstream_reported_cost"]) == ours
    assert _mismatches(gw) == before

    disputed, shown = ask(0.25)
    assert shown == pytest.approx(0.2), "the client sees our price, not the upstream's"
    record = _record(gw, key_id, disputed)
    assert _micros(record["upstream_reported_cost"]) == 250_000
    assert _micros(record["total_cost"]) == _micros(record["upstream_cost"]) == ours
    deadline = time.monotonic() + 5
    while _mismatches(gw) == before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _mismatches(gw) == before + 1


def test_usage_aggregates_show_upstream_cost_beside_cost(gw: ConsoleHarness) -> None:
    key_id, secret = gw.new_key("aggregates", credit_limit=1.0)
    gw.alpha.inject(Fault(path=CHAT, status=500, usage={"prompt_tokens": 1000, "completion_tokens": 0}))
    raw = gw.client(secret).chat.completions.with_raw_response.create(
        model="duo", messages=MESSAGES, extra_body=ALPHA_FIRST
    )
    raw.parse()
    record = _record(gw, key_id, raw.headers["x-request-id"])
    (row,) = gw.get("/usage", key=key_id).json()["data"]
    assert row["cost"] == pytest.approx(record["total_cost"])
    assert row["upstream_cost"] == pytest.approx(record["upstream_cost"])
    assert _micros(row["upstream_cost"]) - _micros(row["cost"]) == 1000 * 2


async def test_the_grpc_usage_and_generation_carry_upstream_cost(gw: ConsoleHarness) -> None:
    key_id, secret = gw.new_key("grpc-spend", credit_limit=1.0)
    gw.alpha.inject(Fault(path=CHAT, status=500, usage={"prompt_tokens": 500, "completion_tokens": 0}))
    raw = gw.client(secret).chat.completions.with_raw_response.create(
        model="duo", messages=MESSAGES, extra_body=ALPHA_FIRST
    )
    raw.parse()
    request_id = raw.headers["x-request-id"]
    _record(gw, key_id, request_id)
    metadata = (("authorization", f"Bearer {ADMIN_KEY}"),)
    async with grpc.aio.insecure_channel(gw.grpc_target) as channel:
        usage = admin_pb2_grpc.UsageServiceStub(channel)
        listed = await usage.ListGenerations(
            admin_pb2.ListGenerationsRequest(filter=admin_pb2.GenerationFilter(key_id=key_id)),
            metadata=metadata,
        )
        rows = await usage.GetUsage(
            admin_pb2.GetUsageRequest(filter=admin_pb2.GenerationFilter(key_id=key_id)), metadata=metadata
        )
    (generation,) = listed.generations
    failed = generation.attempts[0]
    assert (failed.tokens_prompt, failed.token_source, _micros(failed.upstream_cost)) == (
        500,
        "reported",
        1000,
    )
    assert _micros(generation.upstream_cost) == _micros(generation.total_cost) + 1000
    (row,) = rows.rows
    assert _micros(row.upstream_cost) == _micros(generation.upstream_cost)
