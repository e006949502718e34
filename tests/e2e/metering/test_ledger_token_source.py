"""Each ledger record says whether its token counts were the upstream's (`reported`) or the gateway's
own (`counted`, with the real tokenizer): an upstream that sends no usage is never billed at zero and
never passes for reported."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from openai.types.chat import ChatCompletionMessageParam

from server import tokens
from tests.e2e.accounts_harness import AccountsHarness, generation, running_accounts, sdk
from tests.fakes.openai_upstream import ScriptedReply

PROMPT = "Count these words with a real tokenizer, please, not with bytes divided by four."
MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": PROMPT}]
REPLY = "A reply of several words that the upstream did not count for us."


@pytest.fixture(scope="module", params=["in_process"])
def accounts(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AccountsHarness]:
    yield from running_accounts(request, tmp_path_factory)


def _record(accounts: AccountsHarness, secret: str, request_id: str) -> dict[str, object]:
    response = generation(accounts, secret, request_id)
    assert response.status_code == 200, response.text
    return response.json()["data"]  # type: ignore[no-any-return]


def test_reported_usage_is_marked_reported(accounts: AccountsHarness) -> None:
    _, secret = accounts.create_key(credit_limit=1.0)
    raw = sdk(accounts, secret).chat.completions.with_raw_response.create(
        model="gpt-priced", messages=MESSAGES, max_tokens=50
    )
    record = _record(accounts, secret, raw.headers["x-request-id"])
    assert record["token_source"] == "reported"


@pytest.mark.parametrize("stream", [False, True])
def test_an_upstream_without_usage_is_counted_with_the_tokenizer(
    accounts: AccountsHarness, stream: bool
) -> None:
    _, secret = accounts.create_key(credit_limit=1.0)
    accounts.upstream.script_chat(ScriptedReply(content=REPLY, no_usage=True))
    client = sdk(accounts, secret).chat.completions
    if stream:
        raw_stream = client.with_raw_response.create(
            model="gpt-priced", messages=MESSAGES, max_tokens=50, stream=True
        )
        request_id = raw_stream.headers["x-request-id"]
        for _ in raw_stream.parse():
            pass
    else:
        raw = client.with_raw_response.create(model="gpt-priced", messages=MESSAGES, max_tokens=50)
        request_id = raw.headers["x-request-id"]
    record = _record(accounts, secret, request_id)
    assert record["token_source"] == "counted"
    counted = len(tokens.encoding("cl100k_base").encode_ordinary(PROMPT))
    # The prompt's own tokens plus the framing allowance; not bytes/4, never zero.
    assert counted < record["tokens_prompt"] <= counted + 16  # type: ignore[operator]
    assert record["tokens_completion"] > 0 and record["total_cost"] > 0  # type: ignore[operator]
    if not stream:
        assert record["tokens_completion"] == len(tokens.encoding("cl100k_base").encode_ordinary(REPLY))
