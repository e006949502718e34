"""The Anthropic Messages front door end to end: the official `anthropic` SDK -> the bridge -> the
gateway's one chat pipeline -> a fake Anthropic, OpenAI-compatible or Gemini upstream, in both modes
(in-process stub and the loopback gRPC hop)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import grpc
import httpx
import orjson
import pytest

from siraya.router.v1 import messages_pb2, messages_pb2_grpc
from tests.e2e.messages_harness import (
    ANTHROPIC_KEY,
    CLAUDE_UPSTREAM_MODEL,
    GEMINI_KEY,
    MAX_BODY_BYTES,
    OPENAI_KEY,
    MessagesGatewayHarness,
)
from tests.fakes.anthropic_upstream import SIGNATURE, THINKING_TEXT, AnthropicFault, ScriptedMessage
from tests.fakes.gemini_upstream import GeminiFault, GeminiReply, ScriptedCall
from tests.fakes.openai_upstream import Fault

MODELS = ("claude-sonnet", "gpt-test", "gemini-flash")
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 24
PNG_B64 = base64.b64encode(PNG).decode()
PDF_B64 = base64.b64encode(b"%PDF-1.4\n1 0 obj << /Type /Page >>\n%%EOF").decode()
WEATHER_SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "celsius": {"type": "integer"}},
    "required": ["city", "celsius"],
}
WEATHER_TOOL: Any = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": WEATHER_SCHEMA,
}


@pytest.fixture(scope="module", params=["in_process", "grpc_hop"])
def gateway(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MessagesGatewayHarness]:
    tmp: Path = tmp_path_factory.mktemp(f"messages-{request.param}")
    running = MessagesGatewayHarness(tmp, in_process=request.param == "in_process")
    running.start()
    yield running
    running.stop()


def sdk(gateway: MessagesGatewayHarness, key: str | None = None) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        base_url=gateway.root_url, api_key=key or gateway.api_key, max_retries=0, timeout=20
    )


@pytest.fixture
def client(gateway: MessagesGatewayHarness) -> anthropic.Anthropic:
    return sdk(gateway)


@pytest.fixture(params=MODELS)
def model(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def echoed(model: str, said: str) -> str:
    """What each fake answers to a plain user turn."""
    if model.startswith("claude"):
        return f"Hello from {CLAUDE_UPSTREAM_MODEL}! You said: {said}"
    return f"echo: {said}"


def text_of(message: Any) -> str:
    return "".join(block.text for block in message.content if block.type == "text")


def assert_anthropic_event_order(types: list[str], indexes: list[int | None]) -> None:
    """message_start; blocks 0..n, each start, deltas, stop; message_delta; message_stop (pings anywhere)."""
    assert types[0] == "message_start" and types[-2:] == ["message_delta", "message_stop"]
    expected_index = 0
    open_index: int | None = None
    for kind, index in zip(types[1:-2], indexes[1:-2], strict=True):
        if kind == "ping":
            continue
        if kind == "content_block_start":
            assert open_index is None and index == expected_index
            open_index = index
        elif kind == "content_block_delta":
            assert index == open_index
        elif kind == "content_block_stop":
            assert index == open_index
            open_index, expected_index = None, expected_index + 1
        else:
            raise AssertionError(f"unexpected event {kind}")
    assert open_index is None


# --- plain, system, multi-turn ----------------------------------------------------------------


def test_plain_message(client: anthropic.Anthropic, gateway: MessagesGatewayHarness, model: str) -> None:
    message = client.messages.create(
        model=model, max_tokens=64, messages=[{"role": "user", "content": "hello there"}]
    )
    assert (message.type, message.role, message.model) == ("message", "assistant", model)
    assert [block.type for block in message.content] == ["text"]
    assert text_of(message) == echoed(model, "hello there")
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0
    assert message._request_id  # the gateway's id, in the header Anthropic's SDKs read


def test_system_blocks_and_multi_turn(
    client: anthropic.Anthropic, gateway: MessagesGatewayHarness, model: str
) -> None:
    message = client.messages.create(
        model=model,
        max_tokens=64,
        system=[{"type": "text", "text": "Be brief."}, {"type": "text", "text": "Answer in English."}],
        messages=[
            {"role": "user", "content": "first question"},
            {"role": "assistant", "content": [{"type": "text", "text": "first answer"}]},
            {"role": "user", "content": [{"type": "text", "text": "second question"}]},
        ],
        temperature=0.3,
        stop_sequences=["NEVER"],
    )
    assert text_of(message) == echoed(model, "second question")
    raw = gateway.upstream_raw(model).decode()
    for text in ("Be brief.", "Answer in English.", "first question", "first answer", "second question"):
        assert text in raw
    body = gateway.upstream_body(model)
    if model.startswith("claude"):
        assert body["system"] == [
            {"type": "text", "text": "Be brief."},
            {"type": "text", "text": "Answer in English."},
        ]
        assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
        assert (body["temperature"], body["stop_sequences"], body["max_tokens"]) == (0.3, ["NEVER"], 64)
    elif model.startswith("gpt"):
        assert [m["role"] for m in body["messages"]] == ["system", "user", "assistant", "user"]
        assert (body["temperature"], body["stop"], body["max_completion_tokens"]) == (0.3, ["NEVER"], 64)
    else:
        assert [c["role"] for c in body["contents"]] == ["user", "model", "user"]
        assert "systemInstruction" in body


# --- streaming --------------------------------------------------------------------------------


def test_streaming_follows_anthropics_event_order(client: anthropic.Anthropic, model: str) -> None:
    events = list(
        client.messages.create(
            model=model, max_tokens=64, messages=[{"role": "user", "content": "stream this"}], stream=True
        )
    )
    types: list[str] = [event.type for event in events]
    assert_anthropic_event_order(types, [getattr(event, "index", None) for event in events])
    assert "ping" not in types  # the SDK drops pings; test_raw_sse_frames_name_their_events sees them
    text = "".join(
        e.delta.text for e in events if e.type == "content_block_delta" and e.delta.type == "text_delta"
    )
    assert text == echoed(model, "stream this")
    start, finish = events[0], events[-2]
    assert start.type == "message_start" and start.message.model == model
    assert finish.type == "message_delta" and finish.delta.stop_reason == "end_turn"
    assert finish.usage.output_tokens > 0


def test_stream_helper_builds_the_same_message(client: anthropic.Anthropic, model: str) -> None:
    with client.messages.stream(
        model=model, max_tokens=64, messages=[{"role": "user", "content": "same answer"}]
    ) as stream:
        streamed_text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert streamed_text == text_of(final) == echoed(model, "same answer")
    assert final.stop_reason == "end_turn" and final.usage.input_tokens > 0


def test_raw_sse_frames_name_their_events(gateway: MessagesGatewayHarness) -> None:
    body = {
        "model": "gpt-test",
        "max_tokens": 32,
        "stream": True,
        "messages": [{"role": "user", "content": "raw"}],
    }
    headers = {"x-api-key": gateway.api_key, "anthropic-version": "2023-06-01"}
    response = httpx.post(gateway.root_url + "/v1/messages", json=body, headers=headers, timeout=20)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["x-siraya-provider"] == "openai"
    frames = response.text.strip().split("\n\n")
    names = []
    for frame in frames:
        name, data = frame.split("\n")
        assert name == "event: " + orjson.loads(data.removeprefix("data: "))["type"]
        names.append(name.removeprefix("event: "))
    assert names[:3] == ["message_start", "ping", "content_block_start"]
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert "[DONE]" not in response.text


# --- tools ------------------------------------------------------------------------------------


def test_tool_loop(client: anthropic.Anthropic, gateway: MessagesGatewayHarness, model: str) -> None:
    messages: list[Any] = [{"role": "user", "content": "What is the weather in Paris?"}]
    first = client.messages.create(
        model=model, max_tokens=256, messages=messages, tools=[WEATHER_TOOL], tool_choice={"type": "any"}
    )
    assert first.stop_reason == "tool_use"
    uses = [block for block in first.content if block.type == "tool_use"]
    assert len(uses) == 1 and uses[0].name == "get_weather"
    assert set(uses[0].input) == {"city", "celsius"}  # type: ignore[arg-type]
    call_id = uses[0].id
    messages += [
        {"role": "assistant", "content": first.content},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": call_id, "content": "18C and sunny"}],
        },
    ]
    second = client.messages.create(model=model, max_tokens=256, messages=messages, tools=[WEATHER_TOOL])
    assert second.stop_reason == "end_turn"
    assert "18C and sunny" in text_of(second)
    body = gateway.upstream_body(model)
    if model.startswith("claude"):
        assert body["messages"][1]["content"][-1]["id"] == call_id
        assert body["messages"][2]["content"][0]["tool_use_id"] == call_id
    elif model.startswith("gpt"):
        assert body["messages"][1]["tool_calls"][0]["id"] == call_id
        assert body["messages"][2] == {"role": "tool", "content": "18C and sunny", "tool_call_id": call_id}


def test_streamed_tool_input(client: anthropic.Anthropic, model: str) -> None:
    unary = client.messages.create(
        model=model,
        max_tokens=256,
        messages=[{"role": "user", "content": "weather?"}],
        tools=[WEATHER_TOOL],
        tool_choice={"type": "any"},
    )
    events = list(
        client.messages.create(
            model=model,
            max_tokens=256,
            messages=[{"role": "user", "content": "weather?"}],
            tools=[WEATHER_TOOL],
            tool_choice={"type": "any"},
            stream=True,
        )
    )
    types: list[str] = [event.type for event in events]
    assert_anthropic_event_order(types, [getattr(event, "index", None) for event in events])
    starts = [e for e in events if e.type == "content_block_start" and e.content_block.type == "tool_use"]
    assert len(starts) == 1 and starts[0].content_block.name == "get_weather"  # type: ignore[union-attr]
    fragments = [
        e.delta.partial_json
        for e in events
        if e.type == "content_block_delta" and e.delta.type == "input_json_delta"
    ]
    assert fragments and orjson.loads("".join(fragments)) == unary.content[-1].input  # type: ignore[union-attr]
    assert events[-2].delta.stop_reason == "tool_use"  # type: ignore[union-attr]


GEMINI_SIGNATURE = "Z2VtaW5pLXRob3VnaHQtc2lnbmF0dXJl"
GEMINI_THOUGHTS = "The user wants the weather: I will call get_weather."


def arrange_thinking(gateway: MessagesGatewayHarness, model: str, prompt: str) -> tuple[str, str]:
    """(the thinking the first turn shows, its signature): each fake's own way of thinking.

    Claude signs its thinking block; the OpenAI-compatible fake is a reasoning model that sends
    `reasoning_content` and signs nothing; Gemini sends thought parts and a thoughtSignature on its
    function call (scripted here, since the fake only calls a function on its own in ANY mode).
    """
    if model.startswith("claude"):
        return THINKING_TEXT, SIGNATURE
    if model.startswith("gpt"):
        return f"Thinking about: {prompt}", ""
    call = ScriptedCall("get_weather", {"city": "Paris", "celsius": 18}, thought_signature=GEMINI_SIGNATURE)
    gateway.gemini.script(GeminiReply(thoughts=GEMINI_THOUGHTS, calls=[call]))
    return GEMINI_THOUGHTS, GEMINI_SIGNATURE


def assert_thinking_went_back(
    gateway: MessagesGatewayHarness, model: str, thinking: str, signature: str, call_id: str
) -> None:
    """The second turn reached the upstream with the first turn's thinking as that upstream wants it."""
    body = gateway.upstream_body(model)
    if model.startswith("claude"):
        # The fake checks the signature of the thinking block that comes back, as Anthropic does.
        sent = body["messages"][1]["content"]
        assert sent[0] == {"type": "thinking", "thinking": thinking, "signature": signature}
        assert sent[1]["id"] == call_id
    elif model.startswith("gpt"):
        turn = body["messages"][1]
        assert turn["reasoning"] == thinking and turn["tool_calls"][0]["id"] == call_id
        assert body["messages"][2]["tool_call_id"] == call_id
    else:
        # A Gemini 3 model refuses the turn (the fake does too) unless the call carries its signature.
        calls = [part for part in body["contents"][1]["parts"] if "functionCall" in part]
        assert calls[0]["thoughtSignature"] == signature
        assert body["contents"][2]["parts"][0]["functionResponse"]["name"] == "get_weather"


def test_thinking_signature_survives_a_tool_loop(
    client: anthropic.Anthropic, gateway: MessagesGatewayHarness, model: str
) -> None:
    for stream in (False, True):
        prompt = f"Think, then check the weather ({'streamed' if stream else 'unary'})."
        messages: list[Any] = [{"role": "user", "content": prompt}]
        kwargs: Any = {
            "model": model,
            "max_tokens": 4096,
            "tools": [WEATHER_TOOL],
            "thinking": {"type": "enabled", "budget_tokens": 2048},
        }
        thinking_text, signature = arrange_thinking(gateway, model, prompt)
        if stream:
            with client.messages.stream(messages=messages, **kwargs) as live:
                deltas = [e.delta.type for e in live if e.type == "content_block_delta"]
                first = live.get_final_message()
            assert "thinking_delta" in deltas and "input_json_delta" in deltas
            assert ("signature_delta" in deltas) == bool(signature)
        else:
            first = client.messages.create(messages=messages, **kwargs)
        assert [block.type for block in first.content] == ["thinking", "tool_use"]
        thinking = first.content[0]
        assert (thinking.thinking, thinking.signature) == (thinking_text, signature)  # type: ignore[union-attr]
        call_id = first.content[1].id  # type: ignore[union-attr]
        assert "__ts_" not in call_id, "the signature is the thinking block's, not part of the id"
        assert first.stop_reason == "tool_use"
        messages += [
            {"role": "assistant", "content": first.content},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call_id, "content": "18C"}]},
        ]
        second = client.messages.create(messages=messages, **kwargs)
        assert second.stop_reason == "end_turn"
        assert "18C" in text_of(second)
        assert_thinking_went_back(gateway, model, thinking_text, signature, call_id)


# --- media ------------------------------------------------------------------------------------


def test_an_image(client: anthropic.Anthropic, gateway: MessagesGatewayHarness, model: str) -> None:
    message = client.messages.create(
        model=model,
        max_tokens=64,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is this?"},
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": PNG_B64},
                    },
                ],
            }
        ],
    )
    assert PNG_B64 in gateway.upstream_raw(model).decode()
    if model.startswith("claude"):
        assert text_of(message).endswith("[1 image(s)]")
    elif model.startswith("gpt"):
        assert text_of(message) == "I see 1 image(s): image/png"
    else:
        parts = gateway.upstream_body(model)["contents"][0]["parts"]
        assert {"inlineData": {"mimeType": "image/png", "data": PNG_B64}} in parts


def test_a_pdf(client: anthropic.Anthropic, gateway: MessagesGatewayHarness, model: str) -> None:
    message = client.messages.create(
        model=model,
        max_tokens=64,
        messages=[
            {
                "role": "user",
                "content": [
                    {
                        "type": "document",
                        "source": {"type": "base64", "media_type": "application/pdf", "data": PDF_B64},
                    },
                    {"type": "text", "text": "Summarise it."},
                ],
            }
        ],
    )
    assert PDF_B64 in gateway.upstream_raw(model).decode()
    if model.startswith("claude"):
        assert text_of(message).endswith("[1 document(s)]")


# --- count_tokens -----------------------------------------------------------------------------


def test_count_tokens(client: anthropic.Anthropic, gateway: MessagesGatewayHarness, model: str) -> None:
    before = len(gateway.anthropic.requests), len(gateway.openai.requests), len(gateway.gemini.requests)
    short = client.messages.count_tokens(model=model, messages=[{"role": "user", "content": "hi"}])
    long = client.messages.count_tokens(
        model=model,
        system="Be brief.",
        messages=[{"role": "user", "content": "hi " * 400}],
        tools=[WEATHER_TOOL],
    )
    assert 0 < short.input_tokens < long.input_tokens
    # An estimate made by the gateway: no upstream is asked.
    assert (
        len(gateway.anthropic.requests),
        len(gateway.openai.requests),
        len(gateway.gemini.requests),
    ) == before


# --- errors -----------------------------------------------------------------------------------


def error_of(caught: pytest.ExceptionInfo[anthropic.APIStatusError]) -> tuple[int, str, str]:
    body = caught.value.body
    assert isinstance(body, dict) and body["type"] == "error"
    return caught.value.status_code, body["error"]["type"], body["error"]["message"]


def test_a_bad_key_is_401(gateway: MessagesGatewayHarness) -> None:
    with pytest.raises(anthropic.AuthenticationError) as caught:
        sdk(gateway, "sk-siraya-wrong").messages.create(
            model="gpt-test", max_tokens=8, messages=[{"role": "user", "content": "x"}]
        )
    assert error_of(caught)[:2] == (401, "authentication_error")  # type: ignore[arg-type]


def test_bearer_auth_works_like_x_api_key(gateway: MessagesGatewayHarness) -> None:
    client = anthropic.Anthropic(
        base_url=gateway.root_url, api_key=None, auth_token=gateway.api_key, max_retries=0
    )
    message = client.messages.create(
        model="gpt-test", max_tokens=8, messages=[{"role": "user", "content": "bearer"}]
    )
    assert text_of(message) == "echo: bearer"


def test_an_unknown_model_is_404(client: anthropic.Anthropic) -> None:
    for stream in (False, True):
        with pytest.raises(anthropic.NotFoundError) as caught:
            client.messages.create(
                model="no-such-model",
                max_tokens=8,
                messages=[{"role": "user", "content": "x"}],
                stream=stream,
            )
        assert error_of(caught)[:2] == (404, "not_found_error")  # type: ignore[arg-type]
    with pytest.raises(anthropic.NotFoundError):
        client.messages.count_tokens(model="no-such-model", messages=[{"role": "user", "content": "x"}])


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"model": "gpt-test", "messages": [{"role": "user", "content": "x"}]}, "max_tokens"),
        (
            {"model": "gpt-test", "max_tokens": 8, "messages": [{"role": "system", "content": "x"}]},
            "messages.0.role",
        ),
        (
            {
                "model": "gpt-test",
                "max_tokens": 8,
                "messages": [{"role": "user", "content": "x"}],
                "tools": [{"type": "web_search_20250305", "name": "web_search"}],
            },
            "tools.0.type",
        ),
    ],
)
def test_a_bad_body_is_400(gateway: MessagesGatewayHarness, body: dict[str, Any], says: str) -> None:
    headers = {"x-api-key": gateway.api_key}
    response = httpx.post(gateway.root_url + "/v1/messages", json=body, headers=headers, timeout=20)
    assert response.status_code == 400
    error = response.json()
    assert error["type"] == "error" and error["error"]["type"] == "invalid_request_error"
    assert says in error["error"]["message"]
    assert error["request_id"] == response.headers["x-request-id"]
    broken = httpx.post(gateway.root_url + "/v1/messages", content=b"{not json", headers=headers, timeout=20)
    assert broken.status_code == 400 and broken.json()["error"]["type"] == "invalid_request_error"


def test_a_body_near_the_limit_is_served_in_both_modes(client: anthropic.Anthropic, model: str) -> None:
    # Over the gRPC hop the body travels once: params and body both in full would double it.
    said = "y" * (MAX_BODY_BYTES * 3 // 4)
    message = client.messages.create(model=model, max_tokens=8, messages=[{"role": "user", "content": said}])
    assert message.type == "message" and message.content


def test_a_body_too_large_is_413(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.APIStatusError) as caught:
        client.messages.create(
            model="gpt-test", max_tokens=8, messages=[{"role": "user", "content": "x" * (MAX_BODY_BYTES + 1)}]
        )
    assert error_of(caught)[:2] == (413, "request_too_large")


def test_the_rpm_limit_is_429(gateway: MessagesGatewayHarness) -> None:
    client = sdk(gateway, gateway.keys["one_a_minute"])
    client.messages.create(model="gpt-test", max_tokens=8, messages=[{"role": "user", "content": "once"}])
    with pytest.raises(anthropic.RateLimitError) as caught:
        client.messages.create(
            model="gpt-test", max_tokens=8, messages=[{"role": "user", "content": "twice"}]
        )
    assert error_of(caught)[:2] == (429, "rate_limit_error")  # type: ignore[arg-type]
    assert int(caught.value.response.headers["retry-after"]) >= 1


def test_insufficient_credit_is_402_billing_error(gateway: MessagesGatewayHarness) -> None:
    before = len(gateway.openai.requests)
    with pytest.raises(anthropic.APIStatusError) as caught:
        sdk(gateway, gateway.keys["broke"]).messages.create(
            model="gpt-test", max_tokens=1000, messages=[{"role": "user", "content": "x"}]
        )
    assert error_of(caught)[:2] == (402, "billing_error")
    assert len(gateway.openai.requests) == before


def test_a_model_the_key_may_not_use_is_403(gateway: MessagesGatewayHarness) -> None:
    with pytest.raises(anthropic.PermissionDeniedError) as caught:
        sdk(gateway, gateway.keys["gpt_only"]).messages.create(
            model="claude-sonnet", max_tokens=8, messages=[{"role": "user", "content": "x"}]
        )
    assert error_of(caught)[:2] == (403, "permission_error")  # type: ignore[arg-type]


def test_an_unreachable_upstream_is_an_anthropic_server_error(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.InternalServerError) as caught:
        client.messages.create(model="claude-dead", max_tokens=8, messages=[{"role": "user", "content": "x"}])
    status, error_type, message = error_of(caught)  # type: ignore[arg-type]
    assert (status, error_type) in ((500, "api_error"), (529, "overloaded_error"))
    assert "sk-ant" not in message


# Every Anthropic error type, against each fake. What the upstream does wrong, in each fake's own
# words, and what an Anthropic client must see: (status, error.type).
UPSTREAM_FAILURES: dict[str, tuple[int, str]] = {
    "rejects the request": (400, "invalid_request_error"),
    "finds the request too large": (413, "request_too_large"),
    "refuses the gateway's credentials": (500, "api_error"),
    "rate limits": (429, "rate_limit_error"),
    "fails": (500, "api_error"),
    "is overloaded": (529, "overloaded_error"),
    "is too slow": (504, "timeout_error"),
}
SLOW = 3.0
RATE_LIMIT_WAIT = "7"


def inject_upstream_failure(gateway: MessagesGatewayHarness, model: str, failure: str) -> None:
    hang = SLOW if failure == "is too slow" else None
    if model.startswith("claude"):
        status, error_type = {
            "rejects the request": (400, "invalid_request_error"),
            "finds the request too large": (413, "request_too_large"),
            "refuses the gateway's credentials": (401, "authentication_error"),
            "rate limits": (429, "rate_limit_error"),
            "fails": (500, "api_error"),
            "is overloaded": (529, "overloaded_error"),
            "is too slow": (None, "api_error"),
        }[failure]
        headers = {"retry-after": RATE_LIMIT_WAIT} if status == 429 else {}
        gateway.anthropic.inject(
            AnthropicFault(
                status=status,
                error_type=error_type,
                message=f"no ({ANTHROPIC_KEY})",
                headers=headers,
                hang=hang,
            )
        )
    elif model.startswith("gpt"):
        status = {
            "rejects the request": 400,
            "finds the request too large": 413,
            "refuses the gateway's credentials": 401,
            "rate limits": 429,
            "fails": 500,
            "is overloaded": 503,
            "is too slow": None,
        }[failure]
        headers = {"retry-after": RATE_LIMIT_WAIT} if status == 429 else {}
        gateway.openai.inject(
            Fault(
                path="/v1/chat/completions",
                status=status,
                message=f"no ({OPENAI_KEY})",
                headers=headers,
                hang=hang,
            )
        )
    else:
        # Google answers an oversized request with a 400 INVALID_ARGUMENT, never a 413: that cell is
        # the gateway's own body limit (test_the_gateways_own_refusals_are_anthropics_errors).
        status, grpc_status = {
            "rejects the request": (400, "INVALID_ARGUMENT"),
            "finds the request too large": (None, ""),
            "refuses the gateway's credentials": (403, "PERMISSION_DENIED"),
            "rate limits": (429, "RESOURCE_EXHAUSTED"),
            "fails": (500, "INTERNAL"),
            "is overloaded": (503, "UNAVAILABLE"),
            "is too slow": (None, ""),
        }[failure]
        if status is None and hang is None:
            pytest.skip("the Gemini API has no 413 of its own")
        gateway.gemini.inject(
            GeminiFault(
                status=status,
                grpc_status=grpc_status or "INTERNAL",
                message=f"no ({GEMINI_KEY})",
                retry_delay=f"{RATE_LIMIT_WAIT}s" if status == 429 else None,
                hang=hang,
            )
        )


@pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream"])
@pytest.mark.parametrize("failure", list(UPSTREAM_FAILURES))
def test_every_upstream_failure_is_anthropics_error(
    gateway: MessagesGatewayHarness, model: str, failure: str, stream: bool
) -> None:
    inject_upstream_failure(gateway, model, failure)
    timeout = {"x-siraya-timeout": "0.5"} if failure == "is too slow" else {}
    with pytest.raises(anthropic.APIStatusError) as caught:
        reply = sdk(gateway).messages.create(
            model=model,
            max_tokens=16,
            messages=[{"role": "user", "content": "fail please"}],
            stream=stream,
            extra_headers=timeout,
        )
        if stream:
            list(reply)  # type: ignore[call-overload]
    status, error_type, message = error_of(caught)
    assert (status, error_type) == UPSTREAM_FAILURES[failure]
    for secret in (ANTHROPIC_KEY, OPENAI_KEY, GEMINI_KEY):
        assert secret not in message
    if error_type == "rate_limit_error":
        assert caught.value.response.headers["retry-after"] == RATE_LIMIT_WAIT
    assert caught.value.response.headers["request-id"] == caught.value.body["request_id"]  # type: ignore[index]


def test_the_gateways_own_refusals_are_anthropics_errors(gateway: MessagesGatewayHarness, model: str) -> None:
    """The errors the gateway decides before any upstream call, for each kind of upstream."""
    ask: Any = {"model": model, "max_tokens": 8, "messages": [{"role": "user", "content": "x"}]}
    before = [len(fake.requests) for fake in (gateway.anthropic, gateway.openai, gateway.gemini)]
    cases: list[tuple[str | None, dict[str, Any], tuple[int, str]]] = [
        ("sk-siraya-wrong", ask, (401, "authentication_error")),
        (gateway.keys["broke"], {**ask, "max_tokens": 1000}, (402, "billing_error")),
        (gateway.keys["dead_only"], ask, (403, "permission_error")),
        (None, {**ask, "messages": [{"role": "system", "content": "x"}]}, (400, "invalid_request_error")),
        (
            None,
            {**ask, "messages": [{"role": "user", "content": "x" * (MAX_BODY_BYTES + 1)}]},
            (413, "request_too_large"),
        ),
        (None, {**ask, "extra_body": {"models": ["no-such-model"]}}, (404, "not_found_error")),
    ]
    for key, kwargs, expected in cases:
        with pytest.raises(anthropic.APIStatusError) as caught:
            sdk(gateway, key).messages.create(**kwargs)
        assert error_of(caught)[:2] == expected
    assert [len(fake.requests) for fake in (gateway.anthropic, gateway.openai, gateway.gemini)] == before


def test_a_failure_mid_stream_is_an_error_event_from_every_upstream(
    gateway: MessagesGatewayHarness, model: str
) -> None:
    if model.startswith("claude"):
        gateway.anthropic.inject(
            AnthropicFault(error_after_events=4, error_type="overloaded_error", message="Overloaded")
        )
        expected = "overloaded_error"
    elif model.startswith("gpt"):
        gateway.openai.inject(Fault(path="/v1/chat/completions", reset_after_chunks=2))
        expected = "api_error"
    else:
        gateway.gemini.inject(GeminiFault(error_after_events=1, grpc_status="UNAVAILABLE", message="busy"))
        expected = "overloaded_error"
    body = {
        "model": model,
        "max_tokens": 64,
        "stream": True,
        "messages": [{"role": "user", "content": "cut me off somewhere in the middle please"}],
    }
    response = httpx.post(
        gateway.root_url + "/v1/messages", json=body, headers={"x-api-key": gateway.api_key}, timeout=20
    )
    assert response.status_code == 200
    frames = response.text.strip().split("\n\n")
    assert frames[0].startswith("event: message_start")
    name, data = frames[-1].split("\n")
    assert name == "event: error"
    error = orjson.loads(data.removeprefix("data: "))
    assert (error["type"], error["error"]["type"]) == ("error", expected) and error["error"]["message"]
    assert "message_stop" not in response.text


def test_a_gemini_3_call_sent_back_without_its_signature_is_refused(client: anthropic.Anthropic) -> None:
    """What the signature round trip prevents: a client that drops the thinking block loses the
    signature, and Gemini 3 (the fake too) refuses the next turn."""
    first = client.messages.create(
        model="gemini-flash",
        max_tokens=256,
        messages=[{"role": "user", "content": "weather?"}],
        tools=[WEATHER_TOOL],
        tool_choice={"type": "any"},
    )
    use = first.content[-1]
    assert use.type == "tool_use" and "__ts_" in use.id, "no thinking: the signature rides in the id"
    unsigned: Any = {"type": "tool_use", "id": "call_unsigned", "name": use.name, "input": use.input}
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(
            model="gemini-flash",
            max_tokens=256,
            tools=[WEATHER_TOOL],
            messages=[
                {"role": "user", "content": "weather?"},
                {"role": "assistant", "content": [unsigned]},
                {
                    "role": "user",
                    "content": [{"type": "tool_result", "tool_use_id": "call_unsigned", "content": "18C"}],
                },
            ],
        )
    assert "thought_signature" in error_of(caught)[2]  # type: ignore[arg-type]


def test_a_failure_mid_stream_is_an_error_event(gateway: MessagesGatewayHarness) -> None:
    gateway.anthropic.inject(
        AnthropicFault(error_after_events=4, error_type="overloaded_error", message="Overloaded")
    )
    body = {
        "model": "claude-sonnet",
        "max_tokens": 64,
        "stream": True,
        "messages": [{"role": "user", "content": "cut me"}],
    }
    response = httpx.post(
        gateway.root_url + "/v1/messages", json=body, headers={"x-api-key": gateway.api_key}, timeout=20
    )
    assert response.status_code == 200
    frames = response.text.strip().split("\n\n")
    assert frames[0].startswith("event: message_start")
    name, data = frames[-1].split("\n")
    assert name == "event: error"
    error = orjson.loads(data.removeprefix("data: "))
    assert error["type"] == "error" and error["error"]["type"] in ("api_error", "overloaded_error")
    # The SDK raises on it.
    gateway.anthropic.inject(
        AnthropicFault(error_after_events=4, error_type="overloaded_error", message="Overloaded")
    )
    with pytest.raises(anthropic.APIStatusError):
        list(sdk(gateway).messages.create(stream=True, **{k: v for k, v in body.items() if k != "stream"}))  # type: ignore[call-overload]


def test_anthropic_beta_reaches_an_anthropic_upstream(gateway: MessagesGatewayHarness) -> None:
    client = anthropic.Anthropic(
        base_url=gateway.root_url,
        api_key=gateway.api_key,
        max_retries=0,
        default_headers={"anthropic-beta": "fine-grained-tool-streaming-2025-05-14"},
    )
    client.messages.create(
        model="claude-sonnet", max_tokens=8, messages=[{"role": "user", "content": "beta"}]
    )
    headers = gateway.anthropic.requests[-1].headers
    assert headers["anthropic-beta"] == "fine-grained-tool-streaming-2025-05-14"
    assert headers["anthropic-version"] == "2023-06-01"
    assert headers["x-api-key"] != gateway.api_key


# --- the same-protocol relay lane -------------------------------------------------------------

# What the translation through chat would lose: cache_control everywhere, a document's citations and
# title, redacted thinking, top_k, service_tier, metadata, and key order.
RELAYED_BODY: dict[str, Any] = {
    "max_tokens": 128,
    "model": "claude-sonnet",
    "system": [
        {"type": "text", "text": "Long stable preamble.", "cache_control": {"type": "ephemeral", "ttl": "1h"}}
    ],
    "tools": [
        {
            "name": "get_weather",
            "input_schema": {
                "type": "object",
                "required": ["city"],
                "properties": {"city": {"type": "string"}},
            },
            "cache_control": {"type": "ephemeral"},
        }
    ],
    "messages": [
        {
            "role": "user",
            "content": [{"type": "text", "text": "Earlier question", "cache_control": {"type": "ephemeral"}}],
        },
        {
            "role": "assistant",
            "content": [
                {
                    "type": "redacted_thinking",
                    "data": "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3rAFBa8cr3qpP",
                },
                {"type": "text", "text": "Earlier answer"},
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "document",
                    "source": {"type": "text", "media_type": "text/plain", "data": "notes"},
                    "title": "Notes",
                    "citations": {"enabled": True},
                },
                {"type": "text", "text": "relay me"},
            ],
        },
    ],
    "tool_choice": {"type": "none"},
    "top_k": 7,
    "service_tier": "auto",
    "metadata": {"user_id": "user-7"},
    "temperature": 0.5,
}


def test_the_relay_lane_sends_an_anthropic_upstream_the_clients_body(gateway: MessagesGatewayHarness) -> None:
    headers = {"x-api-key": gateway.api_key, "anthropic-version": "2023-06-01"}
    # The gateway's routing keys are the gateway's: they never reach the upstream.
    body = {**RELAYED_BODY, "models": ["gpt-test"]}
    response = httpx.post(gateway.root_url + "/v1/messages", json=body, headers=headers, timeout=20)
    assert response.status_code == 200, response.text
    received = gateway.anthropic.requests[-1]
    assert received.json == {**RELAYED_BODY, "model": CLAUDE_UPSTREAM_MODEL}
    assert list(received.json) == list(RELAYED_BODY)
    reply = response.json()
    assert reply["id"].startswith("msg_fake") and reply["model"] == "claude-sonnet"
    assert reply["provider"] == "anthropic" == response.headers["x-siraya-provider"]
    assert reply["content"] == [
        {
            "type": "text",
            "text": f"Hello from {CLAUDE_UPSTREAM_MODEL}! You said: relay me [1 document(s)]",
        }
    ]


def test_relayed_usage_with_cache_tokens_is_metered_and_costed(gateway: MessagesGatewayHarness) -> None:
    usage = {
        "input_tokens": 100,
        "cache_read_input_tokens": 40,
        "cache_creation_input_tokens": 10,
        "output_tokens": 20,
    }
    # Priced at $1/M input (cache reads and writes included, at the input price) and $2/M output.
    cost = (150 * 1.0 + 20 * 2.0) / 1_000_000
    headers = {"x-api-key": gateway.api_key}
    body = {"model": "claude-sonnet", "max_tokens": 64, "messages": [{"role": "user", "content": "cached"}]}
    gateway.anthropic.script(ScriptedMessage([{"type": "text", "text": "from cache"}], usage=usage))
    reply = httpx.post(gateway.root_url + "/v1/messages", json=body, headers=headers, timeout=20).json()
    assert reply["usage"] == {**usage, "cost": pytest.approx(cost)}
    gateway.anthropic.script(ScriptedMessage([{"type": "text", "text": "from cache"}], usage=usage))
    streamed = httpx.post(
        gateway.root_url + "/v1/messages", json={**body, "stream": True}, headers=headers, timeout=20
    )
    events = [
        orjson.loads(frame.split("\n")[1].removeprefix("data: "))
        for frame in streamed.text.strip().split("\n\n")
    ]
    assert events[0]["message"]["usage"]["cache_read_input_tokens"] == 40
    assert events[-2]["type"] == "message_delta" and events[-2]["usage"] == {
        "output_tokens": 20,
        "cost": pytest.approx(cost),
    }


def test_a_relayed_stream_is_the_upstreams_own_events(gateway: MessagesGatewayHarness) -> None:
    body = {
        **RELAYED_BODY,
        "stream": True,
        "max_tokens": 2048,
        "thinking": {"type": "enabled", "budget_tokens": 1024},
    }
    body["messages"] = body["messages"][2:]
    response = httpx.post(
        gateway.root_url + "/v1/messages", json=body, headers={"x-api-key": gateway.api_key}, timeout=20
    )
    assert response.status_code == 200
    assert gateway.anthropic.requests[-1].json == {**body, "model": CLAUDE_UPSTREAM_MODEL}
    frames = [frame.split("\n") for frame in response.text.strip().split("\n\n")]
    names = [name.removeprefix("event: ") for name, _ in frames]
    assert names[:2] == ["message_start", "ping"]  # the upstream's own ping, passed on
    data = [orjson.loads(line.removeprefix("data: ")) for _, line in frames]
    assert data[0]["message"]["model"] == "claude-sonnet" and data[0]["message"]["provider"] == "anthropic"
    deltas = [d["delta"] for d in data if d["type"] == "content_block_delta"]
    assert {"type": "signature_delta", "signature": SIGNATURE} in deltas


def test_a_fallback_from_claude_to_another_provider_is_translated(client: anthropic.Anthropic) -> None:
    message = client.messages.create(
        model="claude-dead",
        max_tokens=32,
        messages=[{"role": "user", "content": "fall back"}],
        extra_body={"models": ["gpt-test"]},
    )
    assert (message.model, text_of(message)) == ("gpt-test", "echo: fall back")


# --- gRPC -------------------------------------------------------------------------------------


def test_the_grpc_service_serves_internal_callers(gateway: MessagesGatewayHarness) -> None:
    params = messages_pb2.MessageParams(model="gpt-test", max_tokens=16)
    params.messages.add(role=messages_pb2.MESSAGE_ROLE_USER, text="over grpc")
    with grpc.insecure_channel(gateway.grpc_target) as channel:
        stub = messages_pb2_grpc.MessagesServiceStub(channel)
        auth = (("authorization", f"Bearer {gateway.api_key}"),)
        reply = stub.CreateMessage(
            messages_pb2.CreateMessageRequest(params=params), metadata=auth, timeout=20
        )
        assert reply.message.content[0].text.text == "echo: over grpc"
        assert reply.message.stop_reason == "end_turn" and reply.message.provider == "openai"
        kinds = [
            r.event.WhichOneof("event")
            for r in stub.StreamMessage(
                messages_pb2.StreamMessageRequest(params=params), metadata=auth, timeout=20
            )
        ]
        assert kinds[:2] == ["message_start", "ping"] and kinds[-2:] == ["message_delta", "message_stop"]
        counted = stub.CountTokens(messages_pb2.CountTokensRequest(params=params), metadata=auth, timeout=20)
        assert counted.input_tokens > 0
        with pytest.raises(grpc.RpcError) as caught:
            stub.CreateMessage(
                messages_pb2.CreateMessageRequest(params=params),
                metadata=(("authorization", "Bearer nope"),),
                timeout=20,
            )
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED  # type: ignore[attr-defined]


def test_a_grpc_caller_of_a_claude_model_gets_the_translation_with_signatures(
    gateway: MessagesGatewayHarness,
) -> None:
    """Without `anthropic_json` the reply is the proto, made by translating through chat even for Claude."""
    params = messages_pb2.MessageParams(model="claude-sonnet", max_tokens=4096)
    params.messages.add(role=messages_pb2.MESSAGE_ROLE_USER, text="think and call")
    params.thinking.type, params.thinking.budget_tokens = "enabled", 2048
    tool = params.tools.add(name="get_weather")
    tool.input_schema_json = orjson.dumps(WEATHER_SCHEMA)
    auth = (("authorization", f"Bearer {gateway.api_key}"),)
    with grpc.insecure_channel(gateway.grpc_target) as channel:
        stub = messages_pb2_grpc.MessagesServiceStub(channel)
        first = stub.CreateMessage(
            messages_pb2.CreateMessageRequest(params=params), metadata=auth, timeout=20
        ).message
        assert [block.WhichOneof("block") for block in first.content] == ["thinking", "tool_use"]
        assert (first.content[0].thinking.signature, first.content[1].tool_use.id) == (
            SIGNATURE,
            "toolu_fake01",
        )
        params.messages.add(role=messages_pb2.MESSAGE_ROLE_ASSISTANT).blocks.blocks.extend(first.content)
        result = params.messages.add(role=messages_pb2.MESSAGE_ROLE_USER).blocks.blocks.add().tool_result
        result.tool_use_id, result.text = "toolu_fake01", "18C"
        events = list(
            stub.StreamMessage(messages_pb2.StreamMessageRequest(params=params), metadata=auth, timeout=20)
        )
    # The fake accepted the thinking block back (it checks the signature) and answered the result.
    texts = [
        e.event.content_block_delta.delta.text_delta.text
        for e in events
        if e.event.HasField("content_block_delta")
    ]
    assert "Tool results: 18C" in "".join(texts)
    assert gateway.anthropic.last_json["messages"][1]["content"][0]["signature"] == SIGNATURE
