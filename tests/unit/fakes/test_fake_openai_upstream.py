"""The fake OpenAI upstream, driven by the official `openai` SDK to prove it speaks OpenAI's wire format."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator
from enum import StrEnum
from typing import Any

import httpx
import openai
import pytest
from openai import AsyncOpenAI
from pydantic import BaseModel

from tests.fakes.openai_upstream import FakeOpenAIUpstream, Fault, ScriptedReply, ScriptedToolCall
from tests.openapi_schema import assert_matches_schema

KEY = "sk-upstream-secret"
USER_HELLO: Any = [{"role": "user", "content": "hello big world"}]
WEATHER_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "days": {"type": "integer"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city", "days", "unit"],
        },
    },
}


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAIUpstream]:
    upstream = FakeOpenAIUpstream(KEY)
    await upstream.start()
    yield upstream
    await upstream.stop()


@pytest.fixture
async def client(fake: FakeOpenAIUpstream) -> AsyncIterator[AsyncOpenAI]:
    # Strict validation makes the SDK check every body against its own typed models.
    async with AsyncOpenAI(
        base_url=fake.base_url, api_key=KEY, max_retries=0, _strict_response_validation=True
    ) as sdk:
        yield sdk


@pytest.fixture
async def raw(fake: FakeOpenAIUpstream) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {KEY}"}
    async with httpx.AsyncClient(base_url=fake.base_url, headers=headers) as http:
        yield http


# -- chat completions ----------------------------------------------------------------------------


async def test_chat_echoes_last_user_message(client: AsyncOpenAI, fake: FakeOpenAIUpstream) -> None:
    messages: Any = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": [{"type": "text", "text": "hello"}, {"type": "text", "text": "there"}]},
    ]
    completion = await client.chat.completions.create(model="gpt-4o-mini", messages=messages)

    assert completion.object == "chat.completion"
    assert completion.model == "gpt-4o-mini"
    choice = completion.choices[0]
    assert (choice.message.role, choice.message.content, choice.finish_reason) == (
        "assistant",
        "echo: hello there",
        "stop",
    )
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (4, 3)
    assert completion.usage.completion_tokens_details is not None
    recorded = fake.requests_to("/v1/chat/completions")[0]
    assert recorded.method == "POST"
    assert recorded.headers["authorization"] == f"Bearer {KEY}"
    assert recorded.json["messages"] == messages


async def test_chat_stream_with_usage(client: AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model="gpt-4o-mini", messages=USER_HELLO, stream=True, stream_options={"include_usage": True}
    )
    chunks = [chunk async for chunk in stream]

    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[0].choices[0].delta.content == ""
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo: hello big world"
    assert len(chunks) > 4  # content really arrives in several chunks
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert all(c.usage is None for c in chunks[:-1])
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (3, 4)


async def test_chat_stream_wire_framing(raw: httpx.AsyncClient) -> None:
    body = {"model": "m", "messages": USER_HELLO, "stream": True}
    response = await raw.post("/chat/completions", json=body)

    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    frames = response.content.split(b"\n\n")
    assert frames[-2:] == [b"data: [DONE]", b""]
    first = json.loads(frames[0].removeprefix(b"data: "))
    assert list(first) == [
        "id",
        "object",
        "created",
        "model",
        "service_tier",
        "system_fingerprint",
        "choices",
    ]
    # Chunks are not checked against the spec: it marks their null finish_reason/logprobs with the
    # OpenAPI 3.0 `nullable` keyword, which a JSON Schema validator ignores. Strict SDK parsing covers them.
    assert all(frame.startswith(b"data: {") for frame in frames[:-2])


async def test_chat_tool_call_stream_arguments_join_to_json(client: AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model="gpt-4o-mini", messages=USER_HELLO, tools=[WEATHER_TOOL], stream=True
    )
    chunks = [chunk async for chunk in stream]

    deltas = [call for c in chunks for call in c.choices[0].delta.tool_calls or []]
    first = deltas[0]
    assert (first.index, first.id, first.type) == (0, "call_1", "function")
    assert first.function is not None
    assert (first.function.name, first.function.arguments) == ("get_weather", "")
    assert len(deltas) > 2
    arguments = "".join(d.function.arguments or "" for d in deltas if d.function)
    assert json.loads(arguments) == {"city": "text", "days": 1, "unit": "celsius"}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


async def test_chat_named_tool_choice_and_tool_result(client: AsyncOpenAI) -> None:
    other: Any = {"type": "function", "function": {"name": "noop", "parameters": {"type": "object"}}}
    completion = await client.chat.completions.create(
        model="m",
        messages=USER_HELLO,
        tools=[other, WEATHER_TOOL],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    )
    call = completion.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert call.function.name == "get_weather"  # type: ignore[union-attr]

    follow_up: Any = [
        *USER_HELLO,
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": "sunny, 21C"},
    ]
    answer = await client.chat.completions.create(model="m", messages=follow_up, tools=[WEATHER_TOOL])
    assert answer.choices[0].message.content == "tool said: sunny, 21C"
    assert answer.choices[0].finish_reason == "stop"


class Colour(StrEnum):
    RED = "red"
    BLUE = "blue"


class Part(BaseModel):
    label: str
    weight: float


class Report(BaseModel):
    title: str
    count: int
    ok: bool
    colour: Colour
    parts: list[Part]


async def test_chat_json_schema_reply_parses(client: AsyncOpenAI) -> None:
    completion = await client.chat.completions.parse(model="m", messages=USER_HELLO, response_format=Report)

    report = completion.choices[0].message.parsed
    assert report == Report(
        title="text", count=1, ok=True, colour=Colour.RED, parts=[Part(label="text", weight=1.5)]
    )


async def test_chat_describes_images(client: AsyncOpenAI) -> None:
    png = "data:image/png;base64," + base64.b64encode(b"\x89PNG").decode()
    content: Any = [
        {"type": "text", "text": "what is this"},
        {"type": "image_url", "image_url": {"url": png}},
        {"type": "image_url", "image_url": {"url": "https://images.example.com/cat.jpg"}},
    ]
    completion = await client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": content}]
    )
    assert completion.choices[0].message.content == "I see 2 image(s): image/png, images.example.com"


async def test_chat_n_max_tokens_and_stop(client: AsyncOpenAI) -> None:
    many = await client.chat.completions.create(model="m", messages=USER_HELLO, n=2, max_tokens=2)
    assert [c.index for c in many.choices] == [0, 1]
    assert {(c.message.content, c.finish_reason) for c in many.choices} == {("echo: hello", "length")}
    assert many.usage is not None and many.usage.completion_tokens == 4

    stopped = await client.chat.completions.create(model="m", messages=USER_HELLO, stop=[" big"])
    assert (stopped.choices[0].message.content, stopped.choices[0].finish_reason) == ("echo: hello", "stop")


async def test_scripted_reply_overrides_next_request(client: AsyncOpenAI, fake: FakeOpenAIUpstream) -> None:
    fake.script_chat(
        ScriptedReply(
            content="let me check",
            tool_calls=[ScriptedToolCall("lookup", {"q": "x"}, id="call_custom")],
            usage={"prompt_tokens": 11, "completion_tokens": 7},
        )
    )
    scripted = await client.chat.completions.create(model="m", messages=USER_HELLO)
    message = scripted.choices[0].message
    assert message.content == "let me check"
    assert [(c.id, c.function.name, c.function.arguments) for c in message.tool_calls or []] == [  # type: ignore[union-attr]
        ("call_custom", "lookup", '{"q":"x"}')
    ]
    assert scripted.choices[0].finish_reason == "tool_calls"
    assert scripted.usage is not None and (scripted.usage.prompt_tokens, scripted.usage.total_tokens) == (
        11,
        18,
    )

    default = await client.chat.completions.create(model="m", messages=USER_HELLO)
    assert default.choices[0].message.content == "echo: hello big world"


async def test_missing_messages_is_an_openai_400(raw: httpx.AsyncClient) -> None:
    response = await raw.post("/chat/completions", json={"model": "m"})
    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "message": "Missing required parameter: 'messages'.",
            "type": "invalid_request_error",
            "param": "messages",
            "code": "missing_required_parameter",
        }
    }


# -- responses -----------------------------------------------------------------------------------


async def test_responses_non_stream_and_function_call(client: AsyncOpenAI) -> None:
    response = await client.responses.create(model="gpt-4o-mini", input="hi there", instructions="be nice")
    assert response.status == "completed"
    assert response.output_text == "echo: hi there"
    assert response.instructions == "be nice"
    assert response.usage is not None and response.usage.input_tokens == 4

    tool: Any = {
        "type": "function",
        "name": "get_weather",
        "parameters": WEATHER_TOOL["function"]["parameters"],
    }
    called = await client.responses.create(model="m", input="weather?", tools=[tool])
    item = called.output[0]
    assert item.type == "function_call"
    assert (item.name, json.loads(item.arguments)["unit"]) == ("get_weather", "celsius")

    result = await client.responses.create(
        model="m",
        input=[
            {"role": "user", "content": "weather?"},
            {
                "type": "function_call",
                "call_id": item.call_id,
                "name": item.name,
                "arguments": item.arguments,
            },
            {"type": "function_call_output", "call_id": item.call_id, "output": "rain"},
        ],
        tools=[tool],
    )
    assert result.output_text == "tool said: rain"


async def test_responses_stream_event_order(client: AsyncOpenAI) -> None:
    stream = await client.responses.create(model="m", input="hi there", stream=True)
    events = [event async for event in stream]

    kinds = [event.type for event in events]
    assert kinds == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [event.sequence_number for event in events] == list(range(len(events)))
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas == "echo: hi there"
    assert events[-1].response.output_text == "echo: hi there"  # type: ignore[union-attr]


async def test_responses_stream_helper_with_function_call(client: AsyncOpenAI) -> None:
    tool: Any = {
        "type": "function",
        "name": "get_weather",
        "parameters": WEATHER_TOOL["function"]["parameters"],
    }
    async with client.responses.stream(model="m", input="weather?", tools=[tool]) as stream:
        kinds = [event.type async for event in stream]
        final = await stream.get_final_response()
    assert "response.function_call_arguments.delta" in kinds
    assert final.output[0].type == "function_call"
    assert json.loads(final.output[0].arguments)["city"] == "text"


async def test_responses_route_absent_without_native_support() -> None:
    async with FakeOpenAIUpstream(KEY, native_responses=False) as fake:
        async with AsyncOpenAI(base_url=fake.base_url, api_key=KEY, max_retries=0) as sdk:
            with pytest.raises(openai.NotFoundError) as caught:
                await sdk.responses.create(model="m", input="hi")
    assert caught.value.body == {
        "message": "Invalid URL (POST /v1/responses)",
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }


# -- embeddings and images -----------------------------------------------------------------------


async def test_embeddings_float_and_base64_agree(client: AsyncOpenAI, fake: FakeOpenAIUpstream) -> None:
    floats = await client.embeddings.create(
        model="text-embedding-3-small", input=["a b", "c"], encoding_format="float"
    )
    # Strict validation would check the base64 string before the SDK decodes it, so use a lax client.
    async with AsyncOpenAI(base_url=fake.base_url, api_key=KEY, max_retries=0) as lax:
        decoded = await lax.embeddings.create(model="text-embedding-3-small", input=["a b", "c"])
    assert fake.requests_to("/v1/embeddings")[1].json["encoding_format"] == "base64"

    assert [d.embedding for d in floats.data] == [d.embedding for d in decoded.data]
    assert [len(d.embedding) for d in floats.data] == [8, 8]
    assert floats.data[0].embedding != floats.data[1].embedding
    assert all(-1 <= value < 1 for value in floats.data[0].embedding)
    assert (floats.usage.prompt_tokens, floats.usage.total_tokens) == (3, 3)


async def test_embeddings_token_inputs_and_dimensions(client: AsyncOpenAI) -> None:
    one = await client.embeddings.create(model="e", input=[1, 2, 3], dimensions=4, encoding_format="float")
    many = await client.embeddings.create(
        model="e", input=[[1, 2, 3], [4]], dimensions=4, encoding_format="float"
    )
    assert len(one.data) == 1 and len(one.data[0].embedding) == 4
    assert many.data[0].embedding == one.data[0].embedding
    assert many.usage.prompt_tokens == 4


async def test_images_b64_and_url(client: AsyncOpenAI) -> None:
    b64 = await client.images.generate(model="gpt-image-1", prompt="a cat", n=2, response_format="b64_json")
    assert b64.data is not None and len(b64.data) == 2
    png = base64.b64decode(b64.data[0].b64_json or "")
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert b64.usage is not None and b64.usage.input_tokens == 2

    hosted = await client.images.generate(model="dall-e-3", prompt="a dog")
    assert hosted.data is not None and hosted.data[0].url is not None
    async with httpx.AsyncClient() as http:
        fetched = await http.get(hosted.data[0].url)
    assert fetched.headers["content-type"] == "image/png"
    assert fetched.content == png


# -- videos --------------------------------------------------------------------------------------


async def test_video_create_poll_download(client: AsyncOpenAI, fake: FakeOpenAIUpstream) -> None:
    video = await client.videos.create(
        model="sora-2",
        prompt="a sunrise",
        seconds="4",
        input_reference=("ref.png", b"\x89PNGdata", "image/png"),
    )
    assert (video.id, video.status, video.progress, video.completed_at) == ("video_1", "queued", 0, None)
    recorded = fake.requests_to("/v1/videos")[0]
    assert recorded.form == {"prompt": "a sunrise", "model": "sora-2", "seconds": "4"}
    assert recorded.files["input_reference"].data == b"\x89PNGdata"

    with pytest.raises(openai.NotFoundError):
        await client.videos.download_content(video.id)

    done = await client.videos.poll(video.id, poll_interval_ms=1)
    assert (done.status, done.progress) == ("completed", 100)
    assert done.completed_at is not None
    content = await client.videos.download_content(video.id, variant="video")
    assert content.response.headers["content-type"] == "video/mp4"
    assert content.content[4:12] == b"ftypmp42"
    assert len(content.content) > 256 * 1024


async def test_video_unknown_id_is_404(client: AsyncOpenAI) -> None:
    with pytest.raises(openai.NotFoundError):
        await client.videos.retrieve("video_999")
    with pytest.raises(openai.NotFoundError):
        await client.videos.download_content("video_999")


async def test_video_json_create(raw: httpx.AsyncClient) -> None:
    created = await raw.post("/videos", json={"prompt": "waves", "size": "1280x720"})
    assert list(created.json()) == [
        "id",
        "object",
        "created_at",
        "status",
        "completed_at",
        "error",
        "expires_at",
        "model",
        "progress",
        "prompt",
        "remixed_from_video_id",
        "seconds",
        "size",
    ]
    polled = await raw.get(f"/videos/{created.json()['id']}")
    assert (polled.json()["status"], polled.json()["progress"], polled.json()["size"]) == (
        "in_progress",
        50,
        "1280x720",
    )


# -- models and auth -----------------------------------------------------------------------------


async def test_models(client: AsyncOpenAI) -> None:
    models = [model.id async for model in client.models.list()]
    assert "gpt-4o-mini" in models
    assert (await client.models.retrieve("gpt-4o")).id == "gpt-4o"
    with pytest.raises(openai.NotFoundError) as caught:
        await client.models.retrieve("no-such-model")
    assert caught.value.code == "model_not_found"


async def test_wrong_key_is_rejected_with_masked_echo(fake: FakeOpenAIUpstream) -> None:
    async with AsyncOpenAI(base_url=fake.base_url, api_key="sk-wrong-key-0123456789", max_retries=0) as sdk:
        with pytest.raises(openai.AuthenticationError) as caught:
            await sdk.chat.completions.create(model="m", messages=USER_HELLO)
    assert caught.value.code == "invalid_api_key"
    assert caught.value.type == "invalid_request_error"
    assert "sk-wr" in caught.value.message and "6789" in caught.value.message
    assert "sk-wrong-key-0123456789" not in caught.value.message


# -- faults --------------------------------------------------------------------------------------


async def test_fault_status_with_retry_after(client: AsyncOpenAI, fake: FakeOpenAIUpstream) -> None:
    fake.inject(
        Fault(
            path="/v1/chat/completions",
            status=429,
            error_type="rate_limit_exceeded",
            error_code="rate_limit_exceeded",
            message="slow down",
            headers={"Retry-After": "1"},
        )
    )
    with pytest.raises(openai.RateLimitError) as caught:
        await client.chat.completions.create(model="m", messages=USER_HELLO)
    assert caught.value.response.headers["retry-after"] == "1"
    assert caught.value.body == {
        "message": "slow down",
        "type": "rate_limit_exceeded",
        "param": None,
        "code": "rate_limit_exceeded",
    }
    # Consumed after one use: the next request is served normally.
    assert (await client.chat.completions.create(model="m", messages=USER_HELLO)).choices


async def test_fault_matches_path_and_counts_times(fake: FakeOpenAIUpstream) -> None:
    fake.inject(Fault(path="/v1/embeddings", status=500))
    fake.inject(Fault(path="/v1/chat/completions", status=503, headers={"Retry-After": "0.01"}, times=2))
    async with AsyncOpenAI(base_url=fake.base_url, api_key=KEY, max_retries=2) as sdk:
        completion = await sdk.chat.completions.create(model="m", messages=USER_HELLO)
    assert completion.choices[0].message.content == "echo: hello big world"
    assert len(fake.requests_to("/v1/chat/completions")) == 3
    assert len(fake.requests_to("/v1/embeddings")) == 0


async def test_fault_garbage(client: AsyncOpenAI, fake: FakeOpenAIUpstream) -> None:
    fake.inject(Fault(garbage=True))
    with pytest.raises(ValueError):  # json.JSONDecodeError from a 200 that claims JSON
        await client.chat.completions.create(model="m", messages=USER_HELLO)

    fake.inject(Fault(status=502, garbage=True))
    with pytest.raises(openai.InternalServerError) as caught:
        await client.chat.completions.create(model="m", messages=USER_HELLO)
    assert caught.value.status_code == 502

    fake.inject(Fault(garbage=True))
    stream = await client.chat.completions.create(model="m", messages=USER_HELLO, stream=True)
    with pytest.raises(ValueError):
        async for _ in stream:
            pass


async def test_fault_hang_trips_client_timeout(fake: FakeOpenAIUpstream) -> None:
    fake.inject(Fault(hang=5))
    async with AsyncOpenAI(base_url=fake.base_url, api_key=KEY, max_retries=0, timeout=0.2) as sdk:
        started = time.monotonic()
        with pytest.raises(openai.APITimeoutError):
            await sdk.chat.completions.create(model="m", messages=USER_HELLO)
    assert time.monotonic() - started < 2


async def test_fault_reset_mid_stream(client: AsyncOpenAI, fake: FakeOpenAIUpstream) -> None:
    fake.inject(Fault(reset_after_chunks=2))
    stream = await client.chat.completions.create(model="m", messages=USER_HELLO, stream=True)
    received = []
    with pytest.raises((httpx.TransportError, openai.APIConnectionError)):
        async for chunk in stream:
            received.append(chunk)
    assert len(received) == 2
    assert fake.closed_early == 0  # the server cut it; no client went away


async def test_fault_reset_on_plain_request(client: AsyncOpenAI, fake: FakeOpenAIUpstream) -> None:
    fake.inject(Fault(reset_after_chunks=0))
    with pytest.raises(openai.APIConnectionError):
        await client.embeddings.create(model="e", input="x")


async def test_fault_cut_before_done(
    raw: httpx.AsyncClient, client: AsyncOpenAI, fake: FakeOpenAIUpstream
) -> None:
    fake.inject(Fault(cut_before_done=True, times=2))
    response = await raw.post(
        "/chat/completions", json={"model": "m", "messages": USER_HELLO, "stream": True}
    )
    assert response.status_code == 200
    assert b"[DONE]" not in response.content
    assert b'"finish_reason":"stop"' in response.content

    stream = await client.chat.completions.create(model="m", messages=USER_HELLO, stream=True)
    chunks = [chunk async for chunk in stream]  # the SDK does not notice a missing [DONE]
    assert chunks[-1].choices[0].finish_reason == "stop"


async def test_closed_early_counts_client_disconnects(fake: FakeOpenAIUpstream) -> None:
    async with AsyncOpenAI(base_url=fake.base_url, api_key=KEY, max_retries=0) as sdk:
        stream = await sdk.chat.completions.create(
            model="m", messages=USER_HELLO, stream=True, extra_headers={"x-fake-chunk-delay": "0.2"}
        )
        async for _ in stream:
            break
        assert fake.active_streams == 1
        await stream.close()
        await fake.wait_closed_early(1, timeout=3)
    assert fake.closed_early == 1
    assert fake.active_streams == 0


async def test_chunk_delay_slows_streams() -> None:
    async with FakeOpenAIUpstream(KEY, chunk_delay=0.05) as fake:
        async with AsyncOpenAI(base_url=fake.base_url, api_key=KEY, max_retries=0) as sdk:
            started = time.monotonic()
            stream = await sdk.chat.completions.create(model="m", messages=USER_HELLO, stream=True)
            chunks = [chunk async for chunk in stream]
    assert time.monotonic() - started >= 0.05 * len(chunks)
    assert fake.closed_early == 0


# -- bodies match OpenAI's published schemas -----------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body", "schema"),
    [
        ("POST", "/chat/completions", {"model": "m", "messages": USER_HELLO}, "CreateChatCompletionResponse"),
        (
            "POST",
            "/chat/completions",
            {"model": "m", "messages": USER_HELLO, "tools": [WEATHER_TOOL]},
            "CreateChatCompletionResponse",
        ),
        ("POST", "/responses", {"model": "m", "input": "hi"}, "Response"),
        ("POST", "/embeddings", {"model": "e", "input": "hi"}, "CreateEmbeddingResponse"),
        (
            "POST",
            "/images/generations",
            {"model": "gpt-image-1", "prompt": "x", "response_format": "b64_json"},
            "ImagesResponse",
        ),
        ("POST", "/videos", {"prompt": "x"}, "VideoResource"),
        ("GET", "/models", None, "ListModelsResponse"),
        ("GET", "/models/nope", None, "ErrorResponse"),
    ],
)
async def test_bodies_match_openapi_schema(
    raw: httpx.AsyncClient, method: str, path: str, body: dict[str, Any] | None, schema: str
) -> None:
    response = await raw.request(method, path, json=body)
    assert response.headers["content-type"] == "application/json"
    assert_matches_schema(response.json(), schema)
