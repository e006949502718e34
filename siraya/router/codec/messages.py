"""`Message` and `MessageStreamEvent` protos -> the JSON Anthropic's Messages API sends.

Keys follow Anthropic's order (`id`, `type`, `role`, `model`, `content`, `stop_reason`,
`stop_sequence`, `usage`), and a tool_use block's `input` is written from the JSON text the proto
keeps, byte for byte, so the key order the model produced reaches the client. The gateway's own
additions (`provider` on the message, `cost` in the usage) are extra keys Anthropic's SDKs ignore.

A stream event's SSE name is its `type`, which is also the name of the proto's oneof field:
`stream_event_type` returns it for the bridge's `event:` line.
"""

from __future__ import annotations

from typing import Any

import orjson

from siraya.router.codec.fields import JsonObject, struct_to_dict
from siraya.router.v1 import messages_pb2

__all__ = [
    "block_dict",
    "encode_count_tokens",
    "encode_message",
    "encode_stream_event",
    "message_dict",
    "message_request_dict",
    "stream_event_dict",
    "stream_event_type",
    "usage_dict",
]


def encode_message(message: messages_pb2.Message) -> bytes:
    """The body of a `POST /v1/messages` reply."""
    return orjson.dumps(message_dict(message))


def encode_count_tokens(input_tokens: int) -> bytes:
    """The body of a `POST /v1/messages/count_tokens` reply."""
    return orjson.dumps({"input_tokens": input_tokens})


def stream_event_type(event: messages_pb2.MessageStreamEvent) -> str:
    """The event's `type`: what the SSE `event:` line names."""
    kind = event.WhichOneof("event")
    if kind == "other":
        other = event.other.fields.get("type")
        return other.string_value if other is not None else "unknown"
    return kind or "unknown"


def encode_stream_event(event: messages_pb2.MessageStreamEvent) -> bytes:
    """The `data:` JSON of one stream event."""
    return orjson.dumps(stream_event_dict(event))


# --- messages and blocks ----------------------------------------------------------------------


def message_dict(message: messages_pb2.Message) -> JsonObject:
    out: JsonObject = {
        "id": message.id,
        "type": message.type or "message",
        "role": message.role or "assistant",
        "model": message.model,
        "content": [block_dict(block) for block in message.content],
        "stop_reason": message.stop_reason if message.HasField("stop_reason") else None,
        "stop_sequence": message.stop_sequence if message.HasField("stop_sequence") else None,
        "usage": usage_dict(message.usage),
    }
    if message.HasField("provider"):
        out["provider"] = message.provider
    return out


def usage_dict(usage: messages_pb2.MessageUsage) -> JsonObject:
    out: JsonObject = {"input_tokens": usage.input_tokens}
    if usage.HasField("cache_creation_input_tokens"):
        out["cache_creation_input_tokens"] = usage.cache_creation_input_tokens
    if usage.HasField("cache_read_input_tokens"):
        out["cache_read_input_tokens"] = usage.cache_read_input_tokens
    if usage.HasField("cache_creation"):
        out["cache_creation"] = struct_to_dict(usage.cache_creation)
    out["output_tokens"] = usage.output_tokens
    if usage.HasField("output_tokens_details"):
        details = usage.output_tokens_details
        out["output_tokens_details"] = (
            {"thinking_tokens": details.thinking_tokens} if details.HasField("thinking_tokens") else {}
        )
    if usage.HasField("server_tool_use"):
        out["server_tool_use"] = struct_to_dict(usage.server_tool_use)
    if usage.HasField("service_tier"):
        out["service_tier"] = usage.service_tier
    if usage.HasField("cost"):
        out["cost"] = usage.cost
    return out


def _cache_control(block: Any, out: JsonObject) -> JsonObject:
    if block.HasField("cache_control"):
        control: JsonObject = {"type": block.cache_control.type}
        if block.cache_control.HasField("ttl"):
            control["ttl"] = block.cache_control.ttl
        out["cache_control"] = control
    return out


def _source_dict(container: Any) -> JsonObject:
    kind = container.WhichOneof("source")
    if kind == "base64":
        return {"type": "base64", "media_type": container.base64.media_type, "data": container.base64.data}
    if kind == "url":
        return {"type": "url", "url": container.url.url}
    if kind == "file":
        return {"type": "file", "file_id": container.file.file_id}
    if kind == "text":
        return {"type": "text", "media_type": container.text.media_type, "data": container.text.data}
    if kind == "content":
        return struct_to_dict(container.content)
    return {}


def block_dict(block: messages_pb2.MessageContentBlock) -> JsonObject:
    """One content block as Anthropic writes it."""
    kind = block.WhichOneof("block")
    if kind == "text":
        text: JsonObject = {"type": "text", "text": block.text.text}
        if block.text.citations:
            text["citations"] = [struct_to_dict(citation) for citation in block.text.citations]
        return _cache_control(block.text, text)
    if kind == "thinking":
        return {
            "type": "thinking",
            "thinking": block.thinking.thinking,
            "signature": block.thinking.signature,
        }
    if kind == "redacted_thinking":
        return {"type": "redacted_thinking", "data": block.redacted_thinking.data}
    if kind == "tool_use":
        use = block.tool_use
        tool_use: JsonObject = {
            "type": "tool_use",
            "id": use.id,
            "name": use.name,
            "input": orjson.Fragment(use.input_json or b"{}"),
        }
        return _cache_control(use, tool_use)
    if kind == "image":
        return _cache_control(block.image, {"type": "image", "source": _source_dict(block.image)})
    if kind == "document":
        return _document_dict(block.document)
    if kind == "tool_result":
        return _tool_result_dict(block.tool_result)
    if kind == "other":
        return struct_to_dict(block.other)
    return {}


def _document_dict(document: messages_pb2.MessageDocumentBlock) -> JsonObject:
    out: JsonObject = {"type": "document", "source": _source_dict(document)}
    if document.HasField("title"):
        out["title"] = document.title
    if document.HasField("context"):
        out["context"] = document.context
    if document.HasField("citations"):
        out["citations"] = struct_to_dict(document.citations)
    return _cache_control(document, out)


def _tool_result_dict(result: messages_pb2.MessageToolResultBlock) -> JsonObject:
    out: JsonObject = {"type": "tool_result", "tool_use_id": result.tool_use_id}
    which = result.WhichOneof("content")
    if which == "text":
        out["content"] = result.text
    elif which == "blocks":
        out["content"] = [block_dict(inner) for inner in result.blocks.blocks]
    if result.HasField("is_error"):
        out["is_error"] = result.is_error
    return _cache_control(result, out)


# --- stream events ----------------------------------------------------------------------------


def _delta_dict(delta: messages_pb2.MessageContentDelta) -> JsonObject:
    kind = delta.WhichOneof("delta")
    if kind == "text_delta":
        return {"type": "text_delta", "text": delta.text_delta.text}
    if kind == "input_json_delta":
        return {"type": "input_json_delta", "partial_json": delta.input_json_delta.partial_json}
    if kind == "thinking_delta":
        return {"type": "thinking_delta", "thinking": delta.thinking_delta.thinking}
    if kind == "signature_delta":
        return {"type": "signature_delta", "signature": delta.signature_delta.signature}
    if kind == "citations_delta":
        return {"type": "citations_delta", "citation": struct_to_dict(delta.citations_delta)}
    return {}


def stream_event_dict(event: messages_pb2.MessageStreamEvent) -> JsonObject:
    """One stream event as the JSON object its `data:` line carries."""
    kind = event.WhichOneof("event")
    if kind == "content_block_delta":
        body = event.content_block_delta
        return {"type": kind, "index": body.index, "delta": _delta_dict(body.delta)}
    if kind == "content_block_start":
        start = event.content_block_start
        return {"type": kind, "index": start.index, "content_block": _start_block_dict(start.content_block)}
    if kind == "content_block_stop":
        return {"type": kind, "index": event.content_block_stop.index}
    if kind == "message_start":
        return {"type": kind, "message": message_dict(event.message_start.message)}
    if kind == "message_delta":
        body_delta = event.message_delta
        delta = body_delta.delta
        return {
            "type": kind,
            "delta": {
                "stop_reason": delta.stop_reason if delta.HasField("stop_reason") else None,
                "stop_sequence": delta.stop_sequence if delta.HasField("stop_sequence") else None,
            },
            "usage": usage_dict(body_delta.usage),
        }
    if kind == "other":
        return struct_to_dict(event.other)
    return {"type": kind}


def _start_block_dict(block: messages_pb2.MessageContentBlock) -> JsonObject:
    """A block as content_block_start opens it: empty text, empty thinking, tool input {}."""
    kind = block.WhichOneof("block")
    if kind == "tool_use":
        return {"type": "tool_use", "id": block.tool_use.id, "name": block.tool_use.name, "input": {}}
    return block_dict(block)


# --- requests ---------------------------------------------------------------------------------


def message_request_dict(params: messages_pb2.MessageParams) -> JsonObject:
    """The Anthropic request body `params` holds (for a caller that sent the proto, not the JSON).

    The gateway's routing stays out; `extra_body` keys are merged at the top level, as sent.
    """
    out: JsonObject = {"model": params.model}
    if params.HasField("max_tokens"):
        out["max_tokens"] = params.max_tokens
    which = params.WhichOneof("system")
    if which == "system_text":
        out["system"] = params.system_text
    elif which == "system_blocks":
        out["system"] = [
            block_dict(messages_pb2.MessageContentBlock(text=text)) for text in params.system_blocks.blocks
        ]
    out["messages"] = [_input_message_dict(message) for message in params.messages]
    if params.tools:
        out["tools"] = [_tool_dict(tool) for tool in params.tools]
    if params.HasField("tool_choice"):
        choice = params.tool_choice
        tool_choice: JsonObject = {"type": choice.type}
        if choice.HasField("name"):
            tool_choice["name"] = choice.name
        if choice.HasField("disable_parallel_tool_use"):
            tool_choice["disable_parallel_tool_use"] = choice.disable_parallel_tool_use
        out["tool_choice"] = tool_choice
    if params.HasField("thinking"):
        thinking: JsonObject = {"type": params.thinking.type}
        if params.thinking.HasField("budget_tokens"):
            thinking["budget_tokens"] = params.thinking.budget_tokens
        if params.thinking.HasField("display"):
            thinking["display"] = params.thinking.display
        out["thinking"] = thinking
    if params.HasField("metadata"):
        out["metadata"] = {"user_id": params.metadata.user_id} if params.metadata.HasField("user_id") else {}
    if params.stop_sequences:
        out["stop_sequences"] = list(params.stop_sequences)
    for key in ("temperature", "top_p", "top_k", "service_tier", "stream"):
        if params.HasField(key):
            out[key] = getattr(params, key)
    _cache_control(params, out)
    out.update(struct_to_dict(params.extra_body))
    return out


_ROLE_NAMES = {
    messages_pb2.MESSAGE_ROLE_USER: "user",
    messages_pb2.MESSAGE_ROLE_ASSISTANT: "assistant",
    messages_pb2.MESSAGE_ROLE_SYSTEM: "system",
}


def _input_message_dict(message: messages_pb2.InputMessage) -> JsonObject:
    role = _ROLE_NAMES.get(message.role, "user")
    if message.WhichOneof("content") == "text":
        return {"role": role, "content": message.text}
    return {"role": role, "content": [block_dict(block) for block in message.blocks.blocks]}


def _tool_dict(tool: messages_pb2.MessageTool) -> JsonObject:
    out: JsonObject = {}
    if tool.HasField("type"):
        out["type"] = tool.type
    out["name"] = tool.name
    if tool.HasField("description"):
        out["description"] = tool.description
    if tool.HasField("input_schema_json"):
        out["input_schema"] = orjson.Fragment(tool.input_schema_json)
    if tool.HasField("strict"):
        out["strict"] = tool.strict
    _cache_control(tool, out)
    out.update(struct_to_dict(tool.extra))
    return out
