"""Models, responses, embeddings, images and video jobs through the official OpenAI SDK."""

from __future__ import annotations

import base64
import struct
from array import array

import httpx
import openai
import pytest

from tests.e2e.harness import GatewayHarness
from tests.openapi_schema import assert_matches_schema

RESPONSE_TOOL = {
    "type": "function",
    "name": "lookup",
    "description": "Look a thing up",
    "parameters": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]},
}


def test_models_list_and_get(client: openai.OpenAI, harness: GatewayHarness) -> None:
    ids = {model.id for model in client.models.list()}
    assert {"gpt-test", "embed-test", "image-test", "video-test"} <= ids
    model = client.models.retrieve("gpt-test")
    assert model.id == "gpt-test" and model.object == "model"
    raw = httpx.get(
        f"{harness.base_url}/models", headers={"Authorization": f"Bearer {harness.api_key}"}
    ).json()
    assert_matches_schema(raw, "ListModelsResponse")
    kinds = {m["id"]: m["type"] for m in raw["data"]}
    assert kinds["embed-test"] == "embedding" and kinds["video-test"] == "video"


def test_get_unknown_model_is_404(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.models.retrieve("no-such-model")
    assert caught.value.body["code"] == "model_not_found"


@pytest.mark.parametrize("model", ["gpt-test", "gpt-translated"])
def test_responses_non_streaming(client: openai.OpenAI, model: str) -> None:
    response = client.responses.create(model=model, input="hello responses", instructions="be nice")
    assert response.output_text == "echo: hello responses"
    assert response.status == "completed"
    assert response.model == model
    assert response.usage is not None and response.usage.total_tokens > 0


@pytest.mark.parametrize("model", ["gpt-test", "gpt-translated"])
def test_responses_streaming_event_order(client: openai.OpenAI, model: str) -> None:
    events = list(client.responses.create(model=model, input="stream a response", stream=True))
    types = [event.type for event in events]
    assert types[:2] == ["response.created", "response.in_progress"]
    assert types[-1] == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    text_start = types.index("response.output_item.added")
    assert types[text_start + 1] == "response.content_part.added"
    done = types.index("response.output_text.done")
    assert set(types[text_start + 2 : done]) == {"response.output_text.delta"}
    assert types[done + 1 : done + 3] == ["response.content_part.done", "response.output_item.done"]
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == "echo: stream a response"
    assert events[-1].response.output_text == text


def test_responses_function_call_translated_via_chat(client: openai.OpenAI, harness: GatewayHarness) -> None:
    response = client.responses.create(model="gpt-translated", input="look up cats", tools=[RESPONSE_TOOL])
    calls = [item for item in response.output if item.type == "function_call"]
    assert calls and calls[0].name == "lookup"
    sent = harness.chat_only.requests_to("/v1/chat/completions")[-1].json
    assert sent["tools"][0]["function"]["name"] == "lookup"
    assert sent["model"] == "llama-3"
    follow_up = client.responses.create(
        model="gpt-translated",
        input=[
            {"role": "user", "content": "look up cats"},
            {
                "type": "function_call",
                "call_id": calls[0].call_id,
                "name": "lookup",
                "arguments": calls[0].arguments,
            },
            {"type": "function_call_output", "call_id": calls[0].call_id, "output": "cats are great"},
        ],
        tools=[RESPONSE_TOOL],
    )
    assert follow_up.output_text == "tool said: cats are great"


def test_responses_raw_body_matches_schema(harness: GatewayHarness) -> None:
    for model in ("gpt-test", "gpt-translated"):
        body = httpx.post(
            f"{harness.base_url}/responses",
            headers={"Authorization": f"Bearer {harness.api_key}"},
            json={"model": model, "input": "schema"},
        ).json()
        assert_matches_schema(body, "Response")


def test_embeddings_float_and_base64(client: openai.OpenAI, harness: GatewayHarness) -> None:
    as_float = client.embeddings.create(model="embed-test", input=["one", "two"], encoding_format="float")
    assert [d.index for d in as_float.data] == [0, 1]
    assert len(as_float.data[0].embedding) == 8
    as_base64 = client.embeddings.create(model="embed-test", input=["one", "two"])  # the SDK asks for base64
    # Float JSON carries the shortest decimal of each float32; base64 carries the float32 itself.
    as_float32 = list(array("f", as_float.data[0].embedding))
    assert as_base64.data[0].embedding == as_float32
    raw = httpx.post(
        f"{harness.base_url}/embeddings",
        headers={"Authorization": f"Bearer {harness.api_key}"},
        json={"model": "embed-test", "input": "one", "encoding_format": "base64", "dimensions": 4},
    ).json()
    # OpenAI's schema types `embedding` as floats only; base64 is the one documented exception.
    assert_matches_schema(
        {**raw, "data": [{**d, "embedding": [0.0]} for d in raw["data"]]}, "CreateEmbeddingResponse"
    )
    values = struct.unpack("<4f", base64.b64decode(raw["data"][0]["embedding"]))
    assert list(values) == pytest.approx(as_float.data[0].embedding[:4], abs=1) and len(values) == 4
    assert harness.native.requests_to("/v1/embeddings")[-1].json["dimensions"] == 4


def test_image_generation(client: openai.OpenAI, harness: GatewayHarness) -> None:
    result = client.images.generate(
        model="image-test", prompt="a red square", n=2, response_format="b64_json"
    )
    assert len(result.data) == 2
    assert base64.b64decode(result.data[0].b64_json or "").startswith(b"\x89PNG")
    raw = httpx.post(
        f"{harness.base_url}/images/generations",
        headers={"Authorization": f"Bearer {harness.api_key}"},
        json={"model": "image-test", "prompt": "x"},
    ).json()
    assert_matches_schema(raw, "ImagesResponse")


def test_video_job_create_poll_download(client: openai.OpenAI, harness: GatewayHarness) -> None:
    video = client.videos.create(model="video-test", prompt="a cat surfing", seconds="4", size="720x1280")
    assert video.status == "queued" and video.id.startswith("video_")
    for _ in range(10):
        video = client.videos.retrieve(video.id)
        if video.status == "completed":
            break
    assert video.status == "completed" and video.progress == 100
    content = client.videos.download_content(video.id)
    data = content.read()
    assert data[4:8] == b"ftyp" and len(data) > 100_000
    assert content.response.headers["content-type"] == "video/mp4"
    raw = httpx.get(
        f"{harness.base_url}/videos/{video.id}", headers={"Authorization": f"Bearer {harness.api_key}"}
    )
    assert_matches_schema(raw.json(), "VideoResource")


def test_video_job_is_invisible_to_another_key(client: openai.OpenAI, harness: GatewayHarness) -> None:
    video = client.videos.create(model="video-test", prompt="private")
    stranger = openai.OpenAI(base_url=harness.base_url, api_key=harness.other_key, max_retries=0)
    with pytest.raises(openai.NotFoundError):
        stranger.videos.retrieve(video.id)
    with pytest.raises(openai.NotFoundError):
        stranger.videos.download_content(video.id)


def test_videos_generations_route_creates_the_same_job(harness: GatewayHarness) -> None:
    response = httpx.post(
        f"{harness.base_url}/videos/generations",
        headers={"Authorization": f"Bearer {harness.api_key}"},
        json={"model": "video-test", "prompt": "a sunrise", "seconds": 8},
    )
    assert response.status_code == 200
    assert response.json()["object"] == "video" and response.json()["seconds"] == "8"
