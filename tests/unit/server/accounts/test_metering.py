"""AccountMetering against real stores (SQLite, in-process limits): reserve the worst case, settle to
actual, refund on failure, settle once, and moderation snippets."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from server.accounts.accounting import AccountMetering, deployment_price
from server.accounts.keys import KeyManager, KeyRecord, NewKey
from server.accounts.ledger_writer import LedgerWriter
from server.accounts.memory_limits import MemoryLimitStore
from server.accounts.metering import Consumption, Demand
from server.accounts.moderation import Flag, Moderator, snippet
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
