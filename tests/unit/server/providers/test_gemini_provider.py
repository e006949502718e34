"""GeminiProvider's HTTP against the fake Gemini API: auth, SSE framing, faults, media and video jobs."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from server.config import GeminiProviderConfig
from server.errors import GatewayError, InvalidRequest, RateLimited, RequestTimeout, UpstreamError
from server.providers.base import RequestContext
from server.providers.gemini import GeminiProvider
from server.providers.remote_media import MediaFetcher, MediaPolicy
from siraya.router.codec.chat_request import decode_chat_request
from siraya.router.v1 import chat_pb2, embeddings_pb2, images_pb2, videos_pb2
from tests.fakes.gemini_upstream import FakeGeminiUpstream, GeminiFault, GeminiReply, ScriptedCall
from tests.fakes.openai_upstream.media import TINY_PNG

KEY = "AIzaSy-provider-test-key-42"
CTX = RequestContext(request_id="req-1")
TOOL = {
    "type": "function",
    "function": {
        "name": "lookup",
        "parameters": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]},
    },
}


@pytest.fixture
async def fake() -> AsyncIterator[FakeGeminiUpstream]:
    async with FakeGeminiUpstream(api_key=KEY, video_polls=2) as upstream:
        yield upstream


def _provider(base_url: str, key: str = KEY, **settings: Any) -> GeminiProvider:
    config = GeminiProviderConfig(name="gemini", base_url=base_url, api_key=key, **settings)
    fetcher = MediaFetcher(MediaPolicy(allow_private_addresses=True, allow_http=True))
    return GeminiProvider(config, media_fetcher=fetcher)


@pytest.fixture
async def provider(fake: FakeGeminiUpstream) -> AsyncIterator[GeminiProvider]:
    gemini = _provider(fake.base_url)
    yield gemini
    await gemini.close()


def _chat(**body: Any) -> chat_pb2.ChatCompletionParams:
    body.setdefault("model", "gemini-test")
    body.setdefault("messages", [{"role": "user", "content": "hello gemini"}])
    return decode_chat_request(body)


async def _collect(stream: AsyncIterator[chat_pb2.ChatCompletionChunk]) -> list[chat_pb2.ChatCompletionChunk]:
    return [chunk async for chunk in stream]


async def test_chat_sends_the_key_as_a_header_and_never_in_the_url(
    fake: FakeGeminiUpstream, provider: GeminiProvider
) -> None:
    completion = await provider.chat(_chat(temperature=0.2), "gemini-2.5-flash", CTX)
    assert completion.choices[0].message.content == "echo: hello gemini"
    assert (
        completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens
    )
    record = fake.requests[-1]
    assert record.path == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert record.headers["x-goog-api-key"] == KEY and "key" not in record.query
    assert "authorization" not in record.headers
    assert record.json == {
        "contents": [{"role": "user", "parts": [{"text": "hello gemini"}]}],
        "generationConfig": {"temperature": 0.2},
    }


async def test_streaming_reads_crlf_framed_sse(fake: FakeGeminiUpstream, provider: GeminiProvider) -> None:
    params = _chat(stream_options={"include_usage": True}, reasoning_effort="medium")
    chunks = await _collect(provider.stream_chat(params, "gemini-2.5-flash", CTX))
    record = fake.requests[-1]
    assert record.path.endswith(":streamGenerateContent") and record.query == {"alt": "sse"}
    assert chunks[0].choices[0].delta.role == "assistant"
    assert (
        "".join(c.choices[0].delta.reasoning for c in chunks if c.choices) == "Thinking about: hello gemini"
    )
    assert "".join(c.choices[0].delta.content for c in chunks if c.choices) == "echo: hello gemini"
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == [
        "stop"
    ]
    usage = chunks[-1].usage
    assert not chunks[-1].choices and usage.completion_tokens_details.reasoning_tokens == 4
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


async def test_a_tool_round_trip_passes_the_upstream_shape_checks(
    fake: FakeGeminiUpstream, provider: GeminiProvider
) -> None:
    fake.script(GeminiReply(calls=[ScriptedCall("lookup", {"q": "cats"}, thought_signature="c2lnbmF0dXJl")]))
    first = await provider.chat(_chat(tools=[TOOL], tool_choice="required"), "gemini-2.5-pro", CTX)
    call = first.choices[0].message.tool_calls[0]
    assert first.choices[0].finish_reason == "tool_calls" and call.function.arguments == '{"q":"cats"}'
    assert fake.requests[-1].json["toolConfig"] == {"functionCallingConfig": {"mode": "ANY"}}
    history = [
        {"role": "user", "content": "hello gemini"},
        {
            "role": "assistant",
            "tool_calls": [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": "lookup", "arguments": call.function.arguments},
                }
            ],
        },
        {"role": "tool", "tool_call_id": call.id, "content": "cats are great"},
    ]
    answer = await provider.chat(_chat(tools=[TOOL], messages=history), "gemini-2.5-pro", CTX)
    assert answer.choices[0].message.content == 'result: [{"output":"cats are great"}]'
    sent = fake.requests[-1].json["contents"]
    assert sent[1]["parts"][0]["thoughtSignature"] == "c2lnbmF0dXJl"
    assert sent[2] == {
        "role": "user",
        "parts": [{"functionResponse": {"name": "lookup", "response": {"output": "cats are great"}}}],
    }


async def test_the_fake_refuses_a_turn_that_answers_only_some_calls(provider: GeminiProvider) -> None:
    calls = [
        {"id": f"call_{n}", "type": "function", "function": {"name": "lookup", "arguments": '{"q": "x"}'}}
        for n in (1, 2)
    ]
    history = [
        {"role": "user", "content": "two lookups"},
        {"role": "assistant", "tool_calls": calls},
        {"role": "tool", "tool_call_id": "call_1", "content": "one"},
        {"role": "user", "content": "and?"},
    ]
    with pytest.raises(InvalidRequest) as caught:
        await provider.chat(_chat(tools=[TOOL], messages=history), "gemini-2.5-flash", CTX)
    assert "number of function response parts" in caught.value.message


async def test_an_https_image_is_fetched_and_inlined(
    fake: FakeGeminiUpstream, provider: GeminiProvider
) -> None:
    async def image(request: web.Request) -> web.Response:
        return web.Response(body=TINY_PNG, content_type="image/png")

    app = web.Application()
    app.router.add_get("/cat.png", image)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        content = [
            {"type": "text", "text": "describe"},
            {"type": "image_url", "image_url": {"url": f"http://127.0.0.1:{port}/cat.png"}},
        ]
        await provider.chat(_chat(messages=[{"role": "user", "content": content}]), "gemini-2.5-flash", CTX)
    finally:
        await runner.cleanup()
    part = fake.requests[-1].json["contents"][0]["parts"][1]
    assert part == {"inlineData": {"mimeType": "image/png", "data": base64.b64encode(TINY_PNG).decode()}}


@pytest.mark.parametrize("allowed", [False, True])
async def test_the_provider_config_decides_whether_private_image_hosts_are_fetched(
    fake: FakeGeminiUpstream, allowed: bool
) -> None:
    config = GeminiProviderConfig(
        name="gemini",
        base_url=fake.base_url,
        api_key=KEY,
        media_allow_private_addresses=allowed,
        media_allow_http=allowed,
    )
    gemini = GeminiProvider(config)  # the fetcher comes from the config, as in the gateway
    content = [{"type": "image_url", "image_url": {"url": f"http://127.0.0.1:{fake.port}/media/a.png"}}]
    request = _chat(messages=[{"role": "user", "content": content}])
    try:
        if allowed:
            await gemini.chat(request, "gemini-2.5-flash", CTX)
            assert fake.requests_to("/media/a.png") and fake.requests_to(":generateContent")
        else:
            with pytest.raises(InvalidRequest) as caught:
                await gemini.chat(request, "gemini-2.5-flash", CTX)
            assert caught.value.param == "messages[0].content[0].image_url"
            assert not fake.requests
    finally:
        await gemini.close()


async def test_unsupported_parameters_are_refused_before_any_upstream_call(
    fake: FakeGeminiUpstream, provider: GeminiProvider
) -> None:
    with pytest.raises(InvalidRequest) as caught:
        await provider.chat(_chat(logit_bias={"1": 5}), "gemini-2.5-flash", CTX)
    assert caught.value.param == "logit_bias" and "gemini" in caught.value.message
    assert not fake.requests


# -- failures ----------------------------------------------------------------------------------


async def test_rate_limits_carry_the_retry_info_delay(
    fake: FakeGeminiUpstream, provider: GeminiProvider
) -> None:
    fake.inject(
        GeminiFault(status=429, grpc_status="RESOURCE_EXHAUSTED", message="Quota exceeded.", retry_delay="7s")
    )
    with pytest.raises(RateLimited) as caught:
        await provider.chat(_chat(), "gemini-2.5-flash", CTX)
    assert caught.value.retry_after == 7.0


@pytest.mark.parametrize("key", ["AIza-wrong-key", ""])
async def test_a_bad_or_missing_key_is_an_upstream_error_with_googles_words_and_no_key(
    fake: FakeGeminiUpstream, key: str
) -> None:
    gemini = _provider(fake.base_url, key=key)
    try:
        with pytest.raises(UpstreamError) as caught:
            await gemini.chat(_chat(), "gemini-2.5-flash", CTX)
    finally:
        await gemini.close()
    assert "credentials" in caught.value.message
    # Google's own explanation reaches the operator; the key it was about never does.
    assert (key or "AIza") not in caught.value.message and "api key" in caught.value.message.lower()


@pytest.mark.parametrize(
    ("fault", "kind"),
    [
        (GeminiFault(status=500, grpc_status="INTERNAL"), UpstreamError),
        (
            GeminiFault(status=503, grpc_status="UNAVAILABLE", message="The model is overloaded."),
            UpstreamError,
        ),
        (
            GeminiFault(status=504, grpc_status="DEADLINE_EXCEEDED", message="Deadline expired."),
            RequestTimeout,
        ),
        (
            GeminiFault(status=400, grpc_status="FAILED_PRECONDITION", message="Location not supported."),
            InvalidRequest,
        ),
        (GeminiFault(garbage=True), UpstreamError),
    ],
)
async def test_upstream_failures_are_classified(
    fake: FakeGeminiUpstream, provider: GeminiProvider, fault: GeminiFault, kind: type[GatewayError]
) -> None:
    fake.inject(fault)
    with pytest.raises(kind):
        await provider.chat(_chat(), "gemini-2.5-flash", CTX)


async def test_an_unknown_model_is_an_upstream_error(provider: GeminiProvider) -> None:
    with pytest.raises(UpstreamError) as caught:
        await provider.chat(_chat(), "missing-model", CTX)
    assert "404" in caught.value.message


async def test_errors_in_the_middle_of_a_stream(fake: FakeGeminiUpstream, provider: GeminiProvider) -> None:
    fake.inject(GeminiFault(error_after_events=1, grpc_status="INTERNAL", message="boom"))
    received: list[chat_pb2.ChatCompletionChunk] = []
    with pytest.raises(UpstreamError):
        async for chunk in provider.stream_chat(_chat(), "gemini-2.5-flash", CTX):
            received.append(chunk)
    assert len(received) == 1
    fake.inject(GeminiFault(cut_after_events=1))
    with pytest.raises(UpstreamError) as caught:
        await _collect(provider.stream_chat(_chat(), "gemini-2.5-flash", CTX))
    assert "finishReason" in caught.value.message


async def test_a_silent_upstream_times_out(fake: FakeGeminiUpstream) -> None:
    gemini = _provider(fake.base_url, read_timeout=0.2)
    fake.inject(GeminiFault(hang=1.0))
    try:
        with pytest.raises(RequestTimeout):
            await gemini.chat(_chat(), "gemini-2.5-flash", CTX)
    finally:
        await gemini.close()


# -- embeddings, images, videos ----------------------------------------------------------------


async def test_embeddings(fake: FakeGeminiUpstream, provider: GeminiProvider) -> None:
    params = embeddings_pb2.EmbeddingParams(
        model="e", texts=embeddings_pb2.StringList(values=["a", "b", "c"]), dimensions=4
    )
    result = await provider.embed(params, "gemini-embedding-001", CTX)
    assert [len(item.embedding) for item in result.data] == [4, 4, 4]
    assert fake.requests[-1].path == "/v1beta/models/gemini-embedding-001:batchEmbedContents"


async def test_imagen_and_gemini_images(fake: FakeGeminiUpstream, provider: GeminiProvider) -> None:
    imagen = await provider.generate_images(
        images_pb2.ImageParams(prompt="fox", n=2), "imagen-4.0-generate-001", CTX
    )
    assert len(imagen.data) == 2 and base64.b64decode(imagen.data[0].b64_json) == TINY_PNG
    assert fake.requests[-1].path.endswith("imagen-4.0-generate-001:predict")
    gemini = await provider.generate_images(
        images_pb2.ImageParams(prompt="fox", n=2), "gemini-2.5-flash-image", CTX
    )
    assert len(gemini.data) == 2 and gemini.usage.output_tokens == 2 * 1290
    assert len(fake.requests_to("gemini-2.5-flash-image:generateContent")) == 2


async def test_a_veo_job_from_creation_to_download(
    fake: FakeGeminiUpstream, provider: GeminiProvider
) -> None:
    params = videos_pb2.VideoParams(prompt="a cat surfing", seconds="4", size="720x1280")
    params.input_reference.data = TINY_PNG
    created = await provider.create_video(params, "veo-3.0-generate-001", CTX)
    assert (created.status, created.seconds, created.size) == ("queued", "4", "720x1280")
    sent = fake.requests[-1].json
    assert sent["parameters"] == {"durationSeconds": 4, "aspectRatio": "9:16"}
    assert sent["instances"][0]["image"]["mimeType"] == "image/png"
    polled = [await provider.get_video(created.id, CTX) for _ in range(2)]
    assert [(v.status, v.progress) for v in polled] == [("in_progress", 0), ("completed", 100)]
    assert all(v.created_at == created.created_at and v.id == created.id for v in polled)
    content = await provider.download_video(created.id, "video", CTX)
    data = b"".join([chunk async for chunk in content.chunks])
    assert content.content_type == "video/mp4" and data.startswith(b"\x00\x00\x00\x18ftypmp42")
    download, blob = fake.requests[-2:]
    assert download.path.endswith(":download") and download.headers["x-goog-api-key"] == KEY
    assert blob.path.startswith("/blobs/")
    with pytest.raises(InvalidRequest):
        await provider.download_video(created.id, "thumbnail", CTX)


async def test_a_failed_veo_job(provider: GeminiProvider) -> None:
    created = await provider.create_video(
        videos_pb2.VideoParams(prompt="please fail"), "veo-2.0-generate-001", CTX
    )
    await provider.get_video(created.id, CTX)
    failed = await provider.get_video(created.id, CTX)
    assert failed.status == "failed" and failed.error.message == "The prompt could not be rendered."
    with pytest.raises(InvalidRequest):
        await provider.download_video(created.id, "video", CTX)


async def test_the_key_never_goes_to_a_download_uri_on_another_origin(fake: FakeGeminiUpstream) -> None:
    # Through "localhost" the provider's origin differs from the 127.0.0.1 URIs the fake hands out.
    gemini = _provider(fake.base_url.replace("127.0.0.1", "localhost"))
    try:
        created = await gemini.create_video(videos_pb2.VideoParams(prompt="x"), "veo-3.0-generate-001", CTX)
        for _ in range(2):
            await gemini.get_video(created.id, CTX)
        with pytest.raises(UpstreamError):
            await gemini.download_video(created.id, "video", CTX)
    finally:
        await gemini.close()
    assert "x-goog-api-key" not in fake.requests[-1].headers and fake.requests[-1].path.endswith(":download")
