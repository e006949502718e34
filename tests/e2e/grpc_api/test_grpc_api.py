"""Every gRPC service through generated stubs on a real grpc.aio connection."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from siraya.router.codec.chat import decode_chat_chunk, decode_chat_completion
from siraya.router.v1 import (
    chat_pb2,
    chat_pb2_grpc,
    embeddings_pb2,
    embeddings_pb2_grpc,
    images_pb2,
    images_pb2_grpc,
    models_pb2,
    models_pb2_grpc,
    responses_pb2,
    responses_pb2_grpc,
    videos_pb2,
    videos_pb2_grpc,
)
from tests.e2e.harness import GatewayHarness


def chat_params(text: str, model: str = "gpt-test") -> chat_pb2.ChatCompletionParams:
    return chat_pb2.ChatCompletionParams(
        model=model, messages=[chat_pb2.ChatMessage(role=chat_pb2.CHAT_ROLE_USER, text=text)]
    )


def run(harness: GatewayHarness, body) -> None:  # type: ignore[no-untyped-def]
    async def scenario() -> None:
        async with grpc.aio.insecure_channel(harness.grpc_target) as channel:
            await body(channel, (("authorization", f"Bearer {harness.api_key}"),))

    asyncio.run(scenario())


def test_health_and_models(harness: GatewayHarness) -> None:
    async def body(channel: grpc.aio.Channel, auth) -> None:  # type: ignore[no-untyped-def]
        health = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        models = models_pb2_grpc.ModelsServiceStub(channel)
        call = models.ListModels(models_pb2.ListModelsRequest(), metadata=auth)
        listed = await call
        assert "gpt-test" in {m.id for m in listed.data}
        # Every unary RPC tells its caller the gateway's request id, with the reply.
        assert str(dict(await call.trailing_metadata())["x-request-id"]).startswith("req_")
        got = await models.GetModel(models_pb2.GetModelRequest(id="embed-test"), metadata=auth)
        assert got.model.kind == models_pb2.MODEL_KIND_EMBEDDING

    run(harness, body)


def test_chat_unary_and_stream(harness: GatewayHarness) -> None:
    async def body(channel: grpc.aio.Channel, auth) -> None:  # type: ignore[no-untyped-def]
        chat = chat_pb2_grpc.ChatServiceStub(channel)
        reply = await chat.CreateChatCompletion(
            chat_pb2.CreateChatCompletionRequest(params=chat_params("over grpc")), metadata=auth
        )
        assert reply.completion.choices[0].message.content == "echo: over grpc"
        assert reply.completion.provider == "fake"
        text = ""
        async for message in chat.StreamChatCompletion(
            chat_pb2.StreamChatCompletionRequest(params=chat_params("streamed over grpc")), metadata=auth
        ):
            for choice in message.chunk.choices:
                text += choice.delta.content
        assert text == "echo: streamed over grpc"

    run(harness, body)


def _without_per_call_fields(message: Any) -> Any:
    """What two calls for the same answer share: not the id, the time, nor the gateway's stamps."""
    message.ClearField("id")
    message.ClearField("created")
    message.ClearField("provider")
    if message.HasField("usage"):
        message.usage.ClearField("cost")
    return message


def test_chat_stream_as_openai_json_matches_the_proto_stream(harness: GatewayHarness) -> None:
    """`openai_json` (what the HTTP bridge asks for) carries the upstream's own chunks (the relay
    lane: keys in the upstream's order, unknown ones kept); decoded, they are the proto stream."""

    async def body(channel: grpc.aio.Channel, auth) -> None:  # type: ignore[no-untyped-def]
        chat = chat_pb2_grpc.ChatServiceStub(channel)
        params = chat_params("the same either way")
        params.stream_options.include_usage = True
        as_protos = [
            message.chunk
            async for message in chat.StreamChatCompletion(
                chat_pb2.StreamChatCompletionRequest(params=params), metadata=auth
            )
        ]
        replies = [
            message
            async for message in chat.StreamChatCompletion(
                chat_pb2.StreamChatCompletionRequest(params=params, openai_json=True), metadata=auth
            )
        ]
        assert all(reply.WhichOneof("reply") == "chunk_json" for reply in replies)
        assert {reply.provider for reply in replies} == {"fake"}
        as_json = [json.loads(reply.chunk_json) for reply in replies]
        assert {chunk["provider"] for chunk in as_json} == {"fake"} and as_json[0]["model"] == "gpt-test"
        assert "cost" in as_json[-1]["usage"] and as_protos[-1].usage.HasField("cost")
        decoded = [decode_chat_chunk(chunk) for chunk in as_json]
        assert list(map(_without_per_call_fields, decoded)) == list(map(_without_per_call_fields, as_protos))

    run(harness, body)


def test_chat_as_openai_json_matches_the_proto_completion(harness: GatewayHarness) -> None:
    async def body(channel: grpc.aio.Channel, auth) -> None:  # type: ignore[no-untyped-def]
        chat = chat_pb2_grpc.ChatServiceStub(channel)
        params = chat_params("one answer, two encodings")
        as_proto = await chat.CreateChatCompletion(
            chat_pb2.CreateChatCompletionRequest(params=params), metadata=auth
        )
        as_json = await chat.CreateChatCompletion(
            chat_pb2.CreateChatCompletionRequest(params=params, openai_json=True), metadata=auth
        )
        assert as_json.WhichOneof("reply") == "completion_json" and as_json.provider == "fake"
        got = json.loads(as_json.completion_json)
        assert got["model"] == "gpt-test" and got["provider"] == "fake" and "cost" in got["usage"]
        assert as_proto.completion.provider == "fake" and as_proto.completion.usage.HasField("cost")
        assert _without_per_call_fields(decode_chat_completion(got)) == _without_per_call_fields(
            as_proto.completion
        )

    run(harness, body)


def test_a_grpc_caller_may_send_its_openai_body(harness: GatewayHarness) -> None:
    """`openai_body` from a gRPC caller: the gateway decodes the params it routes, meters and
    moderates from that body (whatever `params` says), and relays the body's fields as written."""

    async def body(channel: grpc.aio.Channel, auth) -> None:  # type: ignore[no-untyped-def]
        chat = chat_pb2_grpc.ChatServiceStub(channel)
        openai_body = (
            b'{"model":"gpt-test","messages":[{"role":"user","content":"from the body"}],'
            b'"x_vendor_knob":{"a":[1,2]}}'
        )
        reply = await chat.CreateChatCompletion(
            chat_pb2.CreateChatCompletionRequest(
                params=chat_params("from params", model="gpt-translated"), openai_body=openai_body
            ),
            metadata=auth,
        )
        assert reply.completion.choices[0].message.content == "echo: from the body"
        assert reply.completion.model == "gpt-test" and reply.completion.provider == "fake"
        sent = harness.native.requests_to("/v1/chat/completions")[-1].body
        assert sent == openai_body.replace(b'"gpt-test"', b'"gpt-4o-mini"')[:-1] + b',"stream":false}'
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await chat.CreateChatCompletion(
                chat_pb2.CreateChatCompletionRequest(openai_body=b'{"model":"gpt-test"}'), metadata=auth
            )
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "messages" in (refused.value.details() or "")

    run(harness, body)


def test_responses_embeddings_images(harness: GatewayHarness) -> None:
    async def body(channel: grpc.aio.Channel, auth) -> None:  # type: ignore[no-untyped-def]
        responses = responses_pb2_grpc.ResponsesServiceStub(channel)
        params = responses_pb2.ResponseParams(model="gpt-translated", input_text="grpc responses")
        reply = await responses.CreateResponse(
            responses_pb2.CreateResponseRequest(params=params), metadata=auth
        )
        assert reply.response.output[0].content[0].text == "echo: grpc responses"
        types = [
            m.event.type
            async for m in responses.StreamResponse(
                responses_pb2.StreamResponseRequest(params=params), metadata=auth
            )
        ]
        assert types[0] == "response.created" and types[-1] == "response.completed"

        embeddings = embeddings_pb2_grpc.EmbeddingsServiceStub(channel)
        result = await embeddings.CreateEmbedding(
            embeddings_pb2.CreateEmbeddingRequest(
                params=embeddings_pb2.EmbeddingParams(model="embed-test", text="vector me", dimensions=6)
            ),
            metadata=auth,
        )
        assert len(result.result.data[0].embedding) == 6

        images = images_pb2_grpc.ImagesServiceStub(channel)
        generated = await images.GenerateImages(
            images_pb2.GenerateImagesRequest(
                params=images_pb2.ImageParams(model="image-test", prompt="dot", n=1)
            ),
            metadata=auth,
        )
        assert len(generated.result.data) == 1

    run(harness, body)


def test_video_watch_and_download(harness: GatewayHarness) -> None:
    async def body(channel: grpc.aio.Channel, auth) -> None:  # type: ignore[no-untyped-def]
        videos = videos_pb2_grpc.VideosServiceStub(channel)
        created = await videos.CreateVideo(
            videos_pb2.CreateVideoRequest(params=videos_pb2.VideoParams(model="video-test", prompt="waves")),
            metadata=auth,
        )
        states = [
            m.video.status
            async for m in videos.WatchVideo(
                videos_pb2.WatchVideoRequest(id=created.video.id, poll_interval=0.01), metadata=auth
            )
        ]
        assert states[-1] == "completed" and "in_progress" in states
        got = await videos.GetVideo(videos_pb2.GetVideoRequest(id=created.video.id), metadata=auth)
        assert got.video.progress == 100
        chunks = [
            m
            async for m in videos.DownloadVideoContent(
                videos_pb2.DownloadVideoContentRequest(id=created.video.id), metadata=auth
            )
        ]
        assert chunks[0].content_type == "video/mp4"
        assert b"".join(c.data for c in chunks)[4:8] == b"ftyp"

    run(harness, body)


def test_errors_carry_google_rpc_status(harness: GatewayHarness) -> None:
    async def body(channel: grpc.aio.Channel, auth) -> None:  # type: ignore[no-untyped-def]
        chat = chat_pb2_grpc.ChatServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await chat.CreateChatCompletion(
                chat_pb2.CreateChatCompletionRequest(params=chat_params("x", model="missing-model")),
                metadata=auth,
            )
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
        details = dict(caught.value.trailing_metadata())["grpc-status-details-bin"]
        status = status_pb2.Status.FromString(details)
        info = error_details_pb2.ErrorInfo()
        status.details[0].Unpack(info)
        assert info.domain == "siraya.ai"
        assert info.metadata["code"] == "model_not_found" and info.metadata["http_status"] == "404"

        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await chat.CreateChatCompletion(chat_pb2.CreateChatCompletionRequest(params=chat_params("x")))
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED

    run(harness, body)


def test_cancelled_stream_closes_the_upstream_request(harness: GatewayHarness) -> None:
    before = harness.native.closed_early

    async def body(channel: grpc.aio.Channel, auth) -> None:  # type: ignore[no-untyped-def]
        chat = chat_pb2_grpc.ChatServiceStub(channel)
        call = chat.StreamChatCompletion(
            chat_pb2.StreamChatCompletionRequest(params=chat_params(" ".join(["word"] * 200))),
            metadata=auth,
        )
        await call.read()
        call.cancel()

    harness.native.chunk_delay = 0.05
    try:
        run(harness, body)
        harness.run(harness.native.wait_closed_early(before + 1, timeout=5))
    finally:
        harness.native.chunk_delay = 0.0
    assert harness.native.closed_early == before + 1


def test_a_callers_request_id_is_a_label_not_the_ledger_identity(harness: GatewayHarness) -> None:
    """A gRPC caller's `x-request-id` can't name records (issue #20 defect 4): each call gets the
    gateway's own id in its metadata, success or failure, and the caller's is kept beside it."""

    async def body(channel: grpc.aio.Channel, auth) -> None:  # type: ignore[no-untyped-def]
        chat = chat_pb2_grpc.ChatServiceStub(channel)
        metadata = (*auth, ("x-request-id", "same-id"))
        ids = []
        for _ in range(2):
            call = chat.CreateChatCompletion(
                chat_pb2.CreateChatCompletionRequest(params=chat_params("ids")), metadata=metadata
            )
            await call
            # A unary call's headers ride with its reply, not in initial metadata of their own.
            assert not await call.initial_metadata()
            ids.append(dict(await call.trailing_metadata())["x-request-id"])
        assert ids[0] != ids[1] and all(rid.startswith("req_") for rid in ids)
        assert harness.native.requests[-1].headers["x-client-request-id"] == "same-id"
        assert harness.native.requests[-1].headers["x-request-id"] == ids[1]
        # A forged bridge token does not make the caller's id ours either.
        forged = chat.CreateChatCompletion(
            chat_pb2.CreateChatCompletionRequest(params=chat_params("ids")),
            metadata=(*metadata, ("x-siraya-bridge", "0" * 32)),
        )
        await forged
        assert dict(await forged.trailing_metadata())["x-request-id"] != "same-id"
        refused = chat.CreateChatCompletion(
            chat_pb2.CreateChatCompletionRequest(params=chat_params("ids", model="no-such-model")),
            metadata=metadata,
        )
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await refused
        trailing = dict(caught.value.trailing_metadata() or ())
        assert str(trailing["x-request-id"]).startswith("req_")

    run(harness, body)
