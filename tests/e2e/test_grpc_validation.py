"""gRPC callers meet REST's rules and limits: the same refusals, in our error shape, never INTERNAL.

Issue #20 defect 7 and the gRPC part of defect 3: gRPC took 64 MiB messages where REST caps bodies
at `server.max_body_bytes`, answered an empty `messages` with OK, an unspecified or out-of-range
role and an embedding without input with INTERNAL, and request bytes that are no protobuf with
UNKNOWN and the parser's text. Everything here drives the real grpc.aio server through the
generated stubs (or a raw channel for bytes no stub would send).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from google.rpc import error_details_pb2, status_pb2

from server.accounts.keys import NewKey
from server.config import load_config
from siraya.router.codec.chat_request import decode_chat_request
from siraya.router.codec.embeddings import decode_embedding_request
from siraya.router.codec.images import decode_image_request
from siraya.router.codec.responses_request import decode_response_request
from siraya.router.codec.videos import decode_video_request
from siraya.router.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    chat_pb2,
    chat_pb2_grpc,
    embeddings_pb2,
    embeddings_pb2_grpc,
    images_pb2,
    images_pb2_grpc,
    responses_pb2,
    responses_pb2_grpc,
    videos_pb2,
    videos_pb2_grpc,
)
from siraya_app.start import start_gateway
from tests.e2e.accounts_harness import ADMIN_KEY, AccountsHarness
from tests.e2e.harness import GatewayHarness
from tests.fakes.openai_upstream import FakeOpenAIUpstream

Metadata = tuple[tuple[str, str], ...]
MIB = 1024 * 1024


def user(text: str) -> chat_pb2.ChatMessage:
    return chat_pb2.ChatMessage(role=chat_pb2.CHAT_ROLE_USER, text=text)


def run(harness: GatewayHarness, body: Callable[[grpc.aio.Channel, Metadata], Awaitable[None]]) -> None:
    async def scenario() -> None:
        async with grpc.aio.insecure_channel(harness.grpc_target) as channel:
            await body(channel, (("authorization", f"Bearer {harness.api_key}"),))

    asyncio.run(scenario())


def refusal(error: grpc.aio.AioRpcError) -> dict[str, Any]:
    """The google.rpc.Status a failed call carried: ErrorInfo's metadata, plus the field violations."""
    details = dict(error.trailing_metadata() or ()).get("grpc-status-details-bin")
    assert isinstance(details, bytes), f"{error.code()} without google.rpc.Status: {error.details()}"
    status = status_pb2.Status.FromString(details)
    found: dict[str, Any] = {"grpc_code": error.code(), "message": status.message, "violations": []}
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            found.update(info.metadata)
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            found["violations"] = [(v.field, v.description) for v in bad.field_violations]
    return found


async def refused(call: Awaitable[Any]) -> dict[str, Any]:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return refusal(caught.value)


async def refused_stream(call: Any) -> dict[str, Any]:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in call:
            pass
    return refusal(caught.value)


def assert_invalid(found: dict[str, Any], param: str, code: str) -> None:
    assert found["grpc_code"] == grpc.StatusCode.INVALID_ARGUMENT, found
    assert found["http_status"] == "400" and found["type"] == "invalid_request_error", found
    assert (found["param"], found["code"]) == (param, code), found
    assert found["violations"] == [(param, found["message"])], found


# --- the limit on a request's size ------------------------------------------------------------

DEFAULT_LIMIT_CONFIG = """
server: {{host: 127.0.0.1, http_port: 0, grpc_port: 0, data_dir: {data_dir}}}
providers:
  fake: {{type: openai, base_url: "{base_url}", api_key: sk-upstream-size}}
models:
  - {{id: gpt-test, provider: fake, upstream_model: gpt-4o-mini, kind: chat}}
"""


@pytest.mark.parametrize("in_process", [True, False], ids=["in_process", "grpc_hop"])
async def test_a_request_over_max_body_bytes_is_refused_on_grpc_as_on_rest(
    tmp_path: Path, in_process: bool
) -> None:
    """The default `server.max_body_bytes` (10 MiB) bounds a gRPC message as it bounds a REST body;
    a REST request and its reply still cross the bridge's own gRPC hop when it has one."""
    async with FakeOpenAIUpstream(api_key="sk-upstream-size") as upstream:
        config = tmp_path / "siraya.yaml"
        config.write_text(DEFAULT_LIMIT_CONFIG.format(data_dir=tmp_path / "data", base_url=upstream.base_url))
        running = await start_gateway(load_config(config), in_process=in_process)
        try:
            _, key = await running.gateway.keys.create(NewKey(name="size"))
            auth = (("authorization", f"Bearer {key}"),)
            async with grpc.aio.insecure_channel(
                f"127.0.0.1:{running.grpc_port}",
                options=[("grpc.max_receive_message_length", 64 * MIB)],
            ) as channel:
                chat = chat_pb2_grpc.ChatServiceStub(channel)

                def request(size: int) -> chat_pb2.CreateChatCompletionRequest:
                    params = chat_pb2.ChatCompletionParams(model="gpt-test", messages=[user("x" * size)])
                    return chat_pb2.CreateChatCompletionRequest(params=params)

                with pytest.raises(grpc.aio.AioRpcError) as caught:
                    await chat.CreateChatCompletion(request(20 * MIB), metadata=auth)
                assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                # grpc core's own words, which name both sizes: clear enough to act on.
                assert f"vs. {10 * MIB})" in (caught.value.details() or ""), caught.value.details()
                # Under the limit (and over grpc's 4 MiB default) still goes through.
                reply = await chat.CreateChatCompletion(request(6 * MIB), metadata=auth)
                assert reply.completion.choices[0].message.content.startswith("echo: xxx")

            async with httpx.AsyncClient(timeout=30) as client:
                url = f"http://127.0.0.1:{running.http_port}/v1/chat/completions"
                headers = {"Authorization": f"Bearer {key}"}
                body = {"model": "gpt-test", "messages": [{"role": "user", "content": "x" * (20 * MIB)}]}
                response = await client.post(url, json=body, headers=headers)
                assert response.status_code == 400
                assert response.json()["error"]["code"] == "request_too_large"
                body["messages"][0]["content"] = "x" * (6 * MIB)
                assert (await client.post(url, json=body, headers=headers)).status_code == 200
        finally:
            await running.stop()


# --- the rules REST applies ------------------------------------------------------------------


def test_empty_messages_is_invalid_argument(harness: GatewayHarness) -> None:
    async def body(channel: grpc.aio.Channel, auth: Metadata) -> None:
        chat = chat_pb2_grpc.ChatServiceStub(channel)
        params = chat_pb2.ChatCompletionParams(model="gpt-test")
        found = await refused(
            chat.CreateChatCompletion(chat_pb2.CreateChatCompletionRequest(params=params), metadata=auth)
        )
        assert_invalid(found, "messages", "empty_array")
        found = await refused_stream(
            chat.StreamChatCompletion(chat_pb2.StreamChatCompletionRequest(params=params), metadata=auth)
        )
        assert_invalid(found, "messages", "empty_array")

    run(harness, body)


@pytest.mark.parametrize(
    ("role", "code"),
    [(chat_pb2.CHAT_ROLE_UNSPECIFIED, "missing_required_parameter"), (999, "invalid_value")],
)
def test_a_role_unspecified_or_out_of_range_is_invalid_argument(
    harness: GatewayHarness, role: int, code: str
) -> None:
    async def body(channel: grpc.aio.Channel, auth: Metadata) -> None:
        chat = chat_pb2_grpc.ChatServiceStub(channel)
        params = chat_pb2.ChatCompletionParams(
            model="gpt-test", messages=[user("hi"), chat_pb2.ChatMessage(role=role, text="who am I")]
        )
        for openai_json in (False, True):
            found = await refused(
                chat.CreateChatCompletion(
                    chat_pb2.CreateChatCompletionRequest(params=params, openai_json=openai_json),
                    metadata=auth,
                )
            )
            assert_invalid(found, "messages[1].role", code)
        found = await refused_stream(
            chat.StreamChatCompletion(chat_pb2.StreamChatCompletionRequest(params=params), metadata=auth)
        )
        assert_invalid(found, "messages[1].role", code)

    run(harness, body)


def test_an_embedding_without_input_is_invalid_argument(harness: GatewayHarness) -> None:
    async def body(channel: grpc.aio.Channel, auth: Metadata) -> None:
        embeddings = embeddings_pb2_grpc.EmbeddingsServiceStub(channel)
        cases = [
            (embeddings_pb2.EmbeddingParams(model="embed-test"), "missing_required_parameter"),
            (embeddings_pb2.EmbeddingParams(model="embed-test", text=""), "invalid_value"),
            (
                embeddings_pb2.EmbeddingParams(model="embed-test", texts=embeddings_pb2.StringList()),
                "invalid_value",
            ),
            (
                embeddings_pb2.EmbeddingParams(model="embed-test", tokens=embeddings_pb2.TokenIds()),
                "invalid_value",
            ),
        ]
        for params, code in cases:
            found = await refused(
                embeddings.CreateEmbedding(
                    embeddings_pb2.CreateEmbeddingRequest(params=params), metadata=auth
                )
            )
            assert_invalid(found, "input", code)

    run(harness, body)


def test_request_rules_are_applied_after_authentication(harness: GatewayHarness) -> None:
    """A caller without a key learns nothing about its request: 401 before a rule's 400, on both doors
    (REST's own JSON-shape checks still run before; ordering those is the bridge's business)."""

    async def body(channel: grpc.aio.Channel, auth: Metadata) -> None:
        chat = chat_pb2_grpc.ChatServiceStub(channel)
        params = chat_pb2.ChatCompletionParams(model="gpt-test")
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await chat.CreateChatCompletion(chat_pb2.CreateChatCompletionRequest(params=params))
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED

    run(harness, body)
    response = httpx.post(f"{harness.base_url}/chat/completions", json={"model": "gpt-test", "messages": []})
    assert response.status_code == 401, response.text


@pytest.mark.parametrize("amount", [float("nan"), float("inf"), -1.0])
def test_a_credit_limit_that_is_no_amount_is_invalid_argument(tmp_path: Path, amount: float) -> None:
    """KeysService takes a double, so NaN and infinities (which JSON cannot carry) arrive over gRPC."""
    accounts = AccountsHarness(tmp_path, in_process=True).start()
    try:
        key_id, _ = accounts.create_key()
        auth = (("authorization", f"Bearer {ADMIN_KEY}"),)

        async def body() -> None:
            async with grpc.aio.insecure_channel(accounts.grpc_target) as channel:
                keys = admin_pb2_grpc.KeysServiceStub(channel)
                spec = admin_pb2.KeySpec(name="odd", credit_limit=amount)
                found = await refused(keys.CreateKey(admin_pb2.CreateKeyRequest(spec=spec), metadata=auth))
                assert_invalid(found, "credit_limit", "invalid_value")
                update = admin_pb2.SetCreditLimitRequest(id=key_id, credit_limit=amount)
                found = await refused(keys.SetCreditLimit(update, metadata=auth))
                assert_invalid(found, "credit_limit", "invalid_value")

        asyncio.run(body())
    finally:
        accounts.stop()


# --- bytes that are no protobuf ---------------------------------------------------------------


def _varint(value: int) -> bytes:
    out = b""
    while value > 0x7F:
        out += bytes([value & 0x7F | 0x80])
        value >>= 7
    return out + bytes([value])


def _field(number: int, payload: bytes) -> bytes:
    """One length-delimited field, encoded by hand (the point is bytes no stub would produce)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _nested_too_deep() -> bytes:
    """`params.extra_body` holding a list nested 200 deep: more than the parser's limit of 100."""
    value = b""
    for _ in range(200):
        value = _field(6, _field(1, value))  # Value.list_value -> ListValue.values -> Value
    entry = _field(1, b"deep") + _field(2, value)  # Struct.fields map entry
    params = _field(41, _field(1, entry))  # field 41 is `extra_body` in each family's params
    return _field(1, params)


GARBAGE = [
    b"\xff\xff\xff\xff",
    # A length-delimited field whose length runs past the end.
    b"\x0a\x7f",
    # A string field (`params.model`, or WatchVideo's `id`) holding bytes that are not UTF-8.
    b"\x0a\x04\x0a\x02\xc3\x28",
    _nested_too_deep(),
]


@pytest.mark.parametrize(
    ("method", "streaming"),
    [
        ("/siraya.router.v1.ChatService/CreateChatCompletion", False),
        ("/siraya.router.v1.ChatService/StreamChatCompletion", True),
        ("/siraya.router.v1.EmbeddingsService/CreateEmbedding", False),
        ("/siraya.router.v1.VideosService/WatchVideo", True),
    ],
)
def test_garbage_bytes_are_invalid_argument_with_a_generic_message(
    harness: GatewayHarness, method: str, streaming: bool
) -> None:
    async def body(channel: grpc.aio.Channel, auth: Metadata) -> None:
        # No serializers: the bytes go out exactly as written.
        if streaming:
            call: Callable[..., Any] = channel.unary_stream(method)
        else:
            call = channel.unary_unary(method)
        for garbage in GARBAGE:
            found = await (
                refused_stream(call(garbage, metadata=auth))
                if streaming
                else refused(call(garbage, metadata=auth))
            )
            assert found["grpc_code"] == grpc.StatusCode.INVALID_ARGUMENT, found
            assert found["code"] == "invalid_protobuf" and found["http_status"] == "400", found
            assert "not a valid protobuf" in found["message"], found
            for leak in ("rror parsing", "DecodeError", "class", "Traceback"):
                assert leak not in found["message"], found

    run(harness, body)


# --- the same request, the same refusal, through either door ----------------------------------

CHAT = {"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]}
PARITY_CASES: list[tuple[str, dict[str, Any], str, str]] = [
    ("/chat/completions", {**CHAT, "messages": []}, "messages", "empty_array"),
    ("/chat/completions", {**CHAT, "model": ""}, "model", "invalid_value"),
    (
        "/chat/completions",
        {**CHAT, "messages": [{"content": "x"}]},
        "messages[0].role",
        "missing_required_parameter",
    ),
    (
        "/chat/completions",
        {**CHAT, "messages": [{"role": "wizard", "content": "x"}]},
        "messages[0].role",
        "invalid_value",
    ),
    (
        "/chat/completions",
        {**CHAT, "messages": [{"role": "user"}]},
        "messages[0].content",
        "missing_required_parameter",
    ),
    (
        "/chat/completions",
        {**CHAT, "messages": [{"role": "user", "content": [{"text": "no type"}]}]},
        "messages[0].content[0].type",
        "missing_required_parameter",
    ),
    ("/chat/completions", {**CHAT, "tools": [{"type": "browser"}]}, "tools[0].type", "invalid_value"),
    (
        "/chat/completions",
        {**CHAT, "tools": [{"type": "function"}]},
        "tools[0].function",
        "missing_required_parameter",
    ),
    (
        "/chat/completions",
        {**CHAT, "tools": [{"type": "function", "function": {"name": "f", "parameters": [1]}}]},
        "tools[0].function.parameters",
        "invalid_type",
    ),
    (
        "/chat/completions",
        {**CHAT, "response_format": {"type": "json_schema"}},
        "response_format.json_schema",
        "missing_required_parameter",
    ),
    ("/chat/completions", {**CHAT, "function_call": 1}, "function_call", "invalid_type"),
    ("/chat/completions", {**CHAT, "provider": {"sort": "cheapest"}}, "provider.sort", "invalid_value"),
    ("/chat/completions", {**CHAT, "models": [""]}, "models[0]", "invalid_value"),
    (
        "/chat/completions",
        {**CHAT, "provider": {"max_price": {"prompt": -1}}},
        "provider.max_price.prompt",
        "invalid_value",
    ),
    ("/responses", {"model": "gpt-test"}, "input", "missing_required_parameter"),
    (
        "/responses",
        {"model": "gpt-test", "input": "x", "tool_choice": "sometimes"},
        "tool_choice",
        "invalid_value",
    ),
    ("/responses", {"model": "gpt-test", "input": "x", "conversation": 5}, "conversation", "invalid_type"),
    ("/embeddings", {"model": "embed-test", "input": ""}, "input", "invalid_value"),
    ("/embeddings", {"model": "embed-test", "input": []}, "input", "invalid_value"),
    ("/embeddings", {"model": "embed-test", "input": ["a", ""]}, "input[1]", "invalid_value"),
    ("/embeddings", {"model": "embed-test", "input": [1, -2]}, "input[1]", "invalid_value"),
    ("/embeddings", {"model": "embed-test", "input": [[1], []]}, "input[1]", "invalid_value"),
    (
        "/embeddings",
        {"model": "embed-test", "input": "x", "encoding_format": "hex"},
        "encoding_format",
        "invalid_value",
    ),
    ("/images/generations", {"model": "image-test", "prompt": ""}, "prompt", "invalid_value"),
    (
        "/images/generations",
        {"model": "image-test", "prompt": "p", "response_format": "gif"},
        "response_format",
        "invalid_value",
    ),
    ("/videos", {"model": "video-test", "prompt": "p", "seconds": "4.5"}, "seconds", "invalid_value"),
    ("/videos", {"model": "video-test", "prompt": "p", "seconds": "²"}, "seconds", "invalid_value"),
    (
        "/videos",
        {
            "model": "video-test",
            "prompt": "p",
            "input_reference": {"image_url": "https://x/a.png", "file_id": "f"},
        },
        "input_reference",
        "invalid_value",
    ),
]


async def _grpc_call(channel: grpc.aio.Channel, path: str, body: dict[str, Any], auth: Metadata) -> Any:
    """The same body as the proto a gRPC caller would send (the REST decoder builds it)."""
    if path == "/chat/completions":
        return await chat_pb2_grpc.ChatServiceStub(channel).CreateChatCompletion(
            chat_pb2.CreateChatCompletionRequest(params=decode_chat_request(body)), metadata=auth
        )
    if path == "/responses":
        return await responses_pb2_grpc.ResponsesServiceStub(channel).CreateResponse(
            responses_pb2.CreateResponseRequest(params=decode_response_request(body)), metadata=auth
        )
    if path == "/embeddings":
        return await embeddings_pb2_grpc.EmbeddingsServiceStub(channel).CreateEmbedding(
            embeddings_pb2.CreateEmbeddingRequest(params=decode_embedding_request(body)), metadata=auth
        )
    if path == "/images/generations":
        return await images_pb2_grpc.ImagesServiceStub(channel).GenerateImages(
            images_pb2.GenerateImagesRequest(params=decode_image_request(body)), metadata=auth
        )
    return await videos_pb2_grpc.VideosServiceStub(channel).CreateVideo(
        videos_pb2.CreateVideoRequest(params=decode_video_request(body)), metadata=auth
    )


@pytest.mark.parametrize(("path", "body", "param", "code"), PARITY_CASES)
def test_rest_and_grpc_refuse_the_same_request_alike(
    harness: GatewayHarness, path: str, body: dict[str, Any], param: str, code: str
) -> None:
    response = httpx.post(
        f"{harness.base_url}{path}",
        json=body,
        headers={"Authorization": f"Bearer {harness.api_key}"},
        timeout=20,
    )
    assert response.status_code == 400, response.text
    rest = response.json()["error"]
    assert (rest["param"], rest["code"], rest["type"]) == (param, code, "invalid_request_error"), rest

    async def over_grpc(channel: grpc.aio.Channel, auth: Metadata) -> None:
        found = await refused(_grpc_call(channel, path, body, auth))
        assert_invalid(found, param, code)
        assert found["message"] == rest["message"]

    run(harness, over_grpc)
