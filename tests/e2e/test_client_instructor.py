"""instructor against a model on each upstream behind the gateway: structured output by function
calling (its default, `Mode.TOOLS`), by json_schema (`Mode.JSON_SCHEMA`) and through the Responses
API (`Mode.RESPONSES_TOOLS`), unary, streamed as partial objects, and as an iterable of objects.

instructor has no tool round trips of its own (a tool call *is* its answer) and no embeddings.
"""

from __future__ import annotations

from typing import Any

import openai
import pytest
from pydantic import BaseModel

from tests.e2e.clients_harness import UPSTREAMS, ClientsGatewayHarness, UpstreamUnderTest

instructor = pytest.importorskip("instructor")


class Weather(BaseModel):
    city: str
    celsius: int


PROMPT = [{"role": "user", "content": "What is the weather in Paris?"}]


@pytest.fixture(params=UPSTREAMS)
def upstream(request: pytest.FixtureRequest, clients_gateway: ClientsGatewayHarness) -> UpstreamUnderTest:
    return clients_gateway.upstream(request.param)


def client(gateway: ClientsGatewayHarness, **settings: Any) -> Any:
    sdk = openai.OpenAI(base_url=gateway.base_url, api_key=gateway.api_key, max_retries=0, timeout=20)
    return instructor.from_openai(sdk, **settings)


def test_function_calling_by_default(
    clients_gateway: ClientsGatewayHarness, upstream: UpstreamUnderTest
) -> None:
    weather, completion = client(clients_gateway).create_with_completion(
        model=upstream.chat_model, response_model=Weather, messages=PROMPT, max_retries=0
    )
    assert isinstance(weather, Weather)
    assert completion.usage.prompt_tokens > 0 and completion.usage.completion_tokens > 0
    assert upstream.forced_tool() == "Weather"
    assert upstream.requested_schema() is None


def test_json_schema(clients_gateway: ClientsGatewayHarness, upstream: UpstreamUnderTest) -> None:
    weather = client(clients_gateway, mode=instructor.Mode.JSON_SCHEMA).create(
        model=upstream.chat_model, response_model=Weather, messages=PROMPT, max_retries=0
    )
    assert isinstance(weather, Weather)
    assert upstream.requested_schema()["required"] == ["city", "celsius"]
    assert upstream.forced_tool() is None


def test_responses_api_tools(clients_gateway: ClientsGatewayHarness, upstream: UpstreamUnderTest) -> None:
    weather = client(clients_gateway, mode=instructor.Mode.RESPONSES_TOOLS).create(
        model=upstream.chat_model, response_model=Weather, messages=PROMPT, max_retries=0
    )
    assert isinstance(weather, Weather)
    assert upstream.forced_tool() == "Weather"


@pytest.mark.parametrize("mode", ["TOOLS", "JSON_SCHEMA"])
def test_stream_partial_objects(
    clients_gateway: ClientsGatewayHarness, upstream: UpstreamUnderTest, mode: str
) -> None:
    partials = list(
        client(clients_gateway, mode=instructor.Mode[mode]).create_partial(
            model=upstream.chat_model,
            response_model=Weather,
            messages=PROMPT,
            max_retries=0,
            stream_options={"include_usage": True},
        )
    )
    # How many partials come depends on how the upstream cuts its stream (Gemini sends a call whole).
    assert partials and upstream.last_generation_streamed()
    final = partials[-1]
    assert isinstance(final.city, str) and isinstance(final.celsius, int)


def test_iterable(clients_gateway: ClientsGatewayHarness, upstream: UpstreamUnderTest) -> None:
    cities = list(
        client(clients_gateway).create_iterable(
            model=upstream.chat_model, response_model=Weather, messages=PROMPT, max_retries=0
        )
    )
    assert cities and all(isinstance(city, Weather) for city in cities)


def test_plain_text_passes_through(
    clients_gateway: ClientsGatewayHarness, upstream: UpstreamUnderTest
) -> None:
    completion = client(clients_gateway).create(
        model=upstream.chat_model, response_model=None, messages=PROMPT
    )
    assert "What is the weather in Paris?" in completion.choices[0].message.content
