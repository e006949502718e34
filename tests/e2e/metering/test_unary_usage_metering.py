"""Unary answers are charged the upstream's own usage, and the request's estimate only when it sent none.

Gemini's batchEmbedContents returns no token count at all: without the fallback those embeddings
would cost nothing.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.metering.test_stream_usage_metering import generation
from tests.e2e.metering_harness import MeteringHarness, cost_of

INPUTS = ["the quick brown fox jumps over the lazy dog", "a second sentence to embed"]


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MeteringHarness]:
    running = MeteringHarness(tmp_path_factory.mktemp("unary-metering"), in_process=True)
    running.start()
    yield running
    running.stop()


def test_openai_embeddings_are_charged_the_reported_prompt_tokens(harness: MeteringHarness) -> None:
    secret = harness.new_key()
    raw = harness.sdk(secret).embeddings.with_raw_response.create(model="gpt-embed", input=INPUTS)
    reported = raw.parse().usage.prompt_tokens
    assert reported > 0
    data = generation(harness, secret, raw.headers["x-request-id"])
    assert (data["tokens_prompt"], data["tokens_completion"]) == (reported, 0)
    assert data["total_cost"] == pytest.approx(cost_of(reported, 0), abs=1e-12)


def test_gemini_embeddings_without_a_token_count_are_charged_the_estimate(harness: MeteringHarness) -> None:
    secret = harness.new_key()
    raw = harness.sdk(secret).embeddings.with_raw_response.create(model="gemini-embed", input=INPUTS)
    assert len(raw.parse().data) == 2
    assert "usageMetadata" not in harness.gemini.requests_to(":batchEmbedContents")[-1].json
    data = generation(harness, secret, raw.headers["x-request-id"])
    # bytes/4 of the request: at least the inputs' own length / 4, never zero.
    assert data["tokens_prompt"] >= sum(len(text) for text in INPUTS) // 4
    assert data["total_cost"] == pytest.approx(cost_of(data["tokens_prompt"], 0), abs=1e-12)
    assert harness.key_data(secret)["usage"] == pytest.approx(data["total_cost"], abs=1e-12)
