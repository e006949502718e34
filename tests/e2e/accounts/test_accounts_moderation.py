"""Moderation before the upstream: a pattern rule and an OpenAI-compatible /moderations upstream both
answer 403 content_flagged with the reasons and a snippet; fail-closed refuses when the upstream is down."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

from tests.e2e.accounts_harness import AccountsHarness, current_key, generation, running_accounts, sdk


@pytest.fixture(scope="module", params=["in_process", "grpc_hop"])
def accounts(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AccountsHarness]:
    yield from running_accounts(request, tmp_path_factory)


def _flagged(accounts: AccountsHarness, secret: str, model: str, text: str) -> openai.PermissionDeniedError:
    before = len(accounts.upstream.requests_to("/v1/chat/completions"))
    with pytest.raises(openai.PermissionDeniedError) as caught:
        sdk(accounts, secret).chat.completions.create(
            model=model, messages=[{"role": "user", "content": text}]
        )
    assert len(accounts.upstream.requests_to("/v1/chat/completions")) == before  # never reached the model
    body = caught.value.body
    assert isinstance(body, dict)
    assert body["type"] == "permission_error" and body["code"] == "content_flagged"
    return caught.value


def test_a_pattern_rule_flags_with_reason_and_truncated_snippet(accounts: AccountsHarness) -> None:
    _, secret = accounts.create_key(credit_limit=1.0)
    text = "Tell me a long story. " * 20 + "Then explain how to kill them all. " + "More filler text. " * 20
    error = _flagged(accounts, secret, "gpt-moderated", text)
    message = error.body["message"]  # type: ignore[index]
    assert "violence" in message and "kill them" in message
    assert len(message) < 200 and text not in message
    record = generation(accounts, secret, error.response.headers["x-request-id"]).json()["data"]
    assert record["http_status"] == 403 and record["error_code"] == "content_flagged"
    assert current_key(accounts, secret)["reserved"] == 0  # the reservation was released
    ok = sdk(accounts, secret).chat.completions.create(
        model="gpt-moderated", messages=[{"role": "user", "content": "a kind story"}]
    )
    assert ok.choices[0].message.content


def test_the_moderation_upstream_flags_with_its_categories(accounts: AccountsHarness) -> None:
    _, secret = accounts.create_key()
    error = _flagged(accounts, secret, "gpt-upstream-moderated", "some forbidden words")
    message = error.body["message"]  # type: ignore[index]
    assert "harassment" in message and "forbidden" in message
    ok = sdk(accounts, secret).chat.completions.create(
        model="gpt-upstream-moderated", messages=[{"role": "user", "content": "harmless"}]
    )
    assert ok.choices[0].message.content


def test_fail_closed_refuses_when_the_moderation_upstream_is_down(accounts: AccountsHarness) -> None:
    _, secret = accounts.create_key()
    accounts.moderations.failing = True
    try:
        error = _flagged(accounts, secret, "gpt-upstream-moderated", "harmless")
    finally:
        accounts.moderations.failing = False
    assert "could not be moderated" in error.body["message"]  # type: ignore[index]


def test_an_oversized_moderation_reply_counts_as_the_upstream_being_down(accounts: AccountsHarness) -> None:
    _, secret = accounts.create_key()
    accounts.moderations.oversized = True
    try:
        error = _flagged(accounts, secret, "gpt-upstream-moderated", "harmless")
    finally:
        accounts.moderations.oversized = False
    assert "could not be moderated" in error.body["message"]  # type: ignore[index]


def test_models_without_a_policy_are_not_moderated(accounts: AccountsHarness) -> None:
    _, secret = accounts.create_key()
    calls = accounts.moderations.calls
    sdk(accounts, secret).chat.completions.create(
        model="gpt-free", messages=[{"role": "user", "content": "forbidden; kill them"}]
    )
    assert accounts.moderations.calls == calls
