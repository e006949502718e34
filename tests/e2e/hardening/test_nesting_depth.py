"""Deeply nested JSON is a 400 `nesting_too_deep`, never a 500 (issue #20, defect 3), on REST and gRPC.

The limit is `limits.max_json_depth` (32 by default; the body itself is level 1). A body at the
limit still works in both harness modes, the in-process stub and the loopback gRPC hop, where
protobuf parses the params again.
"""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import httpx
import orjson
import pytest
from google.rpc import error_details_pb2, status_pb2

from siraya.router.v1 import chat_pb2, chat_pb2_grpc
from tests.e2e.harness import GatewayHarness

LIMIT = 32
CHAT = {"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]}


def objects(levels: int) -> Any:
    value: Any = "leaf"
    for _ in range(levels):
        value = {"a": value}
    return value


def arrays(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = [value]
    return value


class Raw:
    """JSON text spliced in as it is: deeper than any encoder at hand will write."""

    def __init__(self, text: str) -> None:
        self.text = text


def raw_objects(levels: int) -> Raw:
    return Raw('{"a":' * levels + '"leaf"' + "}" * levels)


def raw_arrays(levels: int) -> Raw:
    return Raw("[" * levels + "1" + "]" * levels)


def _encode(value: Any) -> str:
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, dict):
        return "{" + ",".join(f"{orjson.dumps(k).decode()}:{_encode(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_encode(v) for v in value) + "]"
    return orjson.dumps(value).decode()


def _post(harness: GatewayHarness, path: str, body: Any) -> httpx.Response:
    return httpx.post(
        harness.base_url + path,
        content=_encode(body).encode(),
        headers={"Authorization": f"Bearer {harness.api_key}", "Content-Type": "application/json"},
        timeout=20,
    )


TOO_DEEP = [
    ("/chat/completions", {**CHAT, "unknown_field": arrays(200)}, "unknown_field"),
    (
        "/chat/completions",
        {**CHAT, "tools": [{"type": "function", "function": {"name": "f", "parameters": raw_objects(1000)}}]},
        "tools",
    ),
    (
        "/chat/completions",
        {
            **CHAT,
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "s", "schema": raw_objects(1000)},
            },
        },
        "response_format",
    ),
    ("/chat/completions", {**CHAT, "unknown_field": objects(LIMIT)}, "unknown_field"),
    ("/responses", {"model": "gpt-test", "input": "hi", "metadata": raw_objects(300)}, "metadata"),
    ("/embeddings", {"model": "embed-test", "input": "hi", "extra": raw_arrays(500)}, "extra"),
]


@pytest.mark.parametrize(("path", "body", "param"), TOO_DEEP, ids=[f"{c[0]}-{c[2]}" for c in TOO_DEEP])
def test_nesting_past_the_limit_is_a_400_naming_the_field(
    harness: GatewayHarness, path: str, body: Any, param: str
) -> None:
    reply = _post(harness, path, body)
    assert reply.status_code == 400, reply.text[:300]
    error = reply.json()["error"]
    assert (error["type"], error["code"], error["param"]) == (
        "invalid_request_error",
        "nesting_too_deep",
        param,
    )


def test_nesting_past_the_json_parser_own_limit_is_a_400_too(harness: GatewayHarness) -> None:
    raw = b'{"model": "gpt-test", "messages": [], "x": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    reply = httpx.post(
        harness.base_url + "/chat/completions",
        content=raw,
        headers={"Authorization": f"Bearer {harness.api_key}", "Content-Type": "application/json"},
        timeout=20,
    )
    assert reply.status_code == 400, reply.text[:300]
    assert reply.json()["error"]["code"] == "nesting_too_deep"


def test_a_body_at_the_limit_is_served_in_both_modes(harness: GatewayHarness) -> None:
    # The body is level 1 and the unknown field's value level 2: 31 levels of it reach the limit.
    for value in (objects(LIMIT - 1), arrays(LIMIT - 1)):
        reply = _post(harness, "/chat/completions", {**CHAT, "unknown_field": value})
        assert reply.status_code == 200, reply.text[:300]
        assert harness.native.requests[-1].json["unknown_field"] == value
    schema = {"type": "object", "properties": objects(LIMIT - 7)}
    tool = {"type": "function", "function": {"name": "f", "parameters": schema}}
    assert _post(harness, "/chat/completions", {**CHAT, "tools": [tool]}).status_code == 200


def test_grpc_callers_with_deep_structs_get_invalid_argument(harness: GatewayHarness) -> None:
    async def scenario() -> None:
        auth = (("authorization", f"Bearer {harness.api_key}"),)
        message = chat_pb2.ChatMessage(role=chat_pb2.CHAT_ROLE_USER, text="hi")
        async with grpc.aio.insecure_channel(harness.grpc_target) as channel:
            chat = chat_pb2_grpc.ChatServiceStub(channel)
            for value in (objects(40), arrays(60), objects(200)):
                # Built in place: copying a message this deep would already fail on the client.
                request = chat_pb2.CreateChatCompletionRequest()
                request.params.model = "gpt-test"
                request.params.messages.append(message)
                request.params.extra_body.update({"deep": value})
                with pytest.raises(grpc.aio.AioRpcError) as refused:
                    await chat.CreateChatCompletion(request, metadata=auth)
                assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT, refused.value.details()
                assert "Error parsing" not in (refused.value.details() or "")
                details = dict(refused.value.trailing_metadata())["grpc-status-details-bin"]
                info = error_details_pb2.ErrorInfo()
                status_pb2.Status.FromString(details).details[0].Unpack(info)
                assert info.metadata["http_status"] == "400"
            # Bytes that are no message at all get the same answer, without the decoder's text.
            garbage = channel.unary_unary(
                "/siraya.router.v1.ChatService/CreateChatCompletion",
                request_serializer=lambda raw: raw,
                response_deserializer=lambda raw: raw,
            )
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await garbage(b"\xff\xff\xff\xff garbage", metadata=auth)
            assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    asyncio.run(scenario())
