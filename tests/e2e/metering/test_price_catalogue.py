"""Prices through the running gateway: a model with no price is refused to a key with a credit limit
(never served for free silently), a model priced by the built-in catalogue is charged its list price,
/v1/models shows the prices, and `siraya-router prices check` lists what has none."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from server.accounts.money import Price
from server.pricing import builtin_catalogue
from tests.e2e.accounts_harness import AccountsHarness, generation, running_accounts, sdk
from tests.fakes.openai_upstream import ScriptedReply

ROOT = Path(__file__).resolve().parents[3]
MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module", params=["in_process", "grpc_hop"])
def accounts(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AccountsHarness]:
    yield from running_accounts(request, tmp_path_factory)


def test_an_unpriced_model_is_refused_to_a_limited_key_naming_the_model_and_the_way_out(
    accounts: AccountsHarness,
) -> None:
    _, limited = accounts.create_key(credit_limit=1.0)
    before = len(accounts.upstream.requests_to("/v1/chat/completions"))
    for stream in (False, True):
        with pytest.raises(openai.PermissionDeniedError) as caught:
            sdk(accounts, limited).chat.completions.create(
                model="gpt-unpriced", messages=MESSAGES, max_tokens=5, stream=stream
            )
        body = caught.value.body
        assert isinstance(body, dict)
        assert (body["type"], body["code"], body["param"]) == (
            "permission_error",
            "model_not_priced",
            "model",
        )
        assert "'gpt-unpriced'" in body["message"] and "pricing: free" in body["message"]
    assert len(accounts.upstream.requests_to("/v1/chat/completions")) == before
    # A key without a limit is charged nothing and may use it; a model that says free serves both.
    _, unlimited = accounts.create_key()
    assert sdk(accounts, unlimited).chat.completions.create(
        model="gpt-unpriced", messages=MESSAGES, max_tokens=5
    )
    assert sdk(accounts, limited).chat.completions.create(model="gpt-free", messages=MESSAGES, max_tokens=5)


def test_a_model_priced_by_the_catalogue_is_charged_its_list_price(accounts: AccountsHarness) -> None:
    _, secret = accounts.create_key(credit_limit=1.0)
    accounts.upstream.script_chat(
        ScriptedReply(content="hello", usage={"prompt_tokens": 10_000, "completion_tokens": 2_000})
    )
    raw = sdk(accounts, secret).chat.completions.with_raw_response.create(
        model="gpt-listed", messages=MESSAGES, max_tokens=3_000
    )
    listed = builtin_catalogue().lookup("openai", "gpt-4o-mini")
    assert listed is not None
    expected = Price.from_usd(
        input_per_million=listed.input_per_million, output_per_million=listed.output_per_million
    ).tokens(10_000, 2_000)
    assert expected == 10_000 * 0.15 + 2_000 * 0.6  # micro-dollars: the list price, not zero
    usage = raw.parse().usage
    assert usage is not None and usage.model_extra is not None
    assert usage.model_extra["cost"] == pytest.approx(expected / 1e6, abs=1e-9)
    record = generation(accounts, secret, raw.headers["x-request-id"]).json()["data"]
    assert record["total_cost"] == pytest.approx(expected / 1e6, abs=1e-9)


def test_models_show_their_prices_with_source(accounts: AccountsHarness) -> None:
    _, secret = accounts.create_key()
    models = {
        model["id"]: model
        for model in httpx.get(
            f"{accounts.base_url}/models", headers={"Authorization": f"Bearer {secret}"}
        ).json()["data"]
    }
    listed = models["gpt-listed"]
    assert listed["pricing"]["input_per_million"] == 0.15
    assert listed["pricing"]["source"] == "https://openai.com/api/pricing/"
    assert listed["context_window"] == 128000 and listed["max_output_tokens"] == 16384
    assert models["gpt-free"]["pricing"] == {"free": True}
    assert "pricing" not in models["gpt-unpriced"]
    assert models["gpt-priced"]["pricing"] == {"input_per_million": 1.0, "output_per_million": 2.0}


def _prices_check(config: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("SIRAYA_CONFIG", None)
    return subprocess.run(
        [sys.executable, "-m", "server", "prices", "check", "--config", str(config), *extra],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_prices_check_lists_the_served_models_with_no_price(
    accounts: AccountsHarness, tmp_path: Path
) -> None:
    done = _prices_check(accounts.config_path)
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "gpt-unpriced: no price for chat requests on fake/gpt-4o-mini" in done.stdout
    assert "gpt-listed" not in done.stdout and "gpt-free" not in done.stdout
    found = json.loads(_prices_check(accounts.config_path, "--json").stdout)
    assert found["unpriced"] == [{"model": "gpt-unpriced", "kind": "chat", "deployment": "fake/gpt-4o-mini"}]
    fixed = tmp_path / "fixed.yaml"
    fixed.write_text(
        accounts.config_path.read_text().replace(
            "  - id: gpt-unpriced\n    provider: fake\n",
            "  - id: gpt-unpriced\n    provider: fake\n    pricing: free\n",
        )
    )
    done = _prices_check(fixed)
    assert done.returncode == 0, (done.stdout, done.stderr)
    assert "have a price" in done.stdout
