"""The fake Anthropic upstream refuses what Anthropic refuses, so translation bugs cannot hide."""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson
import pytest

from tests.fakes.anthropic_upstream import FakeAnthropicUpstream, RequestInvalid, validate_request

USER = {"role": "user", "content": "Hi"}
TOOL_USE = {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}]}
RESULT = {"type": "tool_result", "tool_use_id": "toolu_1", "content": "ok"}


def request(**fields: Any) -> dict[str, Any]:
    return {"model": "claude", "max_tokens": 100, "messages": [USER], **fields}


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        (request(max_tokens=None), "max_tokens"),
        (request(messages=[{"role": "system", "content": "x"}, USER]), "system"),
        (request(messages=[{"role": "assistant", "content": "x"}, USER]), "first message"),
        (request(messages=[USER, USER]), "alternate"),
        (request(messages=[USER, {"role": "assistant", "content": ""}]), "non-empty"),
        (
            request(
                messages=[
                    USER,
                    TOOL_USE,
                    {"role": "user", "content": [{"type": "text", "text": "t"}, RESULT]},
                ]
            ),
            "before",
        ),
        (request(messages=[USER, TOOL_USE, USER]), "without tool_result"),
        (request(messages=[{"role": "user", "content": [RESULT]}]), "tool_use_id"),
        (request(thinking={"type": "enabled", "budget_tokens": 100}), "budget_tokens"),
        (request(thinking={"type": "enabled", "budget_tokens": 1024}, max_tokens=1024), "greater than"),
        (
            request(
                messages=[USER, TOOL_USE, {"role": "user", "content": [RESULT]}],
                thinking={"type": "enabled", "budget_tokens": 1024},
                max_tokens=2000,
            ),
            "thinking block",
        ),
        (request(temperature=1.5), "temperature"),
        (request(tool_choice={"type": "any"}), "requires 'tools'"),
        (request(response_format={"type": "json_object"}), "Extra inputs"),
        (
            request(
                messages=[
                    {
                        "role": "user",
                        "content": [{"type": "image", "source": {"type": "url", "url": "http://x"}}],
                    }
                ]
            ),
            "https",
        ),
    ],
)
def test_validator_refuses(body: dict[str, Any], complaint: str) -> None:
    if body.get("max_tokens") is None:
        body.pop("max_tokens")
    with pytest.raises(RequestInvalid, match=complaint):
        validate_request(body)


def test_validator_accepts_a_full_tool_round_trip() -> None:
    validate_request(
        request(
            system=[{"type": "text", "text": "Be brief."}],
            messages=[
                USER,
                TOOL_USE,
                {"role": "user", "content": [RESULT, {"type": "text", "text": "and?"}]},
            ],
            tools=[{"name": "f", "input_schema": {"type": "object", "properties": {}}}],
            tool_choice={"type": "auto", "disable_parallel_tool_use": True},
        )
    )


async def test_the_server_checks_headers_and_answers_in_anthropics_error_shape() -> None:
    async with FakeAnthropicUpstream(api_key="k") as fake, aiohttp.ClientSession() as session:
        url = fake.base_url + "/v1/messages"
        async with session.post(url, json=request(), headers={"anthropic-version": "2023-06-01"}) as response:
            assert response.status == 401
            body = orjson.loads(await response.read())
        assert body["type"] == "error" and body["error"]["type"] == "authentication_error"
        async with session.post(url, json=request(), headers={"x-api-key": "k"}) as response:
            assert response.status == 400
        headers = {"x-api-key": "k", "anthropic-version": "2023-06-01"}
        async with session.post(url, json=request(stream=True), headers=headers) as response:
            assert response.status == 200 and response.content_type == "text/event-stream"
            raw = await response.text()
        names = [line[7:] for line in raw.splitlines() if line.startswith("event: ")]
        assert names[:2] == ["message_start", "ping"] and names[-2:] == ["message_delta", "message_stop"]
