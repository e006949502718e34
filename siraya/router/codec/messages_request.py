"""Anthropic Messages request JSON -> `MessageParams`: the front door's decoder.

`decode_message_request` reads a client's `POST /v1/messages` body and `decode_count_tokens_request`
a `POST /v1/messages/count_tokens` body (the same fields, `max_tokens` not required). Errors name
the field the way Anthropic's own errors do, as a dotted path (`messages.0.content.1.source.data`).

What the contract cannot type is kept, not dropped: a content block of a type the gateway does not
model stays whole in `MessageContentBlock.other`, a tool's extra settings in `MessageTool.extra`,
and any top-level key the gateway does not model (`output_config`, `container`, ...) in
`extra_body`. The gateway's routing keys (`models`, `provider`) are read as on every endpoint.
"""

from __future__ import annotations

from typing import Any

import orjson

from siraya.router.codec.errors import CodecError
from siraya.router.codec.fields import (
    JsonObject,
    fill_struct,
    opt_bool,
    opt_float,
    opt_int,
    opt_list,
    opt_object,
    opt_str,
    require_list,
    require_object,
    require_str,
)
from siraya.router.codec.routing import collect_extra_body, decode_routing, require_model
from siraya.router.v1 import messages_pb2

__all__ = ["decode_count_tokens_request", "decode_message_request"]

# "system": a mid-conversation system message (Claude Opus 4.8 and later; Claude Code sends them).
_ROLES = {
    "user": messages_pb2.MESSAGE_ROLE_USER,
    "assistant": messages_pb2.MESSAGE_ROLE_ASSISTANT,
    "system": messages_pb2.MESSAGE_ROLE_SYSTEM,
}
_TOOL_CHOICES = frozenset({"auto", "any", "tool", "none"})
_THINKING_TYPES = frozenset({"enabled", "disabled", "adaptive"})
_TOOL_KEYS = frozenset({"name", "description", "input_schema", "cache_control", "type", "strict"})
_KNOWN_KEYS = frozenset(
    {
        "model",
        "messages",
        "max_tokens",
        "system",
        "tools",
        "tool_choice",
        "thinking",
        "metadata",
        "stop_sequences",
        "temperature",
        "top_p",
        "top_k",
        "service_tier",
        "stream",
        "cache_control",
    }
)
_INT32_MAX = 2**31 - 1


def _missing(param: str) -> CodecError:
    return CodecError(f"{param}: Field required", param, "missing_required_parameter")


def _invalid(param: str, message: str) -> CodecError:
    return CodecError(f"{param}: {message}", param)


def _require_obj(container: JsonObject, key: str, param: str) -> JsonObject:
    value = container.get(key)
    if value is None:
        raise _missing(param)
    return require_object(value, param)


def _int32(value: int | None, param: str, lowest: int = 0) -> int | None:
    if value is not None and not lowest <= value <= _INT32_MAX:
        raise _invalid(param, f"Input should be an integer between {lowest} and {_INT32_MAX}")
    return value


# --- the request ------------------------------------------------------------------------------


def decode_message_request(body: Any) -> messages_pb2.MessageParams:
    """Decode a client's `POST /v1/messages` body (Anthropic's request + the gateway's routing)."""
    params = _decode(body)
    if not params.HasField("max_tokens"):
        raise _missing("max_tokens")
    return params


def decode_count_tokens_request(body: Any) -> messages_pb2.MessageParams:
    """Decode a `POST /v1/messages/count_tokens` body: a Messages request without `max_tokens`."""
    return _decode(body)


def _decode(body: Any) -> messages_pb2.MessageParams:
    if not isinstance(body, dict):
        raise CodecError("The request body must be a JSON object.", None, "invalid_type")
    params = messages_pb2.MessageParams(model=require_model(body))
    messages = body.get("messages")
    if messages is None:
        raise _missing("messages")
    for index, raw in enumerate(require_list(messages, "messages")):
        message = params.messages.add()
        _decode_message(raw, message, f"messages.{index}")
        if message.role == messages_pb2.MESSAGE_ROLE_SYSTEM and (
            index == 0 or params.messages[index - 1].role != messages_pb2.MESSAGE_ROLE_USER
        ):
            # Anthropic's placement rule: a system message comes right after a user turn.
            raise _invalid(
                f"messages.{index}.role", "a 'system' message must come right after a 'user' message"
            )

    max_tokens = _int32(opt_int(body, "max_tokens"), "max_tokens", lowest=1)
    if max_tokens is not None:
        params.max_tokens = max_tokens
    system = body.get("system")
    if isinstance(system, str):
        params.system_text = system
    elif system is not None:
        blocks = params.system_blocks.blocks
        for index, raw in enumerate(require_list(system, "system")):
            param = f"system.{index}"
            block = require_object(raw, param)
            if block.get("type") != "text":
                raise _invalid(f"{param}.type", "Input should be 'text'")
            _decode_text(block, blocks.add(), param)
    for index, raw in enumerate(opt_list(body, "tools") or ()):
        _decode_tool(raw, params.tools.add(), f"tools.{index}")
    tool_choice = opt_object(body, "tool_choice")
    if tool_choice is not None:
        _decode_tool_choice(tool_choice, params.tool_choice)
    thinking = opt_object(body, "thinking")
    if thinking is not None:
        _decode_thinking(thinking, params.thinking)
    metadata = opt_object(body, "metadata")
    if metadata is not None:
        params.metadata.SetInParent()
        for key in metadata:
            if key != "user_id":
                raise _invalid(f"metadata.{key}", "Extra inputs are not permitted")
        user_id = opt_str(metadata, "user_id", "metadata.user_id")
        if user_id is not None:
            params.metadata.user_id = user_id
    stops = opt_list(body, "stop_sequences")
    if stops:
        for index, stop in enumerate(stops):
            if not isinstance(stop, str):
                raise _invalid(f"stop_sequences.{index}", "Input should be a valid string")
        params.stop_sequences.extend(stops)
    for key in ("temperature", "top_p"):
        number = opt_float(body, key)
        if number is not None:
            setattr(params, key, number)
    top_k = _int32(opt_int(body, "top_k"), "top_k")
    if top_k is not None:
        params.top_k = top_k
    service_tier = opt_str(body, "service_tier")
    if service_tier is not None:
        params.service_tier = service_tier
    stream = opt_bool(body, "stream")
    if stream is not None:
        params.stream = stream
    cache_control = opt_object(body, "cache_control")
    if cache_control is not None:
        _decode_cache_control(cache_control, params.cache_control, "cache_control")

    decode_routing(body, params.routing)
    collect_extra_body(body, _KNOWN_KEYS, params.extra_body)
    return params


def _decode_message(raw: Any, target: messages_pb2.InputMessage, param: str) -> None:
    message = require_object(raw, param)
    role_name = message.get("role")
    if role_name is None:
        raise _missing(f"{param}.role")
    role = _ROLES.get(role_name) if isinstance(role_name, str) else None
    if role is None:
        raise _invalid(f"{param}.role", "Input should be 'user', 'assistant' or 'system'")
    target.role = role
    content = message.get("content")
    if isinstance(content, str):
        target.text = content
    elif content is None:
        raise _missing(f"{param}.content")
    else:
        blocks = target.blocks.blocks
        blocks.extend(())
        for position, block in enumerate(require_list(content, f"{param}.content")):
            decode_block(block, blocks.add(), f"{param}.content.{position}")


# --- content blocks ---------------------------------------------------------------------------


def decode_block(raw: Any, target: messages_pb2.MessageContentBlock, param: str) -> None:
    """Fill one content block; a type the gateway does not model is kept whole in `other`."""
    block = require_object(raw, param)
    kind = block.get("type")
    if kind == "text":
        _decode_text(block, target.text, param)
    elif kind == "image":
        _decode_image(block, target.image, param)
    elif kind == "document":
        _decode_document(block, target.document, param)
    elif kind == "tool_use":
        _decode_tool_use(block, target.tool_use, param)
    elif kind == "tool_result":
        _decode_tool_result(block, target.tool_result, param)
    elif kind == "thinking":
        target.thinking.thinking = require_str(block, "thinking", f"{param}.thinking")
        target.thinking.signature = opt_str(block, "signature", f"{param}.signature") or ""
    elif kind == "redacted_thinking":
        target.redacted_thinking.data = require_str(block, "data", f"{param}.data")
    elif kind is None:
        raise _missing(f"{param}.type")
    elif isinstance(kind, str):
        target.other.SetInParent()
        fill_struct(target.other, block)
    else:
        raise _invalid(f"{param}.type", "Input should be a valid string")


def _decode_cache_control(raw: JsonObject, target: messages_pb2.MessageCacheControl, param: str) -> None:
    target.type = require_str(raw, "type", f"{param}.type")
    ttl = opt_str(raw, "ttl", f"{param}.ttl")
    if ttl is not None:
        target.ttl = ttl


def _decode_block_cache_control(
    block: JsonObject, target: messages_pb2.MessageCacheControl, param: str
) -> None:
    cache_control = opt_object(block, "cache_control", f"{param}.cache_control")
    if cache_control is not None:
        _decode_cache_control(cache_control, target, f"{param}.cache_control")


def _decode_text(block: JsonObject, target: messages_pb2.MessageTextBlock, param: str) -> None:
    target.text = require_str(block, "text", f"{param}.text")
    if "cache_control" in block:
        _decode_block_cache_control(block, target.cache_control, param)
    citations = opt_list(block, "citations", f"{param}.citations")
    for index, citation in enumerate(citations or ()):
        fill_struct(target.citations.add(), require_object(citation, f"{param}.citations.{index}"))


def _decode_image(block: JsonObject, target: messages_pb2.MessageImageBlock, param: str) -> None:
    path = f"{param}.source"
    source = _require_obj(block, "source", path)
    kind = source.get("type")
    if kind == "base64":
        target.base64.media_type = require_str(source, "media_type", f"{path}.media_type")
        target.base64.data = require_str(source, "data", f"{path}.data")
    elif kind == "url":
        target.url.url = require_str(source, "url", f"{path}.url")
    elif kind == "file":
        target.file.file_id = require_str(source, "file_id", f"{path}.file_id")
    else:
        raise _invalid(f"{path}.type", "Input should be 'base64', 'url' or 'file'")
    _decode_block_cache_control(block, target.cache_control, param)


def _decode_document(block: JsonObject, target: messages_pb2.MessageDocumentBlock, param: str) -> None:
    path = f"{param}.source"
    source = _require_obj(block, "source", path)
    kind = source.get("type")
    if kind == "base64":
        target.base64.media_type = require_str(source, "media_type", f"{path}.media_type")
        target.base64.data = require_str(source, "data", f"{path}.data")
    elif kind == "url":
        target.url.url = require_str(source, "url", f"{path}.url")
    elif kind == "text":
        target.text.media_type = opt_str(source, "media_type", f"{path}.media_type") or "text/plain"
        target.text.data = require_str(source, "data", f"{path}.data")
    elif kind == "file":
        target.file.file_id = require_str(source, "file_id", f"{path}.file_id")
    elif kind == "content":
        target.content.SetInParent()
        fill_struct(target.content, source)
    else:
        raise _invalid(f"{path}.type", "Input should be 'base64', 'url', 'text', 'content' or 'file'")
    for key in ("title", "context"):
        value = opt_str(block, key, f"{param}.{key}")
        if value is not None:
            setattr(target, key, value)
    citations = opt_object(block, "citations", f"{param}.citations")
    if citations is not None:
        target.citations.SetInParent()
        fill_struct(target.citations, citations)
    _decode_block_cache_control(block, target.cache_control, param)


def _decode_tool_use(block: JsonObject, target: messages_pb2.MessageToolUseBlock, param: str) -> None:
    target.id = require_str(block, "id", f"{param}.id")
    target.name = require_str(block, "name", f"{param}.name")
    # Kept as JSON text, keys in the order the model wrote them (orjson keeps that order).
    target.input_json = orjson.dumps(_require_obj(block, "input", f"{param}.input"))
    _decode_block_cache_control(block, target.cache_control, param)


def _decode_tool_result(block: JsonObject, target: messages_pb2.MessageToolResultBlock, param: str) -> None:
    target.tool_use_id = require_str(block, "tool_use_id", f"{param}.tool_use_id")
    content = block.get("content")
    if isinstance(content, str):
        target.text = content
    elif content is not None:
        blocks = target.blocks.blocks
        blocks.extend(())
        for position, inner in enumerate(require_list(content, f"{param}.content")):
            decode_block(inner, blocks.add(), f"{param}.content.{position}")
    is_error = opt_bool(block, "is_error", f"{param}.is_error")
    if is_error is not None:
        target.is_error = is_error
    _decode_block_cache_control(block, target.cache_control, param)


# --- tools and options ------------------------------------------------------------------------


def _decode_tool(raw: Any, target: messages_pb2.MessageTool, param: str) -> None:
    tool = require_object(raw, param)
    target.name = require_str(tool, "name", f"{param}.name")
    kind = opt_str(tool, "type", f"{param}.type")
    if kind is not None:
        target.type = kind
    description = opt_str(tool, "description", f"{param}.description")
    if description is not None:
        target.description = description
    schema = tool.get("input_schema")
    if schema is not None:
        target.input_schema_json = orjson.dumps(require_object(schema, f"{param}.input_schema"))
    elif kind in (None, "custom"):
        raise _missing(f"{param}.input_schema")
    strict = opt_bool(tool, "strict", f"{param}.strict")
    if strict is not None:
        target.strict = strict
    _decode_block_cache_control(tool, target.cache_control, param)
    extra = {key: value for key, value in tool.items() if key not in _TOOL_KEYS}
    if extra:
        fill_struct(target.extra, extra)


def _decode_tool_choice(choice: JsonObject, target: messages_pb2.MessageToolChoice) -> None:
    kind = require_str(choice, "type", "tool_choice.type")
    if kind not in _TOOL_CHOICES:
        raise _invalid("tool_choice.type", "Input should be 'auto', 'any', 'tool' or 'none'")
    target.type = kind
    if kind == "tool":
        target.name = require_str(choice, "name", "tool_choice.name")
    disable = opt_bool(choice, "disable_parallel_tool_use", "tool_choice.disable_parallel_tool_use")
    if disable is not None:
        target.disable_parallel_tool_use = disable


def _decode_thinking(thinking: JsonObject, target: messages_pb2.MessageThinkingConfig) -> None:
    kind = require_str(thinking, "type", "thinking.type")
    if kind not in _THINKING_TYPES:
        raise _invalid("thinking.type", "Input should be 'enabled', 'disabled' or 'adaptive'")
    target.type = kind
    budget = _int32(opt_int(thinking, "budget_tokens", "thinking.budget_tokens"), "thinking.budget_tokens")
    if budget is not None:
        target.budget_tokens = budget
    elif kind == "enabled":
        raise _missing("thinking.budget_tokens")
    display = opt_str(thinking, "display", "thinking.display")
    if display is not None:
        target.display = display
