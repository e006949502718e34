"""Routing and resilience through the OpenAI SDK: fallbacks, preferences, retries, breakers,
timeouts, streaming failover and hedging, against two fault-injecting fake upstreams.

Every case checks the status, the error body, the model and provider that served, and how many
upstream attempts each fake saw.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.e2e.routing_harness import UPSTREAM_KEY, RoutingHarness
from tests.fakes.openai_upstream import Fault
from tests.unit.server.accounts.accounts_backends import REDIS_URL, delete_prefix, redis_unavailable

CHAT = "/v1/chat/completions"
HI = [{"role": "user", "content": "hi"}]
ALPHA_FIRST = {"provider": {"order": ["alpha", "beta"]}}
ALWAYS = 1000


@pytest.fixture
def gw(tmp_path: Path) -> Iterator[RoutingHarness]:
    harness = RoutingHarness(tmp_path).start()
    yield harness
    harness.stop()


@pytest.fixture
def client(gw: RoutingHarness) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.base_url, api_key=gw.api_key, max_retries=0, timeout=20)


def chat(client: openai.OpenAI, model: str = "duo", extra: dict[str, Any] | None = None, **kw: Any) -> Any:
    return client.chat.completions.with_raw_response.create(
        model=model,
        messages=HI,
        extra_body=ALPHA_FIRST if extra is None else extra,
        **kw,  # type: ignore[arg-type]
    )


def served(raw: Any) -> tuple[str, str, str]:
    completion = raw.parse()
    return completion.model, completion.provider, raw.headers["x-siraya-provider"]  # type: ignore[attr-defined]


def error_of(caught: pytest.ExceptionInfo[openai.APIStatusError]) -> dict[str, Any]:
    body = caught.value.response.json()["error"]
    assert set(body) == {"message", "type", "param", "code"}
    assert UPSTREAM_KEY not in caught.value.response.text
    return body  # type: ignore[no-any-return]


def test_a_500_then_success_is_retried_on_the_same_deployment(
    gw: RoutingHarness, client: openai.OpenAI
) -> None:
    gw.alpha.inject(Fault(path=CHAT, status=500))
    raw = chat(client)
    assert raw.status_code == 200 and served(raw) == ("duo", "alpha", "alpha")
    assert (gw.calls(gw.alpha), gw.calls(gw.beta)) == (2, 0)


def test_a_429_with_retry_after_waits_then_retries(gw: RoutingHarness, client: openai.OpenAI) -> None:
    gw.alpha.inject(Fault(path=CHAT, status=429, error_type="rate_limit_error", headers={"Retry-After": "1"}))
    started = time.monotonic()
    raw = chat(client)
    assert time.monotonic() - started >= 1.0
    assert served(raw) == ("duo", "alpha", "alpha") and (gw.calls(gw.alpha), gw.calls(gw.beta)) == (2, 0)


def test_a_provider_outage_falls_back_to_the_next_deployment(
    gw: RoutingHarness, client: openai.OpenAI
) -> None:
    gw.alpha.inject(Fault(path=CHAT, status=503, times=ALWAYS))
    raw = chat(client)
    assert served(raw) == ("duo", "beta", "beta")
    assert (gw.calls(gw.alpha), gw.calls(gw.beta)) == (2, 1)


def test_garbage_json_is_retried_then_fails_over(gw: RoutingHarness, client: openai.OpenAI) -> None:
    gw.alpha.inject(Fault(path=CHAT, garbage=True, times=ALWAYS))
    assert served(chat(client)) == ("duo", "beta", "beta")
    assert (gw.calls(gw.alpha), gw.calls(gw.beta)) == (2, 1)


def test_every_deployment_down_is_a_502_listing_what_was_tried(
    gw: RoutingHarness, client: openai.OpenAI
) -> None:
    for fake in (gw.alpha, gw.beta):
        fake.inject(Fault(path=CHAT, status=500, times=ALWAYS))
    with pytest.raises(openai.APIStatusError) as caught:
        chat(client)
    assert caught.value.status_code == 502
    body = error_of(caught)
    assert (body["type"], body["code"]) == ("upstream_error", "provider_error")
    # Each deployment's own failure, with the upstream's words and the call tried, retries counted.
    failed = "failed (HTTP 500): injected failure [POST /v1/chat/completions]"
    assert body["message"] == (
        f"Every provider of model 'duo' failed. Tried: alpha/gpt-4o-mini (Provider 'alpha' {failed}) x2; "
        f"beta/gpt-4o-mini (Provider 'beta' {failed}) x2."
    )
    assert (gw.calls(gw.alpha), gw.calls(gw.beta)) == (2, 2)


def test_every_candidate_rate_limited_is_a_429_with_retry_after(
    gw: RoutingHarness, client: openai.OpenAI
) -> None:
    for fake, wait in ((gw.alpha, "30"), (gw.beta, "20")):
        fake.inject(
            Fault(path=CHAT, status=429, error_type="rate_limit_error", headers={"Retry-After": wait})
        )
    with pytest.raises(openai.RateLimitError) as caught:
        chat(client)
    assert caught.value.response.headers["retry-after"] == "20"
    assert error_of(caught)["code"] == "rate_limit_exceeded"
    assert (gw.calls(gw.alpha), gw.calls(gw.beta)) == (1, 1), "a wait past max_retry_after is not waited"


def test_filters_that_match_nothing_are_a_503_naming_the_filter(
    gw: RoutingHarness, client: openai.OpenAI
) -> None:
    served_by = "(it is served by: alpha/gpt-4o-mini, beta/gpt-4o-mini)"
    cases: list[tuple[dict[str, Any], list[str]]] = [
        (
            {"only": ["nobody"]},
            [
                f"provider.only ['nobody'] removed every deployment {served_by}",
                "'nobody' is not a provider of this gateway (its providers: alpha, beta)",
            ],
        ),
        (
            {"ignore": ["alpha", "beta"]},
            [f"provider.ignore ['alpha', 'beta'] removed every deployment {served_by}"],
        ),
        ({"max_price": {"prompt": 0.1}}, [f"provider.max_price removed every deployment {served_by}"]),
        (
            {"order": ["gamma"], "allow_fallbacks": False},
            ["provider.order ['gamma'] names none of its deployments", "'gamma' is not a provider"],
        ),
    ]
    for prefs, phrases in cases:
        with pytest.raises(openai.APIStatusError) as caught:
            chat(client, extra={"provider": prefs})
        assert caught.value.status_code == 503
        body = error_of(caught)
        assert (body["type"], body["code"]) == ("service_unavailable_error", "no_available_provider")
        assert body["message"].startswith("No provider for model 'duo' meets the routing requirements: ")
        for phrase in phrases:
            assert phrase in body["message"], body["message"]
    assert (gw.calls(gw.alpha), gw.calls(gw.beta)) == (0, 0)


def test_required_parameters_no_deployment_supports_are_named(
    gw: RoutingHarness, client: openai.OpenAI
) -> None:
    with pytest.raises(openai.APIStatusError) as caught:
        chat(client, extra={"provider": {"require_parameters": True, "only": ["beta"]}}, seed=3)
    assert caught.value.status_code == 503
    assert (
        "provider.require_parameters removed every deployment: no deployment supports seed"
        in error_of(caught)["message"]
    )


def test_preferences_pick_the_deployment(gw: RoutingHarness, client: openai.OpenAI) -> None:
    assert served(chat(client, extra={"provider": {"sort": "price"}}))[1] == "beta"
    assert served(chat(client, extra={"provider": {"only": ["alpha"]}}))[1] == "alpha"
    assert served(chat(client, extra={"provider": {"max_price": {"prompt": 1}}}))[1] == "beta"
    assert served(chat(client, extra={"provider": {"order": ["beta"]}}))[1] == "beta"
    required = {"provider": {"require_parameters": True, "order": ["beta", "alpha"]}}
    assert served(chat(client, extra=required, seed=3))[1] == "alpha", "beta lists no seed support"
    # Top-level fields work as well as extra_body: httpx sends them as the raw JSON body.
    response = httpx.post(
        f"{gw.base_url}/chat/completions",
        headers={"Authorization": f"Bearer {gw.api_key}"},
        json={"model": "duo", "messages": HI, "provider": {"order": ["beta"]}},
    )
    assert response.json()["provider"] == "beta" and response.headers["x-siraya-provider"] == "beta"


def test_allow_fallbacks_false_stays_on_the_chosen_provider(
    gw: RoutingHarness, client: openai.OpenAI
) -> None:
    gw.alpha.inject(Fault(path=CHAT, status=500, times=ALWAYS))
    with pytest.raises(openai.APIStatusError) as caught:
        chat(client, extra={"provider": {"order": ["alpha"], "allow_fallbacks": False}})
    assert caught.value.status_code == 502 and "beta" not in error_of(caught)["message"]
    assert (gw.calls(gw.alpha), gw.calls(gw.beta)) == (2, 0)


def test_fallback_models_serve_when_the_model_is_down(gw: RoutingHarness, client: openai.OpenAI) -> None:
    gw.alpha.inject(Fault(path=CHAT, status=502, times=ALWAYS))
    raw = chat(client, model="solo-alpha", extra={"models": ["solo-beta"]})
    assert served(raw) == ("solo-beta", "beta", "beta")
    assert (gw.calls(gw.alpha), gw.calls(gw.beta)) == (2, 1)
    cost = raw.parse().usage.cost  # type: ignore[union-attr]
    assert cost == 9.0, "the fallback model's price (3 tokens at $3), not the requested model's ($1)"
    with pytest.raises(openai.NotFoundError):
        chat(client, model="solo-alpha", extra={"models": ["no-such-model"]})


def test_a_hang_past_the_first_token_timeout_fails_over_invisibly(
    gw: RoutingHarness, client: openai.OpenAI
) -> None:
    gw.alpha.inject(Fault(path=CHAT, hang=3))
    stream = client.chat.completions.create(model="timed", messages=HI, stream=True, extra_body=ALPHA_FIRST)
    chunks = list(stream)
    assert {c.provider for c in chunks} == {"beta"} and {c.model for c in chunks} == {"timed"}  # type: ignore[attr-defined]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert (gw.calls(gw.alpha), gw.calls(gw.beta)) == (1, 1)


def test_every_deployment_too_slow_is_a_408(gw: RoutingHarness, client: openai.OpenAI) -> None:
    for fake in (gw.alpha, gw.beta):
        fake.inject(Fault(path=CHAT, hang=3))
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model="timed", messages=HI, stream=True, extra_body=ALPHA_FIRST)
    assert caught.value.status_code == 408
    body = error_of(caught)
    assert (body["type"], body["code"]) == ("timeout_error", "request_timeout")
    assert (
        "alpha/gpt-4o-mini (Provider 'alpha' sent no first token within 0.4s); "
        "beta/gpt-4o-mini (Provider 'beta' sent no first token within 0.4s)"
    ) in body["message"]
    assert (gw.calls(gw.alpha), gw.calls(gw.beta)) == (1, 1)


def test_a_stream_failing_before_its_first_chunk_fails_over(
    gw: RoutingHarness, client: openai.OpenAI
) -> None:
    gw.alpha.inject(Fault(path=CHAT, status=500, times=ALWAYS))
    raw = client.chat.completions.with_raw_response.create(
        model="duo", messages=HI, stream=True, extra_body=ALPHA_FIRST
    )
    assert raw.headers["x-siraya-provider"] == "beta"
    chunks = list(raw.parse())
    assert chunks and {c.provider for c in chunks} == {"beta"}  # type: ignore[attr-defined]
    assert (gw.calls(gw.alpha), gw.calls(gw.beta)) == (2, 1)


@pytest.mark.parametrize(
    "fault", [Fault(path=CHAT, reset_after_chunks=2), Fault(path=CHAT, cut_before_done=True)]
)
def test_a_failure_after_the_first_chunk_ends_the_stream_with_an_error_event(
    gw: RoutingHarness, client: openai.OpenAI, fault: Fault
) -> None:
    gw.alpha.inject(fault)
    seen = []
    with pytest.raises(openai.APIError) as caught:
        for chunk in client.chat.completions.create(
            model="duo", messages=HI, stream=True, extra_body=ALPHA_FIRST
        ):
            seen.append(chunk)
    assert seen and {c.provider for c in seen} == {"alpha"}  # type: ignore[attr-defined]
    assert "alpha" in caught.value.message
    assert (gw.calls(gw.alpha), gw.calls(gw.beta)) == (1, 0), "no retry once a byte reached the client"


def test_an_open_breaker_skips_a_dead_deployment_until_the_probe(
    gw: RoutingHarness, client: openai.OpenAI
) -> None:
    gw.alpha.inject(Fault(path=CHAT, status=500, times=ALWAYS))
    for _ in range(5):
        assert served(chat(client, model="guarded"))[1] == "beta"
    assert gw.calls(gw.alpha) == 2, "the circuit opened after two failures; alpha saw nothing since"
    time.sleep(1.1)
    gw.alpha._faults.clear()
    assert served(chat(client, model="guarded"))[1] == "alpha", "the half-open probe succeeded"
    assert served(chat(client, model="guarded"))[1] == "alpha"
    assert (gw.calls(gw.alpha), gw.calls(gw.beta)) == (4, 5)
    dispatcher = gw.running.gateway.dispatcher  # type: ignore[union-attr]
    assert dispatcher.breakers.opened == 1 and dispatcher.counters.breaker_skips == 3


def test_hedging_takes_the_first_answer_and_cancels_the_slow_one(
    gw: RoutingHarness, client: openai.OpenAI
) -> None:
    gw.alpha.inject(Fault(path=CHAT, hang=5))
    started = time.monotonic()
    raw = chat(client, model="hedged")
    assert time.monotonic() - started < 3
    assert served(raw) == ("hedged", "beta", "beta")
    assert (gw.calls(gw.alpha), gw.calls(gw.beta)) == (1, 1)
    assert gw.running.gateway.dispatcher.counters.hedges == 1  # type: ignore[union-attr]
    gw.alpha.inject(Fault(path=CHAT, hang=5))
    chunks = list(
        client.chat.completions.create(model="hedged", messages=HI, stream=True, extra_body=ALPHA_FIRST)
    )
    assert {c.provider for c in chunks} == {"beta"}  # type: ignore[attr-defined]
    assert gw.running.gateway.dispatcher.counters.hedges == 2  # type: ignore[union-attr]


def test_only_the_winning_hedge_is_billed(gw: RoutingHarness, client: openai.OpenAI) -> None:
    gw.alpha.inject(Fault(path=CHAT, hang=5))
    raw = chat(client, model="hedged")
    completion = raw.parse()
    cost = completion.usage.cost  # type: ignore[union-attr]
    assert cost == 3.0, "1 prompt and 2 completion tokens at $1 each (the fake's deterministic usage)"
    auth = {"Authorization": f"Bearer {gw.api_key}"}
    key = httpx.get(f"{gw.base_url}/key", headers=auth).json()["data"]
    assert (key["usage"], key["reserved"]) == (cost, 0.0)
    generation = httpx.get(
        f"{gw.base_url}/generation", params={"id": raw.headers["x-request-id"]}, headers=auth
    ).json()["data"]
    assert (generation["provider_name"], generation["total_cost"], generation["status"]) == (
        "beta",
        cost,
        "success",
    )


def test_embeddings_fail_over_too(gw: RoutingHarness, client: openai.OpenAI) -> None:
    gw.alpha.inject(Fault(path="/v1/embeddings", status=500, times=ALWAYS))
    raw = client.embeddings.with_raw_response.create(model="embed-duo", input="hi", extra_body=ALPHA_FIRST)
    assert raw.headers["x-siraya-provider"] == "beta" and raw.parse().model == "embed-duo"


def test_the_model_list_shows_the_catalogue(gw: RoutingHarness, client: openai.OpenAI) -> None:
    models = {m.id: m for m in client.models.list()}
    duo = models["duo"].model_dump()
    assert duo["owned_by"] == "siraya" and duo["created"] == 1700000000 and duo["type"] == "chat"
    assert duo["context_window"] == 128000
    assert duo["pricing"] == {"input_per_million": 1.5, "output_per_million": 2.5}
    assert "seed" in duo["supported_parameters"] and "temperature" in duo["supported_parameters"]
    assert models["embed-duo"].model_dump()["type"] == "embedding"
    assert client.models.retrieve("duo-latest").id == "duo", "an alias resolves to its model"
    assert served(chat(client, model="duo-latest"))[0] == "duo"


def test_two_gateways_share_breakers_through_redis(tmp_path: Path) -> None:
    reason = redis_unavailable()
    if reason:
        pytest.skip(reason)
    # A model name no other test uses keeps these breaker keys apart in the shared Redis.
    model = f"gpt-shared-{secrets.token_hex(4)}"
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = RoutingHarness(tmp_path / "a", redis_url=REDIS_URL, upstream_model=model).start()
    second = RoutingHarness(
        tmp_path / "b", redis_url=REDIS_URL, upstream_model=model, upstreams=(first.alpha, first.beta)
    ).start()
    try:
        one = openai.OpenAI(base_url=first.base_url, api_key=first.api_key, max_retries=0)
        two = openai.OpenAI(base_url=second.base_url, api_key=second.api_key, max_retries=0)
        first.alpha.inject(Fault(path=CHAT, status=500, times=ALWAYS))
        for _ in range(2):
            assert served(chat(one, model="guarded"))[1] == "beta"
        assert first.calls(first.alpha) == 2
        for _ in range(3):
            assert served(chat(two, model="guarded"))[1] == "beta"
        assert first.calls(first.alpha) == 2, "the second gateway saw the circuit the first one opened"
    finally:
        second.stop()
        first.stop()
        for provider in ("alpha", "beta"):
            asyncio.run(delete_prefix(f"siraya:breaker:{provider}/{model}"))


def test_responses_fail_over_and_name_the_provider(gw: RoutingHarness, client: openai.OpenAI) -> None:
    gw.alpha.inject(Fault(path=CHAT, status=500, times=ALWAYS))
    raw = client.responses.with_raw_response.create(model="duo", input="hi", extra_body=ALPHA_FIRST)
    response = raw.parse()
    assert (response.model, raw.headers["x-siraya-provider"]) == ("duo", "beta")
    assert response.provider == "beta"  # type: ignore[attr-defined]
    raw_stream = client.responses.with_raw_response.create(
        model="duo", input="hi", stream=True, extra_body=ALPHA_FIRST
    )
    assert raw_stream.headers["x-siraya-provider"] == "beta"
    events = list(raw_stream.parse())
    assert events[-1].type == "response.completed"
    assert (gw.calls(gw.alpha), gw.calls(gw.beta)) == (4, 2)


def test_a_client_that_leaves_cancels_the_upstream_and_the_losing_hedge(gw: RoutingHarness) -> None:
    gw.alpha.inject(Fault(path=CHAT, hang=5))
    gw.beta.chunk_delay = 0.3
    with httpx.stream(
        "POST",
        f"{gw.base_url}/chat/completions",
        headers={"Authorization": f"Bearer {gw.api_key}"},
        json={"model": "hedged", "messages": HI, "stream": True, **ALPHA_FIRST},
        timeout=10,
    ) as response:
        assert response.headers["x-siraya-provider"] == "beta"
        first = next(response.iter_lines())
        assert first.startswith("data: ")
    gw.run(gw.beta.wait_closed_early(1))
    assert gw.alpha.abandoned_hangs == 1, "the losing hedge's upstream request was cancelled"
    assert (gw.calls(gw.alpha), gw.calls(gw.beta)) == (1, 1)
