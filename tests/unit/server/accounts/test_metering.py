"""AccountMetering against real stores (SQLite, in-process limits): reserve the worst case, settle to
actual, refund on failure, settle once, and moderation snippets."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from server.accounts.accounting import AccountMetering, deployment_price
from server.accounts.keys import KeyManager, KeyRecord, NewKey
from server.accounts.ledger_writer import LedgerWriter
from server.accounts.memory_limits import MemoryLimitStore
from server.accounts.metering import Consumption, Demand
from server.accounts.moderation import Flag, Moderator, snippet
from server.accounts.prompt_bound import prompt_shape
from server.accounts.sqlite_accounts import SqliteAccountStore
from server.config import ModerationConfig, PricingConfig
from server.errors import InsufficientCredits, PermissionDenied, RateLimited, UpstreamError
from server.providers.base import RequestContext
from server.routing.catalogue import CatalogueEntry, Deployment
from siraya.router.v1 import chat_pb2

DEPLOYMENT = Deployment("fake", "gpt-4o-mini")
# $1 per million input tokens, $2 per million output tokens.
ENTRY = CatalogueEntry(
    id="gpt-priced",
    kind="chat",
    owned_by="fake",
    created=0,
    context_window=None,
    pricing=PricingConfig(input_per_million=1.0, output_per_million=2.0),
    deployments=(DEPLOYMENT,),
)


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[tuple[AccountMetering, KeyManager, SqliteAccountStore]]:
    store = SqliteAccountStore(tmp_path / "accounts.db")
    moderator = Moderator([ModerationConfig(name="rules", patterns=(("violence", r"\bkill\b"),))])
    metering = AccountMetering(store, MemoryLimitStore(), LedgerWriter(store, flush_interval=0.01), moderator)
    yield metering, KeyManager(store), store
    await metering.close()


async def key(keys: KeyManager, **spec: object) -> KeyRecord:
    record, _ = await keys.create(NewKey(name="k", **spec))  # type: ignore[arg-type]
    return record


async def test_reserves_the_worst_case_then_settles_to_actual(setup: tuple) -> None:  # type: ignore[type-arg]
    metering, keys, store = setup
    record = await key(keys, credit_limit=1.0)
    meter = await metering.admit(
        record, ENTRY, Demand(prompt_tokens=1000, max_output_tokens=1000), RequestContext("r1")
    )
    # 1000 * $1/M + 1000 * $2/M = $0.003 held while the request runs.
    assert (await store.balance(record.id)).reserved == 3000  # type: ignore[union-attr]
    cost = await meter.settle(DEPLOYMENT, Consumption(prompt_tokens=1000, completion_tokens=10))
    assert cost == pytest.approx(0.00102)
    balance = await store.balance(record.id)
    assert balance is not None and (balance.used, balance.reserved) == (1020, 0)
    assert await meter.settle(DEPLOYMENT, Consumption(completion_tokens=999)) is None  # once only
    await metering.ledger.flush()
    ledger = await store.ledger_record("r1", record.id)
    assert ledger is not None and ledger.cost_micros == 1020 and ledger.status == "success"
    assert await store.ledger_sum(record.id) == 1020


async def test_refuses_what_the_balance_cannot_cover_and_refunds_failures(setup: tuple) -> None:  # type: ignore[type-arg]
    metering, keys, store = setup
    record = await key(keys, credit_limit=0.002)
    with pytest.raises(InsufficientCredits):
        await metering.admit(
            record, ENTRY, Demand(prompt_tokens=0, max_output_tokens=1001), RequestContext("r1")
        )
    meter = await metering.admit(record, ENTRY, Demand(max_output_tokens=1000), RequestContext("r2"))
    await meter.fail(UpstreamError("down"))
    balance = await store.balance(record.id)
    assert balance is not None and (balance.used, balance.reserved) == (0, 0)
    await metering.ledger.flush()
    refused = await store.ledger_record("r1", record.id)
    failed = await store.ledger_record("r2", record.id)
    assert refused is not None and refused.http_status == 402 and refused.error_code == "insufficient_credits"
    assert failed is not None and failed.http_status == 502 and failed.status == "error"


async def test_a_cancelled_stream_is_charged_for_what_it_produced(setup: tuple) -> None:  # type: ignore[type-arg]
    metering, keys, store = setup
    record = await key(keys, credit_limit=1.0)
    ctx = RequestContext("r1")
    meter = await metering.admit(record, ENTRY, Demand(max_output_tokens=1000), ctx)
    ctx.outcome.first_item_at = 0.0
    await meter.settle(DEPLOYMENT, Consumption(completion_tokens=7), cancelled=True)
    await metering.ledger.flush()
    ledger = await store.ledger_record("r1", record.id)
    assert (
        ledger is not None and ledger.status == "cancelled" and ledger.cost_micros == 14 and ledger.streamed
    )


async def test_rpm_refusal_carries_headers_and_is_recorded(setup: tuple) -> None:  # type: ignore[type-arg]
    metering, keys, store = setup
    record = await key(keys, rpm_limit=1)
    ctx = RequestContext("r1")
    await (await metering.admit(record, ENTRY, Demand(), ctx)).settle(DEPLOYMENT, Consumption())
    assert ctx.response_headers is not None and ctx.response_headers["x-ratelimit-remaining-requests"] == "0"
    with pytest.raises(RateLimited) as caught:
        await metering.admit(record, ENTRY, Demand(), RequestContext("r2"))
    assert caught.value.retry_after is not None and 59 <= caught.value.retry_after <= 60
    assert caught.value.headers is not None and caught.value.headers["x-ratelimit-limit-requests"] == "1"
    assert "retry-after" not in caught.value.headers  # the error table adds Retry-After itself


async def test_moderation_flags_before_the_upstream_and_releases(setup: tuple) -> None:  # type: ignore[type-arg]
    metering, keys, store = setup
    record = await key(keys, credit_limit=1.0)
    params = chat_pb2.ChatCompletionParams(
        model="gpt-priced",
        messages=[chat_pb2.ChatMessage(role=chat_pb2.CHAT_ROLE_USER, text="please kill it")],
    )
    with pytest.raises(PermissionDenied) as caught:
        await metering.admit(record, ENTRY, Demand(max_output_tokens=10, params=params), RequestContext("r1"))
    assert caught.value.code == "content_flagged" and "violence" in caught.value.message
    assert (await store.balance(record.id)).reserved == 0  # type: ignore[union-attr]


def _chat(text: str, **fields: int) -> chat_pb2.ChatCompletionParams:
    return chat_pb2.ChatCompletionParams(
        model="gpt-priced",
        messages=[chat_pb2.ChatMessage(role=chat_pb2.CHAT_ROLE_USER, text=text)],
        **fields,
    )


async def test_without_max_tokens_the_reply_is_capped_at_what_the_credit_pays_for(setup: tuple) -> None:  # type: ignore[type-arg]
    metering, keys, store = setup
    ample = await key(keys, credit_limit=100.0)
    params = _chat("hi")
    await metering.admit(ample, ENTRY, Demand(params=params, max_output_given=False), RequestContext("r1"))
    assert params.max_tokens == 4096  # the model's ceiling: its credit pays for all of it
    limited = dataclasses.replace(ENTRY, max_output_tokens=500)
    params = _chat("hi")
    await metering.admit(ample, limited, Demand(params=params, max_output_given=False), RequestContext("r2"))
    assert params.max_tokens == 500
    small = await key(keys, credit_limit=0.0003)  # 300 micros: ~100 reply tokens at $2/M after the prompt
    params = _chat("hi")
    meter = await metering.admit(
        small, ENTRY, Demand(params=params, max_output_given=False), RequestContext("r3")
    )
    balance = await store.balance(small.id)
    assert balance is not None and balance.reserved == 300
    assert 90 <= params.max_tokens < 150
    # A well-behaved upstream bills at most the prompt and the cap: within the reservation.
    worst = Consumption(prompt_tokens=prompt_shape(params).byte_bound(), completion_tokens=params.max_tokens)
    cost = await meter.settle(DEPLOYMENT, worst)
    assert cost is not None and cost <= 0.0003
    given = _chat("hi", max_tokens=7)
    await metering.admit(ample, ENTRY, Demand(params=given, max_output_tokens=7), RequestContext("r4"))
    assert given.max_tokens == 7  # the client's own cap is never changed


# A fallback whose reply tokens cost 50 times gpt-priced's.
DEAR_DEPLOYMENT = Deployment(
    "fake", "gpt-4o", pricing=PricingConfig(input_per_million=1.0, output_per_million=100.0)
)
DEAR_ENTRY = dataclasses.replace(
    ENTRY,
    id="gpt-dear",
    pricing=DEAR_DEPLOYMENT.pricing,
    deployments=(DEAR_DEPLOYMENT,),
    max_output_tokens=2000,
)


async def test_the_reservation_and_the_cap_cover_a_dearer_fallback(setup: tuple) -> None:  # type: ignore[type-arg]
    metering, keys, store = setup
    record = await key(keys, credit_limit=0.01)  # 10,000 micros
    params = _chat("hi")
    meter = await metering.admit(
        record, ENTRY, Demand(params=params, max_output_given=False), RequestContext("r1"), (DEAR_ENTRY,)
    )
    balance = await store.balance(record.id)
    # gpt-dear's 2,000-token ceiling at $100/M does not fit: all of the credit is held, and the cap
    # is what it pays for at gpt-dear's price (gpt-priced's alone would have allowed 4,096 tokens).
    assert balance is not None and balance.reserved == 10_000
    assert 95 <= params.max_tokens < 100
    worst = Consumption(prompt_tokens=prompt_shape(params).byte_bound(), completion_tokens=params.max_tokens)
    before = _overruns("gpt-priced")
    cost = await meter.settle(DEAR_DEPLOYMENT, worst)
    assert cost is not None and cost <= 0.01 and _overruns("gpt-priced") == before
    given = _chat("hi", max_tokens=100)
    ample = await key(keys, credit_limit=1.0)
    await metering.admit(
        ample, ENTRY, Demand(params=given, max_output_tokens=100), RequestContext("r2"), (DEAR_ENTRY,)
    )
    balance = await store.balance(ample.id)
    assert balance is not None and balance.reserved == prompt_shape(given).byte_bound() + 100 * 100


async def test_near_the_limit_the_prompt_is_counted_with_the_tokenizer(setup: tuple) -> None:  # type: ignore[type-arg]
    metering, keys, store = setup
    record = await key(keys, credit_limit=0.005)  # 5000 micros
    text = "hello " * 1000  # 6000 bytes, about 1000 tokens
    params = _chat(text, max_tokens=100)
    assert prompt_shape(params).byte_bound() * 1 > 5000  # the byte bound alone would not fit
    await metering.admit(record, ENTRY, Demand(params=params, max_output_tokens=100), RequestContext("r1"))
    balance = await store.balance(record.id)
    # ~1000 tokens times the 1.5 margin of a provider the catalogue does not know, plus the reply.
    assert balance is not None and 1500 < balance.reserved < 2000
    uncapped = _chat(text)
    await metering.admit(record, ENTRY, Demand(params=uncapped, max_output_given=False), RequestContext("r2"))
    balance = await store.balance(record.id)
    assert balance is not None and balance.reserved == 5000  # what was left, all of it
    assert uncapped.max_tokens > 800  # the tokenizer's count leaves room the byte bound would not


async def test_an_overrun_is_charged_in_full_and_counted(setup: tuple) -> None:  # type: ignore[type-arg]
    metering, keys, store = setup
    record = await key(keys, credit_limit=0.001)
    before = _overruns()
    meter = await metering.admit(
        record, ENTRY, Demand(params=_chat("hi", max_tokens=10), max_output_tokens=10), RequestContext("r1")
    )
    await meter.settle(DEPLOYMENT, Consumption(prompt_tokens=1000, completion_tokens=10))  # billed past it
    balance = await store.balance(record.id)
    assert balance is not None and balance.used == 1020 and balance.available == -20
    assert _overruns() == before + 1
    with pytest.raises(InsufficientCredits):  # the next admission sees the negative balance
        await metering.admit(
            record, ENTRY, Demand(params=_chat("hi", max_tokens=1), max_output_tokens=1), RequestContext("r2")
        )


def _overruns(model: str = "gpt-priced") -> float:
    value = REGISTRY.get_sample_value("siraya_credit_overruns_total", {"model": model, "provider": "fake"})
    return value or 0.0


def test_snippet_is_truncated_around_the_match() -> None:
    text = "a" * 500 + " kill " + "b" * 500
    cut = snippet(Flag(("violence",), text, 501), 40)
    assert "kill" in cut and len(cut) <= 42 and cut.startswith("…") and cut.endswith("…")
    assert snippet(Flag(("x",), "short", 0), 40) == "short"


def test_a_deployment_price_wins_over_the_model_price() -> None:
    class PricedDeployment:
        provider = "fake"
        upstream_model = "m"
        pricing = PricingConfig(input_per_million=5.0)

    assert deployment_price(ENTRY, DEPLOYMENT).input_per_million == 1_000_000
    assert deployment_price(ENTRY, PricedDeployment()).input_per_million == 5_000_000  # type: ignore[arg-type]
