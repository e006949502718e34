"""The messages of an OpenAI chat-completions request, JSON <-> `ChatMessage`.

A message's role, its content (a string or an array of content parts: text, image, audio, file,
refusal), and the rest an assistant or tool turn carries (name, tool calls, function call, audio,
reasoning). Readers format their error paths only when a field fails, since a long conversation has
hundreds of fields. A completion's `tool_calls` items are read and written with the same functions.
"""

from __future__ import annotations

from typing import Any

import orjson

from siraya.router.codec.cache_control import decode_cache_control
from siraya.router.codec.errors import CodecError
from siraya.router.codec.fields import (
    JsonObject,
    fill_struct,
    missing_parameter,
    opt_str,
    require_list,
    require_object,
    require_str,
    struct_to_dict,
)
from siraya.router.codec.sampling_fields import invalid_type
from siraya.router.codec.validate import NOT_A_ROLE
from siraya.router.v1 import chat_pb2

__all__ = ["decode_message", "decode_tool_call", "encode_message", "encode_tool_call"]

_ROLES = {
    "system": chat_pb2.CHAT_ROLE_SYSTEM,
    "developer": chat_pb2.CHAT_ROLE_DEVELOPER,
    "user": chat_pb2.CHAT_ROLE_USER,
    "assistant": chat_pb2.CHAT_ROLE_ASSISTANT,
    "tool": chat_pb2.CHAT_ROLE_TOOL,
    "function": chat_pb2.CHAT_ROLE_FUNCTION,
}
_ROLE_NAMES = {role: name for name, role in _ROLES.items()}

_MESSAGE_STRINGS = ("name", "tool_call_id", "refusal", "reasoning")


def _require_obj(container: JsonObject, key: str, param: str) -> JsonObject:
    value = container.get(key)
    if value is None:
        raise missing_parameter(param)
    return require_object(value, param)


# --- decode -----------------------------------------------------------------------------------


def decode_message(raw: Any, messages: Any, index: int) -> None:
    if not isinstance(raw, dict):
        raise invalid_type(f"messages[{index}]", "an object")
    role_name = raw.get("role")
    # A missing role stays unspecified and any other non-role becomes NOT_A_ROLE: the check refuses both.
    if type(role_name) is str:
        role = _ROLES.get(role_name, NOT_A_ROLE)
    else:
        role = chat_pb2.CHAT_ROLE_UNSPECIFIED if role_name is None else NOT_A_ROLE
    message: chat_pb2.ChatMessage = messages.add(role=role)
    content = raw.get("content")
    if type(content) is str:
        message.text = content
    elif type(content) is list:
        parts = message.parts.parts
        # Extending marks the oneof even for an empty array, so it is sent back as [].
        parts.extend(())
        for position, part in enumerate(content):
            _decode_part(part, parts.add(), index, position)
    elif content is not None:
        raise invalid_type(f"messages[{index}].content", "a string or an array of content parts")
    # Most turns are just {"role", "content"}: they skip the optional lookups.
    if len(raw) > 2 or "content" not in raw:
        _decode_message_extras(raw, message, index)


def _decode_message_extras(raw: JsonObject, message: chat_pb2.ChatMessage, index: int) -> None:
    for key in _MESSAGE_STRINGS:
        value = raw.get(key)
        if value is not None:
            if type(value) is not str:
                raise invalid_type(f"messages[{index}].{key}", "a string")
            setattr(message, key, value)
    if not message.HasField("reasoning"):
        reasoning = raw.get("reasoning_content")
        if reasoning is not None:
            if type(reasoning) is not str:
                raise invalid_type(f"messages[{index}].reasoning_content", "a string")
            message.reasoning = reasoning
    tool_calls = raw.get("tool_calls")
    if tool_calls:
        for position, call in enumerate(require_list(tool_calls, f"messages[{index}].tool_calls")):
            decode_tool_call(call, message.tool_calls.add(), f"messages[{index}].tool_calls[{position}]")
    function_call = raw.get("function_call")
    if function_call is not None:
        param = f"messages[{index}].function_call"
        function_call = require_object(function_call, param)
        message.function_call.SetInParent()
        message.function_call.name = opt_str(function_call, "name", f"{param}.name") or ""
        message.function_call.arguments = opt_str(function_call, "arguments", f"{param}.arguments") or ""
    audio = raw.get("audio")
    if audio is not None:
        message.audio.SetInParent()
        fill_struct(message.audio, require_object(audio, f"messages[{index}].audio"))
    if "cache_control" in raw:
        decode_cache_control(raw, message.cache_control, f"messages[{index}].cache_control")


def _decode_part(raw: Any, target: chat_pb2.ChatContentPart, index: int, position: int) -> None:
    param = f"messages[{index}].content[{position}]"
    if not isinstance(raw, dict):
        raise invalid_type(param, "an object")
    kind = raw.get("type")
    if kind == "text":
        target.text.text = require_str(raw, "text", f"{param}.text")
    elif kind == "image_url":
        image = _require_obj(raw, "image_url", f"{param}.image_url")
        target.image_url.url = require_str(image, "url", f"{param}.image_url.url")
        detail = opt_str(image, "detail", f"{param}.image_url.detail")
        if detail is not None:
            target.image_url.detail = detail
    elif kind == "input_audio":
        audio = _require_obj(raw, "input_audio", f"{param}.input_audio")
        target.input_audio.data = require_str(audio, "data", f"{param}.input_audio.data")
        target.input_audio.format = require_str(audio, "format", f"{param}.input_audio.format")
    elif kind == "file":
        file = _require_obj(raw, "file", f"{param}.file")
        target.file.SetInParent()
        for key in ("file_data", "file_id", "filename"):
            value = opt_str(file, key, f"{param}.file.{key}")
            if value is not None:
                setattr(target.file, key, value)
    elif kind == "refusal":
        target.refusal.refusal = require_str(raw, "refusal", f"{param}.refusal")
    elif kind is not None:
        raise CodecError(
            f"Invalid value for '{param}.type': expected 'text', 'image_url', 'input_audio', 'file' "
            "or 'refusal'.",
            f"{param}.type",
        )
    if "cache_control" in raw:
        decode_cache_control(raw, target.cache_control, f"{param}.cache_control")


def decode_tool_call(raw: Any, target: chat_pb2.ToolCall, param: str) -> None:
    """Fill a `ToolCall` from an assistant message's (or a completion's) `tool_calls` item."""
    call = require_object(raw, param)
    target.id = opt_str(call, "id", f"{param}.id") or ""
    kind = opt_str(call, "type", f"{param}.type") or "function"
    target.type = kind
    if kind == "custom":
        custom = _require_obj(call, "custom", f"{param}.custom")
        target.function.name = opt_str(custom, "name", f"{param}.custom.name") or ""
        target.custom_input = opt_str(custom, "input", f"{param}.custom.input") or ""
        return
    function = _require_obj(call, "function", f"{param}.function")
    target.function.name = opt_str(function, "name", f"{param}.function.name") or ""
    arguments = function.get("arguments")
    if isinstance(arguments, dict):
        # Some OpenAI-compatible servers (Ollama among them) send the arguments as an object.
        arguments = orjson.dumps(arguments).decode()
    elif arguments is not None and not isinstance(arguments, str):
        raise invalid_type(f"{param}.function.arguments", "a string")
    target.function.arguments = arguments or ""


# --- encode -----------------------------------------------------------------------------------


def encode_message(message: chat_pb2.ChatMessage) -> JsonObject:
    out: JsonObject = {"role": None, "content": None}
    for field, value in message.ListFields():
        name = field.name
        if name == "text":
            out["content"] = value
        elif name == "role":
            out["role"] = _ROLE_NAMES.get(value)
        elif name in _MESSAGE_STRINGS:
            out[name] = value
        elif name == "parts":
            out["content"] = [_encode_part(part) for part in value.parts]
        elif name == "tool_calls":
            out[name] = [encode_tool_call(call) for call in value]
        elif name == "function_call":
            out[name] = {"name": value.name, "arguments": value.arguments}
        elif name == "audio":
            out[name] = struct_to_dict(value)
    if out["role"] is None:
        raise CodecError("Every message needs a role.", "messages", "missing_required_parameter")
    return out


def _encode_part(part: chat_pb2.ChatContentPart) -> JsonObject:
    kind = part.WhichOneof("part")
    if kind == "text":
        return {"type": "text", "text": part.text.text}
    if kind == "image_url":
        image: JsonObject = {"url": part.image_url.url}
        if part.image_url.HasField("detail"):
            image["detail"] = part.image_url.detail
        return {"type": "image_url", "image_url": image}
    if kind == "input_audio":
        return {
            "type": "input_audio",
            "input_audio": {"data": part.input_audio.data, "format": part.input_audio.format},
        }
    if kind == "file":
        file: JsonObject = {}
        for key in ("filename", "file_data", "file_id"):
            if part.file.HasField(key):
                file[key] = getattr(part.file, key)
        return {"type": "file", "file": file}
    if kind == "refusal":
        return {"type": "refusal", "refusal": part.refusal.refusal}
    raise CodecError("A message content part is empty.", "messages")


def encode_tool_call(call: chat_pb2.ToolCall) -> JsonObject:
    """A `tool_calls` item as OpenAI writes it: a function call, or a custom tool's input."""
    if call.type == "custom":
        return {
            "id": call.id,
            "type": "custom",
            "custom": {"name": call.function.name, "input": call.custom_input},
        }
    return {
        "id": call.id,
        "type": call.type or "function",
        "function": {"name": call.function.name, "arguments": call.function.arguments},
    }
