"""Stored responses through the official SDK on every kind of upstream: previous_response_id chains
(with a function call and its output), retrieve, delete, input items, key scoping, a chain that
switches models, and background create, poll and cancel."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import orjson
import pytest

from tests.e2e.state_harness import StateHarness
from tests.fakes.openai_upstream.control import Fault

WEATHER_TOOL: Any = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}
MODELS = ("gpt-native", "gpt-chat", "claude", "gemini")


@pytest.fixture(scope="module", params=["in_process", "grpc_hop"])
def harness(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[StateHarness]:
    running = StateHarness(tmp_path_factory.mktemp(request.param), in_process=request.param == "in_process")
    running.start()
    yield running
    running.stop()


@pytest.fixture
def client(harness: StateHarness) -> openai.OpenAI:
    return openai.OpenAI(base_url=harness.base_url, api_key=harness.api_key, max_retries=0, timeout=20)


@pytest.fixture
def other(harness: StateHarness) -> openai.OpenAI:
    return openai.OpenAI(base_url=harness.base_url, api_key=harness.other_key, max_retries=0, timeout=20)


def last_upstream_body(harness: StateHarness, model: str) -> dict[str, Any]:
    upstream = {
        "gpt-native": harness.native,
        "gpt-chat": harness.chat_only,
        "claude": harness.anthropic,
        "gemini": harness.gemini,
    }[model]
    body = upstream.requests[-1].json
    assert isinstance(body, dict)
    return body


def sent_text(body: dict[str, Any]) -> str:
    return orjson.dumps(body).decode()


@pytest.mark.parametrize("model", MODELS)
def test_a_three_turn_chain_with_a_function_call_replays_the_conversation(
    client: openai.OpenAI, harness: StateHarness, model: str
) -> None:
    first = client.responses.create(
        model=model,
        instructions="Answer like a pirate.",
        input="What is the weather in Lisbon?",
        tools=[WEATHER_TOOL],
        tool_choice="required",
    )
    calls = [item for item in first.output if item.type == "function_call"]
    assert len(calls) == 1 and calls[0].name == "get_weather", first.output
    assert first.store is True and first.previous_response_id is None

    second = client.responses.create(
        model=model,
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": calls[0].call_id, "output": '{"celsius": 23}'}],
        tools=[WEATHER_TOOL],
    )
    assert second.previous_response_id == first.id
    answer = second.output_text
    assert "23" in answer, second.output
    body = last_upstream_body(harness, model)
    sent = sent_text(body)
    if model == "gpt-native":
        # The same native deployment served the previous turn: it chains on its own id.
        upstream_first = body["previous_response_id"]
        assert upstream_first.startswith("resp_") and upstream_first != first.id
        assert [item["type"] for item in body["input"]] == ["function_call_output"]
        third = client.responses.create(model=model, previous_response_id=second.id, input="And tomorrow?")
        assert third.previous_response_id == second.id and third.output_text
        body = last_upstream_body(harness, model)
        # The third turn chains on the upstream's id of the second, and sends only what is new.
        assert body["previous_response_id"] not in (upstream_first, first.id, second.id)
        assert body["previous_response_id"].startswith("resp_")
        sent = sent_text(body["input"])
        assert "And tomorrow?" in sent and "Lisbon" not in sent and "celsius" not in sent
        assert "instructions" not in body  # not carried over
        return
    assert "weather in Lisbon" in sent and "get_weather" in sent and "celsius" in sent
    assert "previous_response_id" not in sent  # replayed, never handed to the upstream
    if model == "gemini":
        # Gemini's thought signature rides on the stored call's id and goes back with the call.
        parts = [part for turn in last_upstream_body(harness, model)["contents"] for part in turn["parts"]]
        calls = [part for part in parts if "functionCall" in part]
        assert calls and calls[0].get("thoughtSignature") == "c2lnbmF0dXJl", parts

    third = client.responses.create(model=model, previous_response_id=second.id, input="And tomorrow?")
    assert third.previous_response_id == second.id
    body = last_upstream_body(harness, model)
    sent = sent_text(body)
    for part in ("weather in Lisbon", "get_weather", "celsius", "And tomorrow?"):
        assert part in sent, (part, body)
    assert answer.split()[0] in sent  # the second turn's answer is part of the conversation
    assert "pirate" not in sent  # instructions are not carried over
    assert third.output_text


def test_a_chain_may_switch_models_mid_way(client: openai.OpenAI, harness: StateHarness) -> None:
    first = client.responses.create(model="claude", input="My name is Ada.")
    second = client.responses.create(model="gemini", previous_response_id=first.id, input="I like tea.")
    third = client.responses.create(
        model="gpt-chat", previous_response_id=second.id, input="What do you know about me?"
    )
    assert (first.model, second.model, third.model) == ("claude", "gemini", "gpt-chat")
    gemini_sent = sent_text(last_upstream_body(harness, "gemini"))
    assert "My name is Ada." in gemini_sent and first.output_text in gemini_sent
    messages = last_upstream_body(harness, "gpt-chat")["messages"]
    texts = [message["content"] for message in messages]
    assert texts == [
        "My name is Ada.",
        first.output_text,
        "I like tea.",
        second.output_text,
        "What do you know about me?",
    ]
    assert [message["role"] for message in messages] == ["user", "assistant"] * 2 + ["user"]


@pytest.mark.parametrize("model", ["gpt-native", "claude"])
def test_retrieve_list_input_items_and_delete(
    client: openai.OpenAI, other: openai.OpenAI, model: str
) -> None:
    created = client.responses.create(
        model=model,
        input=[
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "noted"},
            {"role": "user", "content": [{"type": "input_text", "text": "third"}]},
        ],
    )
    fetched = client.responses.retrieve(created.id)
    assert fetched.id == created.id and fetched.status == "completed"
    assert fetched.output_text == created.output_text and fetched.model == model
    assert fetched.usage is not None and fetched.usage.total_tokens == created.usage.total_tokens  # type: ignore[union-attr]

    page = client.responses.input_items.list(created.id, limit=2)
    texts = [item.content[0].text for item in page.data]  # type: ignore[union-attr]
    assert texts == ["third", "noted"]  # newest first, as OpenAI lists them
    assert page.has_more is True and page.first_id == page.data[0].id and page.last_id == page.data[1].id
    rest = client.responses.input_items.list(created.id, limit=2, after=page.last_id)
    assert [item.content[0].text for item in rest.data] == ["first"]  # type: ignore[union-attr]
    assert rest.has_more is False
    ascending = client.responses.input_items.list(created.id, order="asc")
    assert [item.content[0].text for item in ascending.data] == ["first", "noted", "third"]  # type: ignore[union-attr]
    assert all(item.id for item in ascending.data)

    # Another key sees none of it.
    with pytest.raises(openai.NotFoundError):
        other.responses.retrieve(created.id)
    with pytest.raises(openai.NotFoundError):
        other.responses.input_items.list(created.id)
    with pytest.raises(openai.NotFoundError):
        other.responses.delete(created.id)
    with pytest.raises(openai.NotFoundError) as chained:
        other.responses.create(model=model, previous_response_id=created.id, input="hi")
    assert chained.value.body["param"] == "previous_response_id"  # type: ignore[index]

    client.responses.delete(created.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(created.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.delete(created.id)


def test_the_raw_shapes_match_openais(harness: StateHarness, client: openai.OpenAI) -> None:
    created = client.responses.create(model="gpt-chat", input="shapes")
    headers = {"Authorization": f"Bearer {harness.api_key}"}
    listing = httpx.get(f"{harness.base_url}/responses/{created.id}/input_items", headers=headers).json()
    assert list(listing) == ["object", "data", "first_id", "last_id", "has_more"]
    assert listing["data"][0]["content"] == [{"type": "input_text", "text": "shapes"}]
    deleted = httpx.delete(f"{harness.base_url}/responses/{created.id}", headers=headers)
    assert deleted.status_code == 200
    assert deleted.json() == {"id": created.id, "object": "response", "deleted": True}
    missing = httpx.get(f"{harness.base_url}/responses/{created.id}", headers=headers)
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "invalid_request_error"


def test_store_false_is_not_kept(client: openai.OpenAI) -> None:
    created = client.responses.create(model="gpt-chat", input="forget me", store=False)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(created.id)


def test_a_streamed_response_is_stored_and_chains(client: openai.OpenAI, harness: StateHarness) -> None:
    with client.responses.stream(model="claude", input="Stream me.") as stream:
        for _ in stream:
            pass
        streamed = stream.get_final_response()
    assert streamed.id.startswith("resp_")
    fetched = client.responses.retrieve(streamed.id)
    assert fetched.output_text == streamed.output_text and fetched.status == "completed"
    client.responses.create(model="gpt-chat", previous_response_id=streamed.id, input="Next.")
    contents = [message["content"] for message in last_upstream_body(harness, "gpt-chat")["messages"]]
    assert contents == ["Stream me.", streamed.output_text, "Next."]


def wait_for(client: openai.OpenAI, response_id: str, statuses: set[str], timeout: float = 15) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        response = client.responses.retrieve(response_id)
        if response.status in statuses or time.monotonic() > deadline:
            return response
        time.sleep(0.05)


def test_background_create_poll_and_chain(client: openai.OpenAI, harness: StateHarness) -> None:
    queued = client.responses.create(model="gemini", input="Take your time.", background=True)
    assert queued.status == "queued" and queued.background is True and queued.output == []
    done = wait_for(client, queued.id, {"completed", "failed"})
    assert done.status == "completed" and done.background is True, done
    assert "Take your time." in done.output_text
    chained = client.responses.create(model="gpt-chat", previous_response_id=queued.id, input="Go on.")
    assert chained.status == "completed"


def test_background_cancel(client: openai.OpenAI, other: openai.OpenAI, harness: StateHarness) -> None:
    harness.chat_only.inject(Fault(path="/v1/chat/completions", hang=8))
    queued = client.responses.create(model="gpt-chat", input="Never mind.", background=True)
    running = wait_for(client, queued.id, {"in_progress"})
    assert running.status == "in_progress"
    with pytest.raises(openai.NotFoundError):
        other.responses.cancel(queued.id)
    cancelled = client.responses.cancel(queued.id)
    assert cancelled.status == "cancelled"
    time.sleep(0.3)
    assert client.responses.retrieve(queued.id).status == "cancelled"
    finished = client.responses.create(model="gpt-chat", input="sync")
    with pytest.raises(openai.BadRequestError):
        client.responses.cancel(finished.id)


def test_background_with_an_unknown_model_fails_at_once(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model="no-such-model", input="x", background=True)
    with pytest.raises(openai.BadRequestError):
        client.responses.create(model="gpt-chat", input="x", background=True, store=False)


def test_anthropic_thinking_survives_a_tool_loop_through_previous_response_id(
    client: openai.OpenAI, harness: StateHarness
) -> None:
    first = client.responses.create(
        model="claude",
        input="What is the weather in Porto?",
        tools=[WEATHER_TOOL],
        reasoning={"effort": "low"},
    )
    kinds = [item.type for item in first.output]
    assert kinds == ["reasoning", "function_call"], first.output
    call = first.output[1]
    second = client.responses.create(
        model="claude",
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}],  # type: ignore[union-attr]
        tools=[WEATHER_TOOL],
        reasoning={"effort": "low"},
    )
    assert "sunny" in second.output_text
    body = last_upstream_body(harness, "claude")
    assert body["thinking"]["type"] == "enabled"
    assistant = body["messages"][1]
    assert assistant["role"] == "assistant"
    # The signed thinking block was rebuilt from the stored reasoning and sent back first.
    assert [block["type"] for block in assistant["content"]] == ["thinking", "tool_use"]


def test_a_background_stream_can_be_resumed_with_starting_after(
    client: openai.OpenAI, harness: StateHarness
) -> None:
    stream = client.responses.create(
        model="gpt-chat", input="Tell me a story in many words.", background=True, stream=True
    )
    seen = []
    for event in stream:
        seen.append(event)
        if len(seen) == 3:
            break
    stream.close()  # the connection drops; the response runs on
    response_id = seen[0].response.id  # type: ignore[union-attr]
    assert seen[0].response.background is True  # type: ignore[union-attr]
    last = seen[-1].sequence_number
    resumed = list(client.responses.retrieve(response_id, stream=True, starting_after=last))
    assert resumed and all(event.sequence_number > last for event in resumed)
    numbers = [event.sequence_number for event in seen + resumed]
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))  # nothing lost, nothing twice
    assert resumed[-1].type == "response.completed"
    final = resumed[-1].response  # type: ignore[union-attr]
    assert final.id == response_id and final.status == "completed"
    assert client.responses.retrieve(response_id).output_text == final.output_text
    with pytest.raises(openai.NotFoundError):
        openai.OpenAI(base_url=harness.base_url, api_key=harness.other_key, max_retries=0).responses.retrieve(
            response_id, stream=True
        )


def test_a_stored_foreground_response_cannot_be_streamed_again(client: openai.OpenAI) -> None:
    done = client.responses.create(model="gpt-chat", input="once")
    with pytest.raises(openai.BadRequestError):
        list(client.responses.retrieve(done.id, stream=True))


def test_a_native_upstream_chains_on_its_own_ids_only_for_what_it_served(
    client: openai.OpenAI, harness: StateHarness
) -> None:
    first = client.responses.create(model="gpt-native", input="Remember the number 41.")
    first_sent = last_upstream_body(harness, "gpt-native")
    assert "previous_response_id" not in first_sent
    second = client.responses.create(model="claude", previous_response_id=first.id, input="Add one.")
    assert "Remember the number 41." in sent_text(last_upstream_body(harness, "claude"))
    # Claude served the last turn: the native upstream has not seen it, so it gets the replay.
    third = client.responses.create(model="gpt-native", previous_response_id=second.id, input="Again.")
    body = last_upstream_body(harness, "gpt-native")
    assert "previous_response_id" not in body
    texts = sent_text(body)
    assert "Remember the number 41." in texts and second.output_text in texts and "Again." in texts
    # It served that one, with everything: from here on its own id is enough.
    client.responses.create(model="gpt-native", previous_response_id=third.id, input="Once more.")
    body = last_upstream_body(harness, "gpt-native")
    assert body["previous_response_id"].startswith("resp_") and body["previous_response_id"] != third.id
    assert sent_text(body["input"]).count("Once more.") == 1 and "41" not in sent_text(body["input"])
