"""Every stream is charged what its upstream reported, whether or not the client asked for usage.

The OpenAI SDK does not set `stream_options.include_usage`, so most streams arrive without it. The
gateway still asks an OpenAI-protocol upstream for usage, reads Anthropic's and Gemini's (which they
always send), settles the key and the ledger with it, and shows the client a usage chunk only when
it asked: then exactly one, carrying the cost. A client that leaves mid-stream is charged the
prompt (Anthropic's and Gemini's own count, else the tokenizer's) and the text relayed, counted.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import httpx
import orjson
import pytest

from siraya.router.v1 import chat_pb2, chat_pb2_grpc
from tests.e2e.conformance import sse_frames
from tests.e2e.metering_harness import PROVIDERS, MeteringHarness, cost_of
from tests.fakes.anthropic_upstream import ScriptedMessage
from tests.fakes.gemini_upstream import GeminiReply
from tests.fakes.openai_upstream import ScriptedReply
from tests.openapi_schema import assert_matches_schema

PROMPT_TOKENS, COMPLETION_TOKENS = 1000, 500
EXPECTED_COST = cost_of(PROMPT_TOKENS, COMPLETION_TOKENS)
TEXT = "the quick brown fox jumps over the lazy dog"
LONG_TEXT = " ".join(f"word{i}" for i in range(40))
MESSAGES: Any = [{"role": "user", "content": "hi"}]
CHAT_MODELS = ("gpt-priced", "claude-priced", "gemini-priced")


@pytest.fixture(scope="module", params=["in_process", "grpc_hop"])
def harness(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MeteringHarness]:
    running = MeteringHarness(
        tmp_path_factory.mktemp(f"metering-{request.param}"), in_process=request.param == "in_process"
    )
    running.start()
    yield running
    running.stop()


def script(harness: MeteringHarness, model: str, text: str = TEXT) -> None:
    """The next reply of the model's upstream: `text`, with 1000 prompt and 500 completion tokens reported."""
    if model.startswith("gpt"):
        usage = {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": COMPLETION_TOKENS}
        harness.openai.script_chat(ScriptedReply(content=text, usage=usage))
    elif model.startswith("claude"):
        harness.anthropic.script(
            ScriptedMessage(
                content=[{"type": "text", "text": text}],
                usage={"input_tokens": PROMPT_TOKENS, "output_tokens": COMPLETION_TOKENS},
            )
        )
    else:
        usage = {"promptTokenCount": PROMPT_TOKENS, "candidatesTokenCount": COMPLETION_TOKENS}
        harness.gemini.script(GeminiReply(text=text, usage=usage))


def generation(harness: MeteringHarness, secret: str, request_id: str) -> dict[str, Any]:
    """The ledger record of a request (GET /v1/generation), waiting for the batched write."""
    deadline = time.monotonic() + 10
    while True:
        response = httpx.get(
            f"{harness.base_url}/generation",
            params={"id": request_id},
            headers={"Authorization": f"Bearer {secret}"},
        )
        if response.status_code != 404 or time.monotonic() > deadline:
            assert response.status_code == 200, response.text
            return response.json()["data"]  # type: ignore[no-any-return]
        time.sleep(0.05)


def assert_charged(
    harness: MeteringHarness,
    secret: str,
    request_id: str,
    prompt: int,
    completion: int,
    status: str = "success",
) -> dict[str, Any]:
    """The ledger and the key were charged exactly price x these tokens, and nothing is left reserved."""
    data = generation(harness, secret, request_id)
    assert data["status"] == status and data["streamed"] is True
    assert (data["tokens_prompt"], data["tokens_completion"]) == (prompt, completion)
    assert data["total_cost"] == pytest.approx(cost_of(prompt, completion), abs=1e-12)
    key = harness.key_data(secret)
    assert key["usage"] == pytest.approx(cost_of(prompt, completion), abs=1e-12) and key["reserved"] == 0
    return data


def stream_chat(harness: MeteringHarness, secret: str, **body: Any) -> tuple[str, list[dict[str, Any]]]:
    """(request id, every chunk as the JSON the gateway wrote), through the OpenAI SDK."""
    client = harness.sdk(secret)
    with client.chat.completions.with_streaming_response.create(
        messages=MESSAGES, stream=True, max_tokens=600, **body
    ) as response:
        request_id = response.headers["x-request-id"]
        raw = response.read()
    frames = sse_frames(raw)
    assert frames[-1] == (None, b"[DONE]"), frames[-3:]
    chunks = [orjson.loads(data) for _, data in frames[:-1]]
    for chunk in chunks:
        assert_matches_schema(chunk, "CreateChatCompletionStreamResponse")
    return request_id, chunks


def text_of(chunks: list[dict[str, Any]]) -> str:
    return "".join(chunk["choices"][0]["delta"].get("content") or "" for chunk in chunks if chunk["choices"])


@pytest.mark.parametrize("model", CHAT_MODELS)
def test_a_stream_without_include_usage_is_charged_what_the_upstream_reported(
    harness: MeteringHarness, model: str
) -> None:
    secret = harness.new_key()
    script(harness, model)
    before = harness.scrape()
    request_id, chunks = stream_chat(harness, secret, model=model)
    assert text_of(chunks) == TEXT
    # What OpenAI sends without include_usage: no usage chunk, and no `usage` key on any chunk.
    assert all("usage" not in chunk for chunk in chunks), [c for c in chunks if "usage" in c]
    assert all(chunk["choices"] for chunk in chunks)
    assert_charged(harness, secret, request_id, PROMPT_TOKENS, COMPLETION_TOKENS)
    labels = {"model": model, "provider": PROVIDERS[model]}
    counted = harness.metric_delta(before, "siraya_tokens_total", type="input", **labels)
    assert counted == PROMPT_TOKENS
    assert harness.metric_delta(before, "siraya_tokens_total", type="output", **labels) == COMPLETION_TOKENS
    assert harness.metric_delta(before, "siraya_cost_usd_total", **labels) == pytest.approx(EXPECTED_COST)
    if model.startswith("gpt"):
        sent = harness.openai.requests_to("/v1/chat/completions")[-1].json
        assert sent["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize("model", CHAT_MODELS)
def test_a_stream_with_include_usage_gets_exactly_one_usage_chunk(
    harness: MeteringHarness, model: str
) -> None:
    secret = harness.new_key()
    script(harness, model)
    request_id, chunks = stream_chat(harness, secret, model=model, stream_options={"include_usage": True})
    assert text_of(chunks) == TEXT
    *content, last = chunks
    # As OpenAI: `usage: null` on every chunk but the last, which has no choices and the usage.
    assert all("usage" in chunk and chunk["usage"] is None for chunk in content)
    assert last["choices"] == []
    usage = last["usage"]
    assert (usage["prompt_tokens"], usage["completion_tokens"]) == (PROMPT_TOKENS, COMPLETION_TOKENS)
    assert usage["cost"] == pytest.approx(EXPECTED_COST, abs=1e-12)
    assert_charged(harness, secret, request_id, PROMPT_TOKENS, COMPLETION_TOKENS)


@pytest.mark.parametrize("include_usage", [False, True], ids=["plain", "include_usage"])
def test_usage_sent_on_the_finish_chunk_is_charged_and_shown_as_openai_does(
    harness: MeteringHarness, include_usage: bool
) -> None:
    """An upstream that puts its usage on the finish chunk (no usage chunk of its own): charged
    exactly; the client sees no usage unless it asked, and then one usage chunk at the end. (This
    upstream writes no `usage: null` on its chunks, and the relay adds none.)"""
    secret = harness.new_key()
    usage = {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": COMPLETION_TOKENS}
    harness.openai.script_chat(ScriptedReply(content=TEXT, usage=usage, usage_on_finish=True))
    options = {"stream_options": {"include_usage": True}} if include_usage else {}
    request_id, chunks = stream_chat(harness, secret, model="gpt-priced", **options)
    assert text_of(chunks) == TEXT
    if include_usage:
        *content, last = chunks
        assert all(chunk.get("usage") is None for chunk in content) and last["choices"] == []
        assert (last["usage"]["prompt_tokens"], last["usage"]["completion_tokens"]) == (
            PROMPT_TOKENS,
            COMPLETION_TOKENS,
        )
        assert last["usage"]["cost"] == pytest.approx(EXPECTED_COST, abs=1e-12)
    else:
        assert all("usage" not in chunk for chunk in chunks)
    assert_charged(harness, secret, request_id, PROMPT_TOKENS, COMPLETION_TOKENS)


@pytest.mark.parametrize("model", ("gpt-priced", "gpt-via-chat", "claude-priced", "gemini-priced"))
def test_a_streamed_response_is_charged_what_the_upstream_reported(
    harness: MeteringHarness, model: str
) -> None:
    secret = harness.new_key()
    script(harness, model)
    raw = harness.sdk(secret).responses.with_raw_response.create(
        model=model, input="hi", max_output_tokens=600, stream=True
    )
    events = list(raw.parse())
    completed = [event for event in events if event.type == "response.completed"]
    assert len(completed) == 1
    usage = completed[0].response.usage  # type: ignore[union-attr]
    assert usage is not None and (usage.input_tokens, usage.output_tokens) == (
        PROMPT_TOKENS,
        COMPLETION_TOKENS,
    )
    assert usage.model_extra is not None
    assert usage.model_extra["cost"] == pytest.approx(EXPECTED_COST, abs=1e-12)
    assert_charged(harness, secret, raw.headers["x-request-id"], PROMPT_TOKENS, COMPLETION_TOKENS)
    if model == "gpt-via-chat":
        sent = harness.openai.requests_to("/v1/chat/completions")[-1].json
        assert sent["stream_options"] == {"include_usage": True}


def leave_midway(
    harness: MeteringHarness,
    secret: str,
    model: str,
    path: str,
    body: dict[str, Any],
    seen: Callable[[str], bool],
) -> str:
    """Start a slow stream, read the first content event, hang up; the request id."""
    script(harness, model, LONG_TEXT)
    harness.set_stream_delay(0.1)
    try:
        with (
            httpx.Client(timeout=20) as client,
            client.stream(
                "POST",
                f"{harness.base_url}{path}",
                headers={"Authorization": f"Bearer {secret}"},
                json={"model": model, "stream": True, **body},
            ) as response,
        ):
            assert response.status_code == 200
            request_id = response.headers["x-request-id"]
            count = 0
            for line in response.iter_lines():
                if line.startswith("data: ") and seen(line):
                    count += 1
                    if count == 1:
                        break
        # Wait for the ledger record while the upstream is still slow: a settlement at the
        # stream's real end would show the full usage.
        generation(harness, secret, request_id)
    finally:
        harness.set_stream_delay(0.0)
    return request_id


@pytest.mark.parametrize("model", CHAT_MODELS)
@pytest.mark.parametrize("include_usage", [False, True], ids=["plain", "include_usage"])
def test_a_cancelled_stream_is_charged_the_prompt_and_what_was_relayed(
    harness: MeteringHarness, model: str, include_usage: bool
) -> None:
    secret = harness.new_key()
    body: dict[str, Any] = {"messages": MESSAGES, "max_tokens": 600}
    if include_usage:
        body["stream_options"] = {"include_usage": True}
    request_id = leave_midway(
        harness,
        secret,
        model,
        "/chat/completions",
        body,
        lambda line: '"content":"word' in line or '"content":" word' in line,
    )
    data = generation(harness, secret, request_id)
    assert data["status"] == "cancelled" and data["streamed"] is True
    # Anthropic's message_start and Gemini's first usageMetadata give the prompt's own count;
    # an OpenAI-protocol upstream reports nothing before its end, so the gateway's count stands.
    if model.startswith("gpt"):
        assert 0 < data["tokens_prompt"] < PROMPT_TOKENS
    else:
        assert data["tokens_prompt"] == PROMPT_TOKENS
    assert 0 < data["tokens_completion"] < COMPLETION_TOKENS
    assert_charged(harness, secret, request_id, data["tokens_prompt"], data["tokens_completion"], "cancelled")


@pytest.mark.parametrize("model", ("gpt-priced", "claude-priced"))
def test_a_cancelled_response_stream_is_charged_the_prompt_and_what_was_relayed(
    harness: MeteringHarness, model: str
) -> None:
    secret = harness.new_key()
    request_id = leave_midway(
        harness,
        secret,
        model,
        "/responses",
        {"input": "hi", "max_output_tokens": 600},
        lambda line: "output_text.delta" in line,
    )
    data = generation(harness, secret, request_id)
    assert data["status"] == "cancelled"
    assert 0 < data["tokens_prompt"] and 0 < data["tokens_completion"] < COMPLETION_TOKENS
    assert_charged(harness, secret, request_id, data["tokens_prompt"], data["tokens_completion"], "cancelled")


async def proto_stream(
    harness: MeteringHarness, secret: str, params: chat_pb2.ChatCompletionParams
) -> tuple[str, list[chat_pb2.ChatCompletionChunk]]:
    """The gateway's request id and every chunk of the gRPC API's own (proto) chat stream."""
    async with grpc.aio.insecure_channel(harness.grpc_target) as channel:
        stub = chat_pb2_grpc.ChatServiceStub(channel)
        call = stub.StreamChatCompletion(
            chat_pb2.StreamChatCompletionRequest(params=params),
            metadata=(("authorization", f"Bearer {secret}"),),
        )
        chunks = [reply.chunk async for reply in call]
        return str(dict(await call.initial_metadata())["x-request-id"]), chunks


@pytest.mark.parametrize("model", CHAT_MODELS)
@pytest.mark.parametrize("include_usage", [False, True], ids=["plain", "include_usage"])
def test_a_grpc_proto_stream_shows_usage_only_when_asked_and_is_charged_either_way(
    harness: MeteringHarness, model: str, include_usage: bool
) -> None:
    secret = harness.new_key()
    script(harness, model)
    params = chat_pb2.ChatCompletionParams(
        model=model, max_tokens=600, messages=[chat_pb2.ChatMessage(role=chat_pb2.CHAT_ROLE_USER, text="hi")]
    )
    if include_usage:
        params.stream_options.include_usage = True
    request_id, received = asyncio.run(proto_stream(harness, secret, params))
    with_usage = [chunk for chunk in received if chunk.HasField("usage")]
    if include_usage:
        assert len(with_usage) == 1 and with_usage[0] is received[-1] and not received[-1].choices
        assert received[-1].usage.cost == pytest.approx(EXPECTED_COST, abs=1e-12)
    else:
        assert with_usage == []
    assert "".join(c.choices[0].delta.content for c in received if c.choices) == TEXT
    assert_charged(harness, secret, request_id, PROMPT_TOKENS, COMPLETION_TOKENS)
