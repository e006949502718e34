"""A stream's usage carries its cost: the usage chunk (stream_options.include_usage) and the
Responses stream's response.completed are settled when they arrive, exactly once, and carry what
the ledger and the key were charged. An upstream that reports no usage at all is settled at the
stream's end on the fallback: its prompt and text, counted with the tokenizer."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from server import tokens
from tests.e2e.accounts_harness import (
    INPUT_PER_MILLION,
    OUTPUT_PER_MILLION,
    AccountsHarness,
    current_key,
    generation,
    running_accounts,
    sdk,
)
from tests.fakes.openai_upstream import ScriptedReply

MESSAGES = [{"role": "user", "content": "hi"}]
# 1000 prompt tokens at $1/M plus 500 completion tokens at $2/M.
SCRIPTED_USAGE = {"prompt_tokens": 1000, "completion_tokens": 500}
SCRIPTED_COST = 0.002


@pytest.fixture(scope="module", params=["in_process", "grpc_hop"])
def accounts(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AccountsHarness]:
    yield from running_accounts(request, tmp_path_factory)


def _settled_once(accounts: AccountsHarness, secret: str, request_id: str, cost: float) -> dict[str, Any]:
    record = generation(accounts, secret, request_id)
    assert record.status_code == 200, record.text
    data = record.json()["data"]
    assert data["status"] == "success" and data["streamed"] is True
    assert data["total_cost"] == pytest.approx(cost, abs=1e-9)
    key = current_key(accounts, secret)
    assert key["usage"] == pytest.approx(cost, abs=1e-9) and key["reserved"] == 0
    return data


def test_a_streamed_chat_usage_chunk_carries_the_charged_cost(accounts: AccountsHarness) -> None:
    _, secret = accounts.create_key(credit_limit=1.0)
    accounts.upstream.script_chat(ScriptedReply(content="hello there", usage=SCRIPTED_USAGE))
    raw = sdk(accounts, secret).chat.completions.with_raw_response.create(
        model="gpt-priced",
        messages=MESSAGES,
        max_tokens=600,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(raw.parse())
    usages = [chunk.usage for chunk in chunks if chunk.usage is not None]
    assert len(usages) == 1
    usage = usages[0]
    assert (usage.prompt_tokens, usage.completion_tokens) == (1000, 500)
    assert usage.model_extra is not None
    cost = usage.model_extra["cost"]
    assert cost == pytest.approx(SCRIPTED_COST, abs=1e-9)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "hello there"
    data = _settled_once(accounts, secret, raw.headers["x-request-id"], cost)
    assert (data["tokens_prompt"], data["tokens_completion"]) == (1000, 500)


def test_a_streamed_chat_whose_upstream_reports_no_usage_is_settled_on_the_gateways_count(
    accounts: AccountsHarness,
) -> None:
    """The fallback, for an upstream that sends no usage even when asked: the prompt and the streamed
    text counted with the tokenizer, never zero and never the scripted 500."""
    _, secret = accounts.create_key(credit_limit=1.0)
    accounts.upstream.script_chat(ScriptedReply(content="hello there", usage=SCRIPTED_USAGE, no_usage=True))
    raw = sdk(accounts, secret).chat.completions.with_raw_response.create(
        model="gpt-priced", messages=MESSAGES, max_tokens=600, stream=True
    )
    chunks = list(raw.parse())
    assert chunks and all(chunk.usage is None for chunk in chunks)
    sent = accounts.upstream.requests_to("/v1/chat/completions")[-1].json
    assert sent["stream_options"] == {"include_usage": True}
    record = generation(accounts, secret, raw.headers["x-request-id"])
    assert record.status_code == 200, record.text
    data = record.json()["data"]
    assert data["status"] == "success" and data["streamed"] is True
    assert 0 < data["tokens_prompt"] < 1000
    # "hello there": two tokens, where a token per four bytes of each streamed word would make four.
    assert data["tokens_completion"] == len(tokens.encoding("cl100k_base").encode_ordinary("hello there"))
    assert data["token_source"] == "counted"
    assert data["total_cost"] == pytest.approx(
        _price(data["tokens_prompt"], data["tokens_completion"]), abs=1e-12
    )
    key = current_key(accounts, secret)
    assert key["usage"] == pytest.approx(data["total_cost"], abs=1e-9) and key["reserved"] == 0


def test_a_chat_completion_whose_upstream_reports_no_usage_is_settled_on_the_estimate(
    accounts: AccountsHarness,
) -> None:
    _, secret = accounts.create_key(credit_limit=1.0)
    accounts.upstream.script_chat(ScriptedReply(content="hello there", usage=SCRIPTED_USAGE, no_usage=True))
    raw = sdk(accounts, secret).chat.completions.with_raw_response.create(
        model="gpt-priced", messages=MESSAGES, max_tokens=600
    )
    assert raw.parse().usage is None
    record = generation(accounts, secret, raw.headers["x-request-id"])
    data = record.json()["data"]
    assert data["status"] == "success" and data["streamed"] is False
    assert 0 < data["tokens_prompt"] < 1000 and 0 < data["tokens_completion"] < 500
    assert data["total_cost"] == pytest.approx(
        _price(data["tokens_prompt"], data["tokens_completion"]), abs=1e-12
    )
    assert current_key(accounts, secret)["usage"] == pytest.approx(data["total_cost"], abs=1e-9)


def _price(prompt_tokens: int, completion_tokens: int) -> float:
    return (prompt_tokens * INPUT_PER_MILLION + completion_tokens * OUTPUT_PER_MILLION) / 1_000_000


def test_a_streamed_response_completed_carries_the_charged_cost(accounts: AccountsHarness) -> None:
    _, secret = accounts.create_key(credit_limit=1.0)
    accounts.upstream.script_chat(ScriptedReply(content="hello there", usage=SCRIPTED_USAGE))
    raw = sdk(accounts, secret).responses.with_raw_response.create(
        model="gpt-priced", input="hi", max_output_tokens=600, stream=True
    )
    events = list(raw.parse())
    completed = [event for event in events if event.type == "response.completed"]
    assert len(completed) == 1
    usage = completed[0].response.usage  # type: ignore[union-attr]
    assert usage is not None and (usage.input_tokens, usage.output_tokens) == (1000, 500)
    assert usage.model_extra is not None
    cost = usage.model_extra["cost"]
    assert cost == pytest.approx(SCRIPTED_COST, abs=1e-9)
    _settled_once(accounts, secret, raw.headers["x-request-id"], cost)
