"""CompletionsService through generated stubs on a real grpc.aio connection (an internal caller)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from siraya.router.codec.completions import encode_completion
from siraya.router.v1 import completions_pb2, completions_pb2_grpc
from tests.e2e.clients_harness import ClientsGatewayHarness
from tests.openapi_schema import assert_matches_schema

Metadata = tuple[tuple[str, str], ...]


def run(
    gateway: ClientsGatewayHarness,
    body: Callable[[completions_pb2_grpc.CompletionsServiceStub, Metadata], Awaitable[None]],
) -> None:
    async def scenario() -> None:
        async with grpc.aio.insecure_channel(gateway.grpc_target) as channel:
            await body(
                completions_pb2_grpc.CompletionsServiceStub(channel),
                (("authorization", f"Bearer {gateway.api_key}"),),
            )

    asyncio.run(scenario())


def error_info(error: grpc.aio.AioRpcError) -> error_details_pb2.ErrorInfo:
    details = dict(error.trailing_metadata())["grpc-status-details-bin"]
    status = status_pb2.Status.FromString(details)
    info = error_details_pb2.ErrorInfo()
    status.details[0].Unpack(info)
    return info


def test_unary_with_prompts_and_echo(clients_gateway: ClientsGatewayHarness) -> None:
    async def body(stub: completions_pb2_grpc.CompletionsServiceStub, auth: Metadata) -> None:
        params = completions_pb2.CompletionParams(model="gemini-flash", echo=True, n=2, max_tokens=30)
        params.texts.values.extend(["grpc one", "grpc two"])
        call = stub.CreateCompletion(completions_pb2.CreateCompletionRequest(params=params), metadata=auth)
        reply = await call
        completion = reply.completion
        assert completion.object == "text_completion" and completion.id.startswith("cmpl-")
        assert completion.model == "gemini-flash" and completion.provider == "google"
        assert [(c.index, c.text, c.finish_reason) for c in completion.choices] == [
            (0, "grpc oneecho: grpc one", "stop"),
            (1, "grpc oneecho: grpc one", "stop"),
            (2, "grpc twoecho: grpc two", "stop"),
            (3, "grpc twoecho: grpc two", "stop"),
        ]
        assert completion.usage.completion_tokens > 0
        assert (
            completion.usage.total_tokens
            == completion.usage.prompt_tokens + completion.usage.completion_tokens
        )
        assert dict(await call.trailing_metadata())["x-request-id"].startswith("req_")
        # What the bridge writes for it is OpenAI's CreateCompletionResponse.
        assert_matches_schema(json.loads(encode_completion(completion)), "CreateCompletionResponse")

    run(clients_gateway, body)


def test_stream_with_usage(clients_gateway: ClientsGatewayHarness) -> None:
    async def body(stub: completions_pb2_grpc.CompletionsServiceStub, auth: Metadata) -> None:
        params = completions_pb2.CompletionParams(model="gpt-test", text="streamed over grpc")
        params.stream_options.include_usage = True
        chunks = [
            reply.chunk
            async for reply in stub.StreamCompletion(
                completions_pb2.StreamCompletionRequest(params=params), metadata=auth
            )
        ]
        assert "".join(c.choices[0].text for c in chunks if c.choices) == "echo: streamed over grpc"
        assert len({c.id for c in chunks}) == 1 and {c.object for c in chunks} == {"text_completion"}
        assert [
            c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].HasField("finish_reason")
        ] == ["stop"]
        *texts, final = chunks
        assert not final.choices and final.usage.completion_tokens > 0
        assert not any(c.HasField("usage") for c in texts)

    run(clients_gateway, body)


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"suffix": "after"}, "suffix"),
        ({"best_of": 4}, "best_of"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"text": None}, "prompt"),
    ],
)
def test_invalid_params_are_invalid_argument(
    clients_gateway: ClientsGatewayHarness, change: dict[str, object], param: str
) -> None:
    async def body(stub: completions_pb2_grpc.CompletionsServiceStub, auth: Metadata) -> None:
        params = completions_pb2.CompletionParams(model="gpt-test", text="x")
        for name, value in change.items():
            if value is None:
                params.ClearField(name)
            else:
                setattr(params, name, value)
        for call in (
            stub.CreateCompletion(completions_pb2.CreateCompletionRequest(params=params), metadata=auth),
            stub.StreamCompletion(
                completions_pb2.StreamCompletionRequest(params=params), metadata=auth
            ).read(),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await call
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            info = error_info(caught.value)
            assert info.metadata["param"] == param and info.metadata["http_status"] == "400"

    run(clients_gateway, body)


def test_auth_and_unknown_model(clients_gateway: ClientsGatewayHarness) -> None:
    async def body(stub: completions_pb2_grpc.CompletionsServiceStub, auth: Metadata) -> None:
        params = completions_pb2.CompletionParams(model="gpt-test", text="x")
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.CreateCompletion(completions_pb2.CreateCompletionRequest(params=params))
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
        params.model = "no-such-model"
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.CreateCompletion(completions_pb2.CreateCompletionRequest(params=params), metadata=auth)
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
        assert error_info(caught.value).metadata["code"] == "model_not_found"

    run(clients_gateway, body)
