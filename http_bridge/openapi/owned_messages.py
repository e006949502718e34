"""Anthropic's Messages door (`/v1/messages`, `/v1/messages/count_tokens`): its operations and
schemas, Anthropic's error reply among them, written from http_bridge/messages_routes.py.
"""

from __future__ import annotations

from http_bridge.openapi.owned_parts import (
    INT32,
    JsonObject,
    json_body,
    json_reply,
    nullable,
    operation,
    ref,
)

__all__ = ["ANTHROPIC_ERROR", "MESSAGES_OPERATIONS", "MESSAGES_SCHEMAS"]

ANTHROPIC_ERROR = "AnthropicErrorResponse"

_ANTHROPIC_BLOCK: JsonObject = {
    "type": "object",
    "required": ["type"],
    "properties": {"type": {"type": "string"}},
    "description": "A content block: text, image, document, tool_use, tool_result, thinking, ...",
}

_MESSAGE_PARAMS: JsonObject = {
    "model": {"type": "string", "minLength": 1},
    "messages": {
        "type": "array",
        "items": {
            "type": "object",
            "required": ["role", "content"],
            "properties": {
                "role": {"type": "string", "enum": ["user", "assistant"]},
                "content": {
                    "anyOf": [{"type": "string"}, {"type": "array", "items": ref("AnthropicContentBlock")}]
                },
            },
        },
    },
    "system": {"anyOf": [{"type": "string"}, {"type": "array", "items": ref("AnthropicContentBlock")}]},
    "tools": {
        "type": "array",
        "items": {
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": {"type": "string"},
                "description": {"type": "string"},
                "input_schema": {"type": "object"},
                "type": {"type": "string"},
            },
        },
    },
    "tool_choice": {
        "type": "object",
        "required": ["type"],
        "properties": {"type": {"type": "string", "enum": ["auto", "any", "tool", "none"]}},
    },
    "thinking": {
        "type": "object",
        "required": ["type"],
        "properties": {
            "type": {"type": "string", "enum": ["enabled", "disabled", "adaptive"]},
            "budget_tokens": INT32,
        },
    },
    "metadata": {
        "type": "object",
        "properties": {"user_id": {"type": "string"}},
        "additionalProperties": False,
    },
    "stop_sequences": {"type": "array", "items": {"type": "string"}},
    "temperature": {"type": "number", "minimum": 0, "maximum": 1},
    "top_p": {"type": "number", "minimum": 0, "maximum": 1},
    "top_k": INT32,
    "stream": {"type": "boolean"},
}

MESSAGES_SCHEMAS: dict[str, JsonObject] = {
    "AnthropicContentBlock": _ANTHROPIC_BLOCK,
    "AnthropicCreateMessageRequest": {
        "type": "object",
        "required": ["model", "max_tokens", "messages"],
        "properties": {"max_tokens": {**INT32, "minimum": 1}, **_MESSAGE_PARAMS},
        "description": "Anthropic's Messages request (2023-06-01); unlisted fields go to the upstream.",
    },
    "AnthropicCountTokensRequest": {
        "type": "object",
        "required": ["model", "messages"],
        "properties": _MESSAGE_PARAMS,
    },
    "AnthropicMessage": {
        "type": "object",
        "required": ["id", "type", "role", "content", "model", "stop_reason", "usage"],
        "properties": {
            "id": {"type": "string"},
            "type": {"type": "string", "enum": ["message"]},
            "role": {"type": "string", "enum": ["assistant"]},
            "content": {"type": "array", "items": ref("AnthropicContentBlock")},
            "model": {"type": "string"},
            "stop_reason": nullable({"type": "string"}),
            "stop_sequence": nullable({"type": "string"}),
            "usage": {
                "type": "object",
                "required": ["input_tokens", "output_tokens"],
                "properties": {"input_tokens": {"type": "integer"}, "output_tokens": {"type": "integer"}},
            },
        },
    },
    "AnthropicMessageStreamEvent": {
        "type": "object",
        "required": ["type"],
        "properties": {"type": {"type": "string"}},
    },
    "AnthropicTokenCount": {
        "type": "object",
        "required": ["input_tokens"],
        "properties": {"input_tokens": {"type": "integer", "minimum": 0}},
    },
    ANTHROPIC_ERROR: {
        "type": "object",
        "required": ["type", "error"],
        "properties": {
            "type": {"type": "string", "enum": ["error"]},
            "error": {
                "type": "object",
                "required": ["type", "message"],
                "properties": {"type": {"type": "string"}, "message": {"type": "string"}},
            },
            "request_id": nullable({"type": "string"}),
        },
    },
}

MESSAGES_OPERATIONS: dict[tuple[str, str], JsonObject] = {
    ("POST", "/v1/messages"): operation(
        "createMessage",
        "Anthropic's Messages API: a message, or with `stream: true` Anthropic's event stream.",
        "Messages",
        {
            "200": {
                "description": "OK",
                "content": {
                    "application/json": {"schema": ref("AnthropicMessage")},
                    "text/event-stream": {"schema": ref("AnthropicMessageStreamEvent")},
                },
            }
        },
        request_body=json_body(ref("AnthropicCreateMessageRequest")),
    ),
    ("POST", "/v1/messages/count_tokens"): operation(
        "countMessageTokens",
        "An estimate of the input tokens a Messages request would use.",
        "Messages",
        {"200": json_reply(ref("AnthropicTokenCount"))},
        request_body=json_body(ref("AnthropicCountTokensRequest")),
    ),
}
