"""The accounting property (issue #18, "Tests that must exist"): a seeded random mix of requests across
two gateway processes on one Postgres and one Redis, over the three upstream protocols, unary and
streamed (with and without include_usage), with retries, fallbacks (one across protocols), hedges,
failures the provider still billed, clients that leave mid-stream and upstreams that cut a stream.

Each fake answers with usage the test scripted for that very attempt, so the test knows what every
upstream reported. At the end, from Postgres:
- the sum of the key's charges equals its credit decrement;
- each record's charge is its serving deployment's price times its tokens, and those tokens are the
  ones its fake reported (a stream that never got its usage: the prompt counted by the tokenizer, or
  the fake's running count of it, and the text that came, counted by the tokenizer, never nothing);
- each record's upstream cost is the sum of its attempts, each at its own deployment's price: the
  winner's tokens, a billed failure's reported usage, a lost hedge's counted prompt; so the total
  upstream cost equals what the fakes reported plus what the gateway counted for calls that never
  reported, and a request is only ever charged what it served.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import os
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from server import tokens
from server.accounts.ledger_queries import GenerationFilter
from server.accounts.postgres_accounts import PostgresAccountStore
from server.accounts.store import LedgerRecord
from tests.e2e.accounts_harness import GatewayProcess
from tests.e2e.loop_gateway import LoopGateway
from tests.fakes.anthropic_upstream import FakeAnthropicUpstream
from tests.fakes.anthropic_upstream.control import AnthropicFault, ScriptedMessage
from tests.fakes.anthropic_upstream.replies import _pieces as anthropic_deltas
from tests.fakes.gemini_upstream import FakeGeminiUpstream
from tests.fakes.gemini_upstream.control import GeminiFault, GeminiReply
from tests.fakes.gemini_upstream.replies import _pieces as gemini_slices
from tests.fakes.openai_upstream import FakeOpenAIUpstream, Fault, ScriptedReply
from tests.fakes.openai_upstream.replies import split_words
from tests.unit.server.accounts.accounts_backends import (
    REDIS_URL,
    postgres_unavailable,
    redis_unavailable,
    temporary_database,
)

# Another mix: SIRAYA_PROPERTY_SEED=<n>; a failure names the request, its scenario and its record.
SEED = int(os.environ.get("SIRAYA_PROPERTY_SEED", "1818"))
REQUESTS = 56
OPENAI_KEY = "sk-upstream-property-0123456789"
ANTHROPIC_KEY = "sk-ant-api03-property-0123456789abcdef"
GEMINI_KEY = "AIzaSy-property-gemini-0123456789"
ADMIN_KEY = "sk-admin-property-secret-97531"
CHAT = "/v1/chat/completions"
# USD per million (input, output) of each provider's deployment: all different, so a token billed at
# another deployment's price shows.
PRICES = {"alpha": (1.0, 2.0), "beta": (3.0, 5.0), "anthropic": (2.0, 7.0), "google": (0.5, 1.5)}
ORDER = {"provider": {"order": ["alpha", "beta"]}}
CROSS_ORDER = {"provider": {"order": ["anthropic", "google"]}}

CONFIG = """
server: {{host: 127.0.0.1, http_port: 0, grpc_port: 0, data_dir: {data_dir}, admin_key: {admin_key}}}
accounts: {{database_url: "{dsn}", redis_url: "{redis}", ledger_flush_interval: 0.05, key_cache_ttl: 0.5}}
routing:
  breaker: {{enabled: false}}
providers:
  alpha: {{type: openai, base_url: "{alpha}", api_key: "{openai_key}"}}
  beta: {{type: openai, base_url: "{beta}", api_key: "{openai_key}"}}
  anthropic: {{type: anthropic, base_url: "{anthropic}", api_key: "{anthropic_key}", read_timeout: 10}}
  google: {{type: gemini, base_url: "{gemini}", api_key: "{gemini_key}", read_timeout: 10}}
models:
  - id: oa
    retry: {{max_attempts: 2, base_delay: 0.01, max_delay: 0.02}}
    deployments:
      - {{provider: alpha, upstream_model: gpt-4o-mini, pricing: {price_alpha}}}
      - {{provider: beta, upstream_model: gpt-4o-mini, pricing: {price_beta}}}
  - id: oa-hedged
    retry: {{max_attempts: 1}}
    hedging: {{enabled: true, delay: 0.15}}
    deployments:
      - {{provider: alpha, upstream_model: gpt-4o-mini, pricing: {price_alpha}}}
      - {{provider: beta, upstream_model: gpt-4o-mini, pricing: {price_beta}}}
  - id: claude
    deployments:
      - {{provider: anthropic, upstream_model: claude-sonnet-4-5, pricing: {price_anthropic}}}
  - id: gemini
    deployments:
      - {{provider: google, upstream_model: gemini-2.5-flash, pricing: {price_google}}}
  - id: cross
    retry: {{max_attempts: 1}}
    deployments:
      - {{provider: anthropic, upstream_model: claude-sonnet-4-5, pricing: {price_anthropic}}}
      - {{provider: google, upstream_model: gemini-2.5-flash, pricing: {price_google}}}
"""
# With a few words a token per four bytes gets wrong, so that a count of the text shows which it was.
WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho".split()
WORDS += ["三角形的内角", "3141592653", "антидисестаблишментарианизм"]


def _pricing(provider: str) -> str:
    given, taken = PRICES[provider]
    return f"{{input_per_million: {given}, output_per_million: {taken}}}"


def _micros(provider: str, prompt: int, completion: int) -> int:
    """Price x tokens, in micro-dollars rounded up once: computed here, not by the gateway's code."""
    given, taken = PRICES[provider]
    return math.ceil((prompt * round(given * 1e6) + completion * round(taken * 1e6)) / 1e6)


class Upstreams(LoopGateway):
    """The four fake upstreams on a loop thread; the gateways run in processes of their own."""

    def __init__(self, tmp_dir: Path) -> None:
        self.alpha = FakeOpenAIUpstream(api_key=OPENAI_KEY)
        self.beta = FakeOpenAIUpstream(api_key=OPENAI_KEY)
        self.anthropic = FakeAnthropicUpstream(api_key=ANTHROPIC_KEY)
        self.gemini = FakeGeminiUpstream(api_key=GEMINI_KEY)
        super().__init__(
            tmp_dir, in_process=True, upstreams=(self.alpha, self.beta, self.anthropic, self.gemini)
        )

    async def _start(self) -> None:
        await self._start_upstreams()

    def slow_streams(self, seconds: float) -> None:
        self.alpha.chunk_delay = self.beta.chunk_delay = seconds
        self.anthropic.event_delay = self.gemini.event_delay = seconds


@dataclasses.dataclass
class Plan:
    """One request of the mix, and what the fakes were told to report for it."""

    index: int
    model: str
    scenario: str  # plain, retry, fallback, billed, hedge, cancel, cut
    stream: bool
    include_usage: bool
    prompt_text: str
    reply_text: str
    usage: tuple[int, int]  # what the serving fake reports: (prompt, completion)
    served_by: str  # the provider the fake that answers belongs to
    billed: tuple[int, int] | None = None  # the usage each billed failure reported
    request_id: str = ""
    status: int = 0


# Every scenario on every protocol it applies to, unary and streamed, at least once; the rest random.
COVERED = [
    *[
        ("oa", scenario, stream)
        for scenario in ("plain", "retry", "fallback", "billed")
        for stream in (False, True)
    ],
    ("oa-hedged", "hedge", False),
    ("oa-hedged", "hedge", True),
    ("cross", "fallback", False),
    ("cross", "fallback", True),
    *[(model, "plain", stream) for model in ("claude", "gemini") for stream in (False, True)],
    *[(model, scenario, True) for model in ("oa", "claude", "gemini") for scenario in ("cancel", "cut")],
]


def _random_case(rng: random.Random) -> tuple[str, str, bool]:
    model = rng.choice(["oa", "oa-hedged", "claude", "gemini", "cross"])
    stream = rng.random() < 0.6
    scenarios = ["plain", "plain"]
    if model == "oa":
        scenarios += ["retry", "fallback", "billed"]
    elif model == "oa-hedged":
        scenarios += ["hedge", "hedge"]
    elif model == "cross":
        scenarios += ["fallback"]
    if stream:
        scenarios += ["cancel", "cut"]
    return model, rng.choice(scenarios), stream


def _plans(rng: random.Random) -> list[Plan]:
    cases = COVERED + [_random_case(rng) for _ in range(REQUESTS - len(COVERED))]
    rng.shuffle(cases)
    plans = []
    for index, (model, scenario, stream) in enumerate(cases):
        served_by = {"oa": "alpha", "oa-hedged": "alpha", "claude": "anthropic", "gemini": "google"}.get(
            model, "anthropic"
        )
        if scenario in ("fallback", "billed"):
            served_by = "google" if model == "cross" else "beta"
        elif scenario == "hedge":
            served_by = "beta"
        # A stream the client leaves must still be running when it leaves: a longer answer.
        words = rng.randint(12, 20) if scenario == "cancel" else rng.randint(4, 9)
        plans.append(
            Plan(
                index=index,
                model=model,
                scenario=scenario,
                stream=stream,
                include_usage=rng.random() < 0.5,
                prompt_text=" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 30))),
                reply_text=" ".join(rng.choice(WORDS) for _ in range(words)),
                usage=(rng.randint(10, 5_000), rng.randint(words, 2_000)),
                served_by=served_by,
                billed=(rng.randint(10, 800), rng.randint(0, 50)) if scenario == "billed" else None,
            )
        )
    return plans


def _script(up: Upstreams, plan: Plan) -> None:
    """Tell the fakes what this request meets: the faults of its scenario, and the answer (with its
    usage) of the fake that serves it."""
    prompt, completion = plan.usage
    if plan.scenario == "retry":
        up.alpha.inject(Fault(path=CHAT, status=500))
    elif plan.scenario == "fallback" and plan.model == "oa":
        up.alpha.inject(Fault(path=CHAT, status=500, times=2))
    elif plan.scenario == "fallback":
        up.anthropic.inject(AnthropicFault(status=500))
    elif plan.scenario == "billed":
        assert plan.billed is not None
        billed = {"prompt_tokens": plan.billed[0], "completion_tokens": plan.billed[1]}
        up.alpha.inject(Fault(path=CHAT, status=500, usage=billed, times=2))
    elif plan.scenario == "hedge":
        up.alpha.inject(Fault(path=CHAT, hang=5))
    elif plan.scenario == "cut":
        if plan.served_by in ("alpha", "beta"):
            getattr(up, plan.served_by).inject(Fault(path=CHAT, reset_after_chunks=3))
        elif plan.served_by == "anthropic":
            up.anthropic.inject(AnthropicFault(cut_after_events=4))
        else:
            up.gemini.inject(GeminiFault(cut_after_events=1))
    if plan.served_by in ("alpha", "beta"):
        reply = ScriptedReply(
            content=plan.reply_text, usage={"prompt_tokens": prompt, "completion_tokens": completion}
        )
        getattr(up, plan.served_by).script_chat(reply)
    elif plan.served_by == "anthropic":
        up.anthropic.script(
            ScriptedMessage(
                content=[{"type": "text", "text": plan.reply_text}],
                usage={"input_tokens": prompt, "output_tokens": completion},
            )
        )
    else:
        up.gemini.script(
            GeminiReply(
                text=plan.reply_text, usage={"promptTokenCount": prompt, "candidatesTokenCount": completion}
            )
        )


def _send(base_url: str, secret: str, plan: Plan) -> None:
    body: dict[str, Any] = {"model": plan.model, "messages": [{"role": "user", "content": plan.prompt_text}]}
    if plan.model in ("oa", "oa-hedged"):
        body.update(ORDER)
    elif plan.model == "cross":
        body.update(CROSS_ORDER)
    headers = {"Authorization": f"Bearer {secret}"}
    if not plan.stream:
        response = httpx.post(f"{base_url}/chat/completions", json=body, headers=headers, timeout=30)
        plan.request_id, plan.status = response.headers.get("x-request-id", ""), response.status_code
        return
    body["stream"] = True
    if plan.include_usage:
        body["stream_options"] = {"include_usage": True}
    with httpx.stream(
        "POST", f"{base_url}/chat/completions", json=body, headers=headers, timeout=30
    ) as response:
        plan.request_id, plan.status = response.headers.get("x-request-id", ""), response.status_code
        seen = 0
        try:
            for line in response.iter_lines():
                seen += line.startswith("data: ")
                if plan.scenario == "cancel" and seen == 2:
                    break  # the client leaves mid-stream
        except httpx.HTTPError:
            pass  # the upstream cut the stream: the gateway may end it abruptly


@pytest.fixture(scope="module")
def upstreams(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Upstreams]:
    harness = Upstreams(Path(tmp_path_factory.mktemp("property"))).start()
    yield harness
    harness.stop()


def test_every_cent_is_accounted_for_across_two_replicas(upstreams: Upstreams) -> None:
    reason = postgres_unavailable() or redis_unavailable()
    if reason:
        pytest.skip(reason)
    plans = _plans(random.Random(SEED))
    with temporary_database() as dsn:
        config = upstreams.tmp_dir / "property.yaml"
        config.write_text(
            CONFIG.format(
                data_dir=upstreams.tmp_dir / "data",
                admin_key=ADMIN_KEY,
                dsn=dsn,
                redis=REDIS_URL,
                alpha=upstreams.alpha.base_url,
                beta=upstreams.beta.base_url,
                anthropic=upstreams.anthropic.base_url,
                gemini=upstreams.gemini.base_url,
                openai_key=OPENAI_KEY,
                anthropic_key=ANTHROPIC_KEY,
                gemini_key=GEMINI_KEY,
                **{f"price_{name}": _pricing(name) for name in PRICES},
            )
        )
        gateways = [GatewayProcess(config) for _ in range(2)]
        try:
            created = httpx.post(
                f"{gateways[0].base_url}/keys",
                json={"name": "property", "credit_limit": 1_000.0},
                headers={"Authorization": f"Bearer {ADMIN_KEY}"},
                timeout=20,
            )
            assert created.status_code == 200, created.text
            key_id, secret = created.json()["id"], created.json()["secret"]
            for plan in plans:
                upstreams.slow_streams(0.05 if plan.scenario == "cancel" else 0.0)
                _script(upstreams, plan)
                _send(gateways[plan.index % 2].base_url, secret, plan)
                _settle_fakes(upstreams)
            records, used = asyncio.run(_ledger(dsn, key_id, len(plans)))
        finally:
            for gateway in gateways:
                gateway.stop()
    _check(plans, records, used)


def _settle_fakes(up: Upstreams) -> None:
    """Clear what a request left queued (a fault or script a scenario did not reach), so the next
    request meets only its own."""
    for fake in (up.alpha, up.beta):
        fake._faults.clear()
        fake._scripts.clear()
    up.anthropic._faults.clear()
    up.anthropic._scripts.clear()
    up.gemini._faults.clear()
    up.gemini._scripts.clear()


async def _ledger(dsn: str, key_id: str, count: int) -> tuple[dict[str, LedgerRecord], int]:
    store = await PostgresAccountStore.open(dsn, max_size=2)
    try:
        deadline = time.monotonic() + 20
        while True:
            page = await store.list_generations(GenerationFilter(key_id=key_id), 500)
            if len(page.records) >= count or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
        balance = await store.balance(key_id)
        assert balance is not None and balance.reserved == 0, balance
        return {record.request_id: record for record in page.records}, balance.used
    finally:
        await store.close()


def _counted(text: str) -> int:
    return len(tokens.encoding("cl100k_base").encode_ordinary(text))


def _counted_prompt(text: str) -> tuple[int, int]:
    counted = _counted(text)
    return counted, counted + 16


def _streamed(plan: Plan) -> list[str]:
    """The pieces of text the serving fake streams its reply in, in order."""
    if plan.served_by in ("alpha", "beta"):
        return split_words(plan.reply_text)
    if plan.served_by == "anthropic":
        return anthropic_deltas(plan.reply_text)
    return gemini_slices(plan.reply_text)


def _counted_beginnings(plan: Plan) -> set[int]:
    """The tokenizer's count of each beginning of the reply a stream can have sent before it stopped."""
    pieces = _streamed(plan)
    return {_counted("".join(pieces[:end])) for end in range(1, len(pieces) + 1)}


def _check_cut_prompt(plan: Plan, prompt_tokens: int, where: str) -> None:
    """The prompt of a stream that stopped before its usage: Anthropic's and Gemini's running count,
    else (an OpenAI-protocol upstream reports nothing before its end) the tokenizer's."""
    if plan.served_by in ("alpha", "beta"):
        low, high = _counted_prompt(plan.prompt_text)
        assert low < prompt_tokens <= high, where
    else:
        assert prompt_tokens == plan.usage[0], where


def _check(plans: list[Plan], records: dict[str, LedgerRecord], used: int) -> None:
    missing = [plan for plan in plans if plan.request_id not in records]
    assert not missing, f"every request has exactly one ledger record; none for {missing}"
    assert len(records) == len(plans), "no record of a request this test did not make"
    reported_truth = reported_charged = upstream_total = 0
    for plan in plans:
        record = records[plan.request_id]
        where = f"request {plan.index} ({plan.model}, {plan.scenario}, stream={plan.stream}): {record}"
        attempts = record.attempts
        # Each attempt at its own deployment's price; the record's upstream cost is their sum.
        for attempt in attempts:
            assert attempt.upstream_cost_micros == _micros(
                attempt.provider, attempt.prompt_tokens, attempt.completion_tokens
            ), where
        assert record.upstream_cost_micros == sum(a.upstream_cost_micros for a in attempts), where
        upstream_total += record.upstream_cost_micros
        served = [a for a in attempts if a.provider == plan.served_by and a.outcome != "error"]
        if record.status == "success":
            (winner,) = [a for a in attempts if a.outcome == "ok"]
            assert winner.provider == plan.served_by, where
            assert record.provider == plan.served_by, where
            assert record.cost_micros == _micros(
                plan.served_by, record.prompt_tokens, record.completion_tokens
            ), where
            assert (record.prompt_tokens, record.completion_tokens) == plan.usage, where
            assert record.token_source == "reported", where
            assert record.cost_micros == winner.upstream_cost_micros, where
            reported_truth += _micros(plan.served_by, *plan.usage)
            reported_charged += record.cost_micros
        elif record.status == "cancelled":
            assert plan.scenario == "cancel", where
            (winner,) = served
            assert record.cost_micros == winner.upstream_cost_micros > 0, where
            assert record.cost_micros == _micros(
                plan.served_by, record.prompt_tokens, record.completion_tokens
            )
            assert record.completion_tokens > 0, where
            # No usage covered the text that came before the client left: the tokenizer counted it.
            assert record.token_source == "counted", where
            assert record.completion_tokens in _counted_beginnings(plan), where
            _check_cut_prompt(plan, record.prompt_tokens, where)
        else:
            assert plan.scenario == "cut", where
            assert record.cost_micros == 0, where  # a stream the upstream broke is not the key's to pay
            winner = attempts[-1]  # it failed after its first item: nothing was tried after it
            assert winner.provider == plan.served_by, where
            assert winner.upstream_cost_micros > 0, where
            # What the fake sent before its cut (OpenAI's role chunk and two words, Anthropic's first
            # text delta, Gemini's first event), counted with the tokenizer.
            pieces = _streamed(plan)
            sent = "".join(pieces[:2] if plan.served_by in ("alpha", "beta") else pieces[:1])
            assert (winner.completion_tokens, winner.token_source) == (_counted(sent), "counted"), where
            _check_cut_prompt(plan, winner.prompt_tokens, where)
        # What each attempt that did not serve cost the operator.
        failures = [a for a in attempts if a.outcome == "error"]
        if plan.scenario == "billed":
            assert plan.billed is not None and len(failures) == 2, where
            for failure in failures:
                assert (failure.prompt_tokens, failure.completion_tokens) == plan.billed, where
                assert failure.token_source == "reported", where
        elif plan.scenario in ("retry", "fallback"):
            assert failures and all(f.upstream_cost_micros == 0 for f in failures), where
        if plan.scenario == "hedge":
            (loser,) = [a for a in attempts if a.provider == "alpha"]
            low, high = _counted_prompt(plan.prompt_text)
            assert loser.outcome == "cancelled" and loser.token_source == "counted", where
            assert low < loser.prompt_tokens <= high and loser.completion_tokens == 0, where
    charged = sum(record.cost_micros for record in records.values())
    assert charged == used, "the key's charges are its credit decrement, to the micro-dollar"
    assert reported_charged == reported_truth, (
        "what served and reported was charged at price x reported tokens"
    )
    assert upstream_total == sum(record.upstream_cost_micros for record in records.values())
    assert upstream_total >= charged, "the operator pays at least what the keys pay"
    # The mix did meet what it is meant to: every outcome, on every protocol, unary and streamed.
    outcomes = {(plan.served_by, plan.stream, records[plan.request_id].status) for plan in plans}
    for provider in ("alpha", "beta", "anthropic", "google"):
        assert {(provider, False, "success"), (provider, True, "success")} <= outcomes, provider
    for provider in ("alpha", "anthropic", "google"):
        assert {(provider, True, "cancelled"), (provider, True, "error")} <= outcomes, provider
