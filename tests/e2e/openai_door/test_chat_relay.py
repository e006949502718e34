"""The same-protocol relay lane: OpenAI chat in, an OpenAI-compatible upstream out.

The gateway changes only what it owns (the public `model`, `provider`, `usage.cost`, and the
usage chunk it asked the upstream for when the client did not) and relays everything else as the
client and the upstream wrote it. A vendor's own request parameters and reply fields therefore need
no code change: these tests invent some and follow them through, both ways, unary and streamed,
in both modes (in-process stub and the loopback gRPC hop).
"""

from __future__ import annotations

from typing import Any

import httpx
import openai
import orjson
import pytest

from tests.e2e.conformance import sse_frames
from tests.e2e.harness import GatewayHarness
from tests.fakes.openai_upstream import ScriptedReply
from tests.openapi_schema import assert_matches_schema

PUBLIC_MODEL, UPSTREAM_MODEL = "gpt-test", "gpt-4o-mini"
VENDOR_KNOB = {"a": [1, 2]}
# A vendor's reply keys: at the top, inside the message (a signed reasoning trace, which must come
# back byte for byte to be accepted again) and inside the usage.
VENDOR_REPLY: dict[str, Any] = {
    "extra_fields": {"x_vendor_trace": {"id": "t-1", "scores": [0.5, 1.0]}},
    "extra_message_fields": {"reasoning_details": [{"type": "reasoning.encrypted", "data": "c2lnbg=="}]},
    "extra_usage_fields": {"x_vendor_units": 7},
}


def client_body(stream: bool) -> dict[str, Any]:
    """A body in the client's own key order (the SDKs put `messages` first), with what a decode into
    protos would change: keys inside a message and a content part that no codec models, a float
    written as 1.0, and an integer a double cannot hold."""
    return {
        "messages": [
            {"role": "system", "content": "be brief", "x_vendor_cache": {"ttl": "5m"}},
            {"role": "user", "content": [{"type": "text", "text": "relay me", "x_vendor_mark": 1.0}]},
        ],
        "model": PUBLIC_MODEL,
        "x_vendor_knob": VENDOR_KNOB,
        "temperature": 1.0,
        "x_vendor_seed": 2**60 + 1,
        "stream": stream,
    }


def post(harness: GatewayHarness, body: bytes) -> httpx.Response:
    response = httpx.post(
        f"{harness.base_url}/chat/completions",
        headers={"Authorization": f"Bearer {harness.api_key}", "Content-Type": "application/json"},
        content=body,
        timeout=20,
    )
    assert response.status_code == 200, response.text
    return response


@pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream"])
def test_the_upstream_receives_the_clients_body_byte_for_byte(harness: GatewayHarness, stream: bool) -> None:
    body = client_body(stream)
    post(harness, orjson.dumps(body))
    sent = harness.native.requests_to("/v1/chat/completions")[-1]
    # Only the gateway's own fields differ: the upstream's model name, and on a stream the usage the
    # gateway asks for to meter it.
    expected = {**body, "model": UPSTREAM_MODEL}
    if stream:
        expected["stream_options"] = {"include_usage": True}
    assert sent.body == orjson.dumps(expected)


def test_a_vendor_parameter_and_a_routing_preference_from_the_sdk(
    client: openai.OpenAI, harness: GatewayHarness
) -> None:
    """The SDK's `extra_body` is merged into the body: the vendor's key goes through, the gateway's
    routing keys (`provider`, `models`) never leave it."""
    client.chat.completions.create(
        model=PUBLIC_MODEL,
        messages=[{"role": "user", "content": "hi"}],
        extra_body={"x_vendor_knob": VENDOR_KNOB, "provider": {"order": ["fake"]}, "models": [PUBLIC_MODEL]},
    )
    sent = harness.native.requests_to("/v1/chat/completions")[-1]
    assert b'"x_vendor_knob":{"a":[1,2]}' in sent.body
    assert "provider" not in sent.json and "models" not in sent.json


def test_a_completion_comes_back_as_the_upstream_wrote_it(harness: GatewayHarness) -> None:
    harness.native.script_chat(ScriptedReply(content="relayed as is", **VENDOR_REPLY))
    response = post(harness, orjson.dumps(client_body(False)))
    upstream = orjson.loads(harness.native.requests_to("/v1/chat/completions")[-1].reply)
    got = response.json()
    assert_matches_schema(got, "CreateChatCompletionResponse")
    # The gateway's fields: the public model in the upstream's place, the provider last, the cost
    # in the usage (after the vendor's keys).
    upstream["model"] = PUBLIC_MODEL
    upstream["usage"]["cost"] = got["usage"]["cost"]
    upstream["provider"] = "fake"
    assert response.content == orjson.dumps(upstream)


@pytest.mark.parametrize("include_usage", [False, True], ids=["plain", "include_usage"])
def test_stream_chunks_come_back_as_the_upstream_wrote_them(
    harness: GatewayHarness, include_usage: bool
) -> None:
    harness.native.script_chat(ScriptedReply(content="relayed chunk by chunk", **VENDOR_REPLY))
    body = client_body(True)
    if include_usage:
        body["stream_options"] = {"include_usage": True}
    frames = sse_frames(post(harness, orjson.dumps(body)).content)
    upstream = sse_frames(harness.native.requests_to("/v1/chat/completions")[-1].reply)
    assert frames[-1] == (None, b"[DONE]") and upstream[-1] == (None, b"[DONE]")
    chunks = [orjson.loads(data) for _, data in frames[:-1]]
    for chunk in chunks:
        assert_matches_schema(chunk, "CreateChatCompletionStreamResponse")
    expected = []
    for _, data in upstream[:-1]:
        chunk = orjson.loads(data)
        if not include_usage:
            # The gateway asked for usage to meter the stream; a client that did not sees none.
            if chunk["usage"] is not None:
                continue
            del chunk["usage"]
        elif chunk["usage"] is not None:
            chunk["usage"]["cost"] = chunks[-1]["usage"]["cost"]
        chunk["model"] = PUBLIC_MODEL
        chunk["provider"] = "fake"
        expected.append(orjson.dumps(chunk))
    assert [data for _, data in frames[:-1]] == expected


def test_the_sdk_sees_vendor_fields_unary_and_streamed(
    client: openai.OpenAI, harness: GatewayHarness
) -> None:
    harness.native.script_chat(ScriptedReply(content="unary", **VENDOR_REPLY))
    completion = client.chat.completions.create(
        model=PUBLIC_MODEL, messages=[{"role": "user", "content": "hi"}]
    )
    assert completion.model_extra == {**VENDOR_REPLY["extra_fields"], "provider": "fake"}
    message_extra = completion.choices[0].message.model_extra
    assert message_extra is not None and message_extra["reasoning_details"] == [
        {"type": "reasoning.encrypted", "data": "c2lnbg=="}
    ]
    harness.native.script_chat(ScriptedReply(content="streamed", **VENDOR_REPLY))
    chunks = list(
        client.chat.completions.create(
            model=PUBLIC_MODEL, messages=[{"role": "user", "content": "hi"}], stream=True
        )
    )
    assert all(chunk.model_extra == {**VENDOR_REPLY["extra_fields"], "provider": "fake"} for chunk in chunks)
    first_delta = chunks[0].choices[0].delta.model_extra
    assert first_delta is not None and "reasoning_details" in first_delta


def test_the_gateway_owns_provider_and_cost(harness: GatewayHarness) -> None:
    """An upstream's own `provider` (OpenRouter sends one) and `usage.cost` (its price to us, never
    the client's) are replaced by the gateway's, unary and streamed."""
    owned: dict[str, Any] = {
        "extra_fields": {"provider": "upstream-internal"},
        "extra_usage_fields": {"cost": 99.5},
    }
    harness.native.script_chat(ScriptedReply(content="mine", **owned))
    answer = post(harness, orjson.dumps(client_body(False))).json()
    assert answer["provider"] == "fake" and answer["usage"]["cost"] != 99.5
    harness.native.script_chat(ScriptedReply(content="mine too", **owned))
    body = {**client_body(True), "stream_options": {"include_usage": True}}
    frames = sse_frames(post(harness, orjson.dumps(body)).content)
    chunks = [orjson.loads(data) for _, data in frames[:-1]]
    assert {chunk["provider"] for chunk in chunks} == {"fake"}
    assert chunks[-1]["usage"]["cost"] != 99.5
