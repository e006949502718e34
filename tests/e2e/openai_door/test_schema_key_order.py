"""JSON Schemas reach the upstream with the client's key order, byte for byte.

Property order is part of what the model sees (structured output follows it, and prompt caching
needs byte-stable prompts), so a schema must not be re-sorted on its way through the gateway.
"""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest

from tests.e2e.harness import GatewayHarness

# Keys in anything but sorted order, and a float written as 1.0: a map or a double would change both.
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "zeta": {"type": "string", "description": "first on purpose"},
        "alpha": {"type": "number", "minimum": 1.0, "maximum": 99},
        "middle": {"type": "object", "properties": {"y": {"type": "integer"}, "b": {"type": "boolean"}}},
    },
    "required": ["zeta", "alpha", "middle"],
    "additionalProperties": False,
}
SCHEMA_BYTES = orjson.dumps(SCHEMA)
# What the client sent (httpx writes JSON with spaces): only whitespace may differ upstream.
assert SCHEMA_BYTES.index(b'"zeta"') < SCHEMA_BYTES.index(b'"alpha"') < SCHEMA_BYTES.index(b'"middle"')


def _post(harness: GatewayHarness, path: str, body: dict[str, Any]) -> httpx.Response:
    response = httpx.post(
        f"{harness.base_url}{path}",
        headers={"Authorization": f"Bearer {harness.api_key}"},
        json=body,
        timeout=20,
    )
    assert response.status_code == 200, response.text
    return response


def test_chat_tool_and_response_format_schemas_keep_their_order(harness: GatewayHarness) -> None:
    _post(
        harness,
        "/chat/completions",
        {
            "model": "gpt-test",
            "messages": [{"role": "user", "content": "order please"}],
            "tools": [{"type": "function", "function": {"name": "pick", "parameters": SCHEMA}}],
            "response_format": {"type": "json_schema", "json_schema": {"name": "out", "schema": SCHEMA}},
        },
    )
    sent = harness.native.requests_to("/v1/chat/completions")[-1].body
    assert sent.count(SCHEMA_BYTES) == 2, sent


@pytest.mark.parametrize("model", ["gpt-test", "gpt-translated"])
def test_responses_tool_and_text_format_schemas_keep_their_order(harness: GatewayHarness, model: str) -> None:
    response = _post(
        harness,
        "/responses",
        {
            "model": model,
            "input": "order please",
            "tools": [{"type": "function", "name": "pick", "parameters": SCHEMA, "strict": True}],
            "text": {"format": {"type": "json_schema", "name": "out", "schema": SCHEMA}},
        },
    )
    upstream = harness.native if model == "gpt-test" else harness.chat_only
    path = "/v1/responses" if model == "gpt-test" else "/v1/chat/completions"
    sent = upstream.requests_to(path)[-1].body
    assert sent.count(SCHEMA_BYTES) == 2, sent
    # The Response echoes the tools and the text format: in the same order again.
    assert response.content.count(SCHEMA_BYTES) == 2, response.text


def test_hosted_and_extended_tools_keep_their_order(harness: GatewayHarness) -> None:
    # A function tool with a key the proto does not model is carried whole: still in order.
    tool = {"type": "function", "name": "pick", "parameters": SCHEMA, "x_vendor": {"b": 1, "a": 2}}
    _post(harness, "/responses", {"model": "gpt-test", "input": "order please", "tools": [tool]})
    sent = harness.native.requests_to("/v1/responses")[-1].body
    assert orjson.dumps(tool) in sent, sent
