"""The official OpenAI SDK against the gateway serving gemini-* models from the fake Gemini API."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Iterator
from typing import Any

import grpc
import openai
import pytest

from siraya.router.v1 import videos_pb2, videos_pb2_grpc
from tests.e2e.conformance import Surfaces
from tests.e2e.gemini_harness import GEMINI_KEY, GeminiGatewayHarness
from tests.e2e.openai_door.test_schema_key_order import SCHEMA as ORDERED_SCHEMA
from tests.e2e.openai_door.test_schema_key_order import SCHEMA_BYTES as ORDERED_SCHEMA_BYTES
from tests.fakes.gemini_upstream import GeminiFault, GeminiReply, ScriptedCall
from tests.fakes.openai_upstream.media import TINY_PNG

WEATHER_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


@pytest.fixture(scope="module", params=["in_process", "grpc_hop"])
def gemini(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GeminiGatewayHarness]:
    harness = GeminiGatewayHarness(
        tmp_path_factory.mktemp(f"gemini-{request.param}"), in_process=request.param == "in_process"
    )
    harness.start()
    yield harness
    harness.stop()


@pytest.fixture
def client(gemini: GeminiGatewayHarness) -> openai.OpenAI:
    return openai.OpenAI(base_url=gemini.base_url, api_key=gemini.api_key, max_retries=0, timeout=20)


def test_chat(client: openai.OpenAI, gemini: GeminiGatewayHarness) -> None:
    completion = client.chat.completions.create(
        model="gemini-flash",
        messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello there"}],
        temperature=0.3,
        max_completion_tokens=50,
    )
    assert completion.model == "gemini-flash" and completion.object == "chat.completion"
    assert completion.choices[0].message.content == "echo: hello there"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.total_tokens > 0
    sent = gemini.upstream.requests_to("gemini-2.5-flash:generateContent")[-1]
    assert sent.headers["x-goog-api-key"] == GEMINI_KEY
    assert sent.json["systemInstruction"] == {"parts": [{"text": "be brief"}]}
    assert sent.json["generationConfig"] == {"temperature": 0.3, "maxOutputTokens": 50}


def test_chat_streaming_with_usage(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="gemini-flash",
        messages=[{"role": "user", "content": "stream these four words"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo: stream these four words"
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == [
        "stop"
    ]
    assert chunks[-1].choices == [] and chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0


def test_reasoning_comes_back_with_its_token_count(
    client: openai.OpenAI, gemini: GeminiGatewayHarness
) -> None:
    completion = client.chat.completions.create(
        model="gemini-3-pro", messages=[{"role": "user", "content": "think first"}], reasoning_effort="high"
    )
    message = completion.choices[0].message
    assert message.content == "echo: think first"
    assert (message.model_extra or {}).get("reasoning") == "Thinking about: think first"
    assert completion.usage is not None and completion.usage.completion_tokens_details is not None
    assert completion.usage.completion_tokens_details.reasoning_tokens == 4
    sent = gemini.upstream.requests_to("gemini-3-pro-preview:generateContent")[-1].json
    assert sent["generationConfig"]["thinkingConfig"] == {"thinkingLevel": "high", "includeThoughts": True}


def test_tool_call_round_trip(client: openai.OpenAI, gemini: GeminiGatewayHarness) -> None:
    gemini.upstream.script(
        GeminiReply(calls=[ScriptedCall("get_weather", {"city": "Paris"}, thought_signature="c2lnLXBhcmlz")])
    )
    messages: list[Any] = [{"role": "user", "content": "What is the weather in Paris?"}]
    first = client.chat.completions.create(model="gemini-flash", messages=messages, tools=[WEATHER_TOOL])
    assert first.choices[0].finish_reason == "tool_calls"
    tool_calls = first.choices[0].message.tool_calls or []
    call = tool_calls[0]
    assert call.type == "function" and call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"} and call.id.startswith("call_")
    messages.append(first.choices[0].message.model_dump(exclude_none=True))
    messages.append(
        {"role": "tool", "tool_call_id": call.id, "content": '{"temperature": 21, "sky": "clear"}'}
    )
    answer = client.chat.completions.create(model="gemini-flash", messages=messages, tools=[WEATHER_TOOL])
    assert answer.choices[0].message.content == 'result: [{"temperature":21,"sky":"clear"}]'
    contents = gemini.upstream.requests_to("gemini-2.5-flash:generateContent")[-1].json["contents"]
    assert [c["role"] for c in contents] == ["user", "model", "user"]
    assert contents[1]["parts"][0]["thoughtSignature"] == "c2lnLXBhcmlz"
    assert contents[2]["parts"][0]["functionResponse"]["name"] == "get_weather"


def test_streamed_tool_call(client: openai.OpenAI, gemini: GeminiGatewayHarness) -> None:
    gemini.upstream.script(
        GeminiReply(text="Let me check.", calls=[ScriptedCall("get_weather", {"city": "Oslo"})])
    )
    stream = client.chat.completions.create(
        model="gemini-flash",
        messages=[{"role": "user", "content": "Oslo?"}],
        tools=[WEATHER_TOOL],
        stream=True,
    )
    chunks = list(stream)
    deltas: list[Any] = [d for c in chunks if c.choices for d in c.choices[0].delta.tool_calls or []]
    assert [(d.index, d.function.name, d.function.arguments) for d in deltas] == [
        (0, "get_weather", '{"city":"Oslo"}')
    ]
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_image_input(client: openai.OpenAI, gemini: GeminiGatewayHarness) -> None:
    url = "data:image/png;base64," + base64.b64encode(TINY_PNG).decode()
    client.chat.completions.create(
        model="gemini-flash",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what is this?"},
                    {"type": "image_url", "image_url": {"url": url}},
                ],
            }
        ],
    )
    parts = gemini.upstream.requests_to("gemini-2.5-flash:generateContent")[-1].json["contents"][0]["parts"]
    assert parts[1] == {"inlineData": {"mimeType": "image/png", "data": base64.b64encode(TINY_PNG).decode()}}


def image_message(url: str) -> list[Any]:
    return [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "what is this?"},
                {"type": "image_url", "image_url": {"url": url}},
            ],
        }
    ]


@pytest.mark.parametrize(
    "url",
    [
        "loopback-http",
        "https://127.0.0.1/cat.png",
        "https://localhost/cat.png",
        "https://10.1.2.3/cat.png",
        "https://192.168.0.10/cat.png",
        "https://169.254.169.254/latest/meta-data/",
        "https://[::1]/cat.png",
        "ftp://example.com/cat.png",
    ],
)
def test_an_image_url_on_a_private_address_is_a_400_naming_the_part(
    client: openai.OpenAI, gemini: GeminiGatewayHarness, url: str
) -> None:
    if url == "loopback-http":
        url = gemini.media_url("cat.png")  # a real image, served on 127.0.0.1 over plain http
    calls = len(gemini.upstream.requests)
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="gemini-flash", messages=image_message(url))
    body: Any = caught.value.body
    assert body["param"] == "messages[0].content[1].image_url" and body["code"] == "invalid_image_url"
    assert "messages[0].content[1].image_url" in body["message"]
    # Refused before any connection: neither the image host nor Gemini saw a request.
    assert len(gemini.upstream.requests) == calls


@pytest.mark.parametrize("stream", [False, True])
def test_a_private_image_url_in_a_responses_request_names_the_input_part(
    client: openai.OpenAI, gemini: GeminiGatewayHarness, stream: bool
) -> None:
    content: Any = [
        {"type": "input_text", "text": "what is this?"},
        {"type": "input_image", "image_url": gemini.media_url("cat.png"), "detail": "auto"},
    ]
    with pytest.raises(openai.BadRequestError) as caught:
        reply = client.responses.create(
            model="gemini-flash",
            instructions="Be brief.",
            input=[{"role": "user", "content": content}],
            stream=stream,
        )
        if stream:
            list(reply)  # type: ignore[arg-type]
    body: Any = caught.value.body
    assert body["param"] == "input[0].content[1].image_url" and body["code"] == "invalid_image_url"
    assert "input[0].content[1].image_url" in body["message"] and "messages[" not in body["message"]


def test_config_can_allow_private_image_hosts(client: openai.OpenAI, gemini: GeminiGatewayHarness) -> None:
    completion = client.chat.completions.create(
        model="gemini-flash-internal", messages=image_message(gemini.media_url("dog.png"))
    )
    assert completion.choices[0].finish_reason == "stop"
    fetch = gemini.upstream.requests_to("/media/dog.png")[-1]
    assert "x-goog-api-key" not in fetch.headers and "authorization" not in fetch.headers
    parts = gemini.upstream.requests_to("gemini-2.5-flash:generateContent")[-1].json["contents"][0]["parts"]
    assert parts[1] == {"inlineData": {"mimeType": "image/png", "data": base64.b64encode(TINY_PNG).decode()}}


def test_structured_output(client: openai.OpenAI, gemini: GeminiGatewayHarness) -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
        "required": ["city", "population"],
        "additionalProperties": False,
    }
    completion = client.chat.completions.create(
        model="gemini-flash",
        messages=[{"role": "user", "content": "largest city in Norway"}],
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "city", "schema": schema, "strict": True},
        },
    )
    assert json.loads(completion.choices[0].message.content or "") == {"city": "text", "population": 1}
    config = gemini.upstream.requests_to("gemini-2.5-flash:generateContent")[-1].json["generationConfig"]
    assert config == {"responseMimeType": "application/json", "responseJsonSchema": schema}


def test_unsupported_parameter_is_a_400_naming_it(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="gemini-flash", messages=[{"role": "user", "content": "x"}], logit_bias={"1": 10}
        )
    body: Any = caught.value.body
    assert body["param"] == "logit_bias" and body["code"] == "unsupported_parameter"


def test_upstream_rate_limit_is_a_429(client: openai.OpenAI, gemini: GeminiGatewayHarness) -> None:
    gemini.upstream.inject(
        GeminiFault(
            path="*:generateContent", status=429, grpc_status="RESOURCE_EXHAUSTED", retry_delay="3s", times=5
        )
    )
    try:
        with pytest.raises(openai.RateLimitError) as caught:
            client.chat.completions.create(model="gemini-flash", messages=[{"role": "user", "content": "x"}])
    finally:
        gemini.upstream.clear_faults()
    assert GEMINI_KEY not in json.dumps(caught.value.body)


def test_responses(client: openai.OpenAI, gemini: GeminiGatewayHarness) -> None:
    response = client.responses.create(model="gemini-flash", input="hello responses", instructions="be nice")
    assert response.status == "completed" and response.output_text == "echo: hello responses"
    assert response.model == "gemini-flash" and response.usage is not None and response.usage.total_tokens > 0
    sent = gemini.upstream.requests_to("gemini-2.5-flash:generateContent")[-1].json
    assert sent["systemInstruction"] == {"parts": [{"text": "be nice"}]}


def test_responses_streaming(client: openai.OpenAI) -> None:
    events = list(client.responses.create(model="gemini-flash", input="stream a response", stream=True))
    types = [event.type for event in events]
    assert types[:2] == ["response.created", "response.in_progress"] and types[-1] == "response.completed"
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == "echo: stream a response"
    final: Any = events[-1]
    assert final.response.output_text == text and final.response.model == "gemini-flash"


@pytest.mark.parametrize(
    ("finish", "reason"), [("MAX_TOKENS", "max_output_tokens"), ("SAFETY", "content_filter")]
)
def test_responses_stream_ends_incomplete_with_the_reason(
    client: openai.OpenAI, gemini: GeminiGatewayHarness, finish: str, reason: str
) -> None:
    gemini.upstream.script(GeminiReply(text="A partial answer", finish_reason=finish))
    events = list(client.responses.create(model="gemini-flash", input="go on", stream=True))
    final: Any = events[-1]
    assert final.type == "response.incomplete"
    assert final.response.status == "incomplete" and final.response.incomplete_details.reason == reason
    gemini.upstream.script(GeminiReply(text="A partial answer", finish_reason=finish))
    unary = client.responses.create(model="gemini-flash", input="go on")
    assert unary.status == "incomplete" and unary.incomplete_details is not None
    assert unary.incomplete_details.reason == reason


def test_responses_stream_cut_mid_way_ends_with_response_failed(
    client: openai.OpenAI, gemini: GeminiGatewayHarness
) -> None:
    gemini.upstream.inject(
        GeminiFault(
            path="*:streamGenerateContent",
            error_after_events=1,
            grpc_status="UNAVAILABLE",
            message=f"overloaded {GEMINI_KEY}",
        )
    )
    events = list(client.responses.create(model="gemini-flash", input="a longer answer please", stream=True))
    assert events[0].type == "response.created"
    assert [event.type for event in events[-2:]] == ["response.failed", "error"]
    failed: Any = events[-2]
    assert failed.response.status == "failed" and failed.response.error is not None
    assert all(GEMINI_KEY not in event.model_dump_json() for event in events)


def test_embeddings(client: openai.OpenAI, gemini: GeminiGatewayHarness) -> None:
    floats = client.embeddings.create(
        model="gemini-embed", input=["one", "two"], dimensions=6, encoding_format="float"
    )
    assert [len(item.embedding) for item in floats.data] == [6, 6] and floats.model == "gemini-embed"
    packed = client.embeddings.create(model="gemini-embed", input="one", dimensions=6)
    assert [round(v, 5) for v in packed.data[0].embedding] == [round(v, 5) for v in floats.data[0].embedding]
    sent = gemini.upstream.requests_to("gemini-embedding-001:batchEmbedContents")[-1].json
    assert sent["requests"][0]["model"] == "models/gemini-embedding-001"
    assert sent["requests"][0]["outputDimensionality"] == 6
    assert sent["requests"][0]["content"] == {"parts": [{"text": "one"}]}


@pytest.mark.parametrize("model", ["imagen", "gemini-image"])
def test_image_generation(client: openai.OpenAI, model: str) -> None:
    result = client.images.generate(
        model=model, prompt="a red square", n=2, size="1024x1024", response_format="b64_json"
    )
    images = result.data or []
    assert len(images) == 2 and base64.b64decode(images[0].b64_json or "") == TINY_PNG


def test_video_job_create_poll_download(client: openai.OpenAI, gemini: GeminiGatewayHarness) -> None:
    video = client.videos.create(model="veo", prompt="a cat surfing", seconds="4", size="720x1280")
    assert video.status == "queued" and video.id.startswith("video_") and video.model == "veo"
    for _ in range(10):
        video = client.videos.retrieve(video.id)
        if video.status == "completed":
            break
        time.sleep(0.05)
    assert video.status == "completed" and video.progress == 100 and video.size == "720x1280"
    content = client.videos.download_content(video.id)
    data = content.read()
    assert content.response.headers["content-type"] == "video/mp4"
    assert data.startswith(b"\x00\x00\x00\x18ftypmp42") and len(data) > 64 * 1024
    create = gemini.upstream.requests_to("veo-3.0-generate-001:predictLongRunning")[-1].json
    assert create["parameters"] == {"durationSeconds": 4, "aspectRatio": "9:16"}


def test_video_job_create_get_watch_content(client: openai.OpenAI, gemini: GeminiGatewayHarness) -> None:
    """A Veo job through the SDK (create, get, download) and the gRPC progress watch in between."""
    video = client.videos.create(model="veo", prompt="a dog skiing", seconds="8", size="1920x1080")
    assert video.status == "queued"
    assert client.videos.retrieve(video.id).status in ("queued", "in_progress")
    assert gemini.running is not None
    target = f"127.0.0.1:{gemini.running.grpc_port}"

    async def watch() -> list[videos_pb2.WatchVideoResponse]:
        async with grpc.aio.insecure_channel(target) as channel:
            stub = videos_pb2_grpc.VideosServiceStub(channel)
            request = videos_pb2.WatchVideoRequest(id=video.id, poll_interval=0.01)
            metadata = (("authorization", f"Bearer {gemini.api_key}"),)
            return [update async for update in stub.WatchVideo(request, metadata=metadata)]

    updates = asyncio.run(watch())
    assert updates[-1].video.status == "completed" and updates[-1].video.progress == 100
    assert updates[-1].video.id == video.id and updates[-1].video.size == "1920x1080"
    polls = [r for r in gemini.upstream.requests if "/operations/" in r.path and r.method == "GET"]
    assert polls and all(r.headers["x-goog-api-key"] == GEMINI_KEY for r in polls)
    data = client.videos.download_content(video.id).read()
    assert data[4:12] == b"ftypmp42"
    create = gemini.upstream.requests_to("veo-3.0-generate-001:predictLongRunning")[-1].json
    assert create == {
        "instances": [{"prompt": "a dog skiing"}],
        "parameters": {"durationSeconds": 8, "aspectRatio": "16:9", "resolution": "1080p"},
    }


_ERRORS = [
    ("INVALID_ARGUMENT", 400, (), 400, "invalid_request_error", "invalid_request"),
    ("FAILED_PRECONDITION", 400, (), 400, "invalid_request_error", "invalid_request"),
    ("INVALID_ARGUMENT", 400, ("API_KEY_INVALID",), 502, "upstream_error", "provider_error"),
    ("UNAUTHENTICATED", 401, (), 502, "upstream_error", "provider_error"),
    ("PERMISSION_DENIED", 403, (), 502, "upstream_error", "provider_error"),
    ("NOT_FOUND", 404, (), 502, "upstream_error", "provider_error"),
    ("RESOURCE_EXHAUSTED", 429, (), 429, "rate_limit_error", "rate_limit_exceeded"),
    ("INTERNAL", 500, (), 502, "upstream_error", "provider_error"),
    ("UNAVAILABLE", 503, (), 502, "upstream_error", "provider_error"),
    ("DEADLINE_EXCEEDED", 504, (), 408, "timeout_error", "request_timeout"),
]


@pytest.mark.parametrize(("grpc_status", "status", "reasons", "http_status", "kind", "code"), _ERRORS)
@pytest.mark.parametrize("stream", [False, True])
def test_every_google_error_status_maps_to_the_table(
    client: openai.OpenAI,
    gemini: GeminiGatewayHarness,
    grpc_status: str,
    status: int,
    reasons: tuple[str, ...],
    http_status: int,
    kind: str,
    code: str,
    stream: bool,
) -> None:
    gemini.upstream.inject(
        GeminiFault(
            path="*GenerateContent" if stream else "*:generateContent",
            status=status,
            grpc_status=grpc_status,
            message=f"Failed for key {GEMINI_KEY}.",
            reasons=reasons,
        )
    )
    try:
        with pytest.raises(openai.APIStatusError) as caught:
            reply = client.chat.completions.create(
                model="gemini-flash", messages=[{"role": "user", "content": "x"}], stream=stream
            )
            if stream:
                list(reply)  # type: ignore[arg-type]
    finally:
        gemini.upstream.clear_faults()
    assert caught.value.status_code == http_status
    body: Any = caught.value.body
    assert (body["type"], body["code"]) == (kind, code)
    assert GEMINI_KEY not in caught.value.response.text


def test_embedding_and_video_errors_are_mapped_without_the_key(
    client: openai.OpenAI, gemini: GeminiGatewayHarness
) -> None:
    gemini.upstream.inject(
        GeminiFault(path="*:batchEmbedContents", status=503, grpc_status="UNAVAILABLE", message=GEMINI_KEY)
    )
    with pytest.raises(openai.APIStatusError) as embed:
        client.embeddings.create(model="gemini-embed", input="one")
    gemini.upstream.inject(
        GeminiFault(
            path="*:predictLongRunning", status=400, grpc_status="INVALID_ARGUMENT", message="Bad prompt."
        )
    )
    with pytest.raises(openai.BadRequestError) as video:
        client.videos.create(model="veo", prompt="x")
    assert embed.value.status_code == 502 and GEMINI_KEY not in embed.value.response.text
    assert "Bad prompt." in video.value.message


def test_schemas_reach_gemini_in_the_client_order(
    client: openai.OpenAI, gemini: GeminiGatewayHarness
) -> None:
    client.chat.completions.create(
        model="gemini-flash",
        messages=[{"role": "user", "content": "order please"}],
        tools=[{"type": "function", "function": {"name": "pick", "parameters": ORDERED_SCHEMA}}],
        response_format={"type": "json_schema", "json_schema": {"name": "out", "schema": ORDERED_SCHEMA}},
    )
    sent = gemini.upstream.requests_to("gemini-2.5-flash:generateContent")[-1].body
    assert sent.count(ORDERED_SCHEMA_BYTES) == 2, sent


def test_every_surface_matches_openai_schemas(gemini: GeminiGatewayHarness) -> None:
    flash = Surfaces(gemini.base_url, gemini.api_key, "gemini-flash")
    ask = [{"role": "user", "content": "What is the weather in Paris?"}]
    flash.chat(messages=ask)
    gemini.upstream.script(GeminiReply(calls=[ScriptedCall("get_weather", {"city": "Paris"})]))
    called = flash.chat(messages=ask, tools=[WEATHER_TOOL])
    assert called["choices"][0]["finish_reason"] == "tool_calls"
    Surfaces(gemini.base_url, gemini.api_key, "gemini-3-pro").chat(messages=ask, reasoning_effort="high")
    flash.chat_stream(messages=ask, stream_options={"include_usage": True})
    gemini.upstream.script(
        GeminiReply(text="Let me check.", calls=[ScriptedCall("get_weather", {"city": "Oslo"})])
    )
    flash.chat_stream(messages=ask, tools=[WEATHER_TOOL])
    tool = {"type": "function", "name": "get_weather", "parameters": WEATHER_TOOL["function"]["parameters"]}
    flash.response(input="hi", instructions="Be brief.")
    gemini.upstream.script(GeminiReply(calls=[ScriptedCall("get_weather", {"city": "Paris"})]))
    function_call = flash.response(input="Paris?", tools=[tool])
    assert [item["type"] for item in function_call["output"]] == ["function_call"]
    Surfaces(gemini.base_url, gemini.api_key, "gemini-3-pro").response_stream(
        input="think", reasoning={"effort": "high"}
    )
    gemini.upstream.script(
        GeminiReply(text="Let me check.", calls=[ScriptedCall("get_weather", {"city": "Oslo"})])
    )
    flash.response_stream(input="Oslo?", tools=[tool])


def test_embeddings_and_images_match_openai_schemas(gemini: GeminiGatewayHarness) -> None:
    embed = Surfaces(gemini.base_url, gemini.api_key, "gemini-embed")
    embed.embeddings(input=["one", "two"], dimensions=6, encoding_format="float")
    embed.embeddings(input="one", dimensions=6, encoding_format="base64")
    for model in ("imagen", "gemini-image"):
        Surfaces(gemini.base_url, gemini.api_key, model).images(
            prompt="a red square", response_format="b64_json"
        )
