"""OpenAI chat-completion stream chunks JSON <-> `ChatCompletionChunk`.

`decode_chat_chunk` reads one upstream SSE `data:` object; `encode_chat_chunk` writes one in
OpenAI's key order. Both run once per streamed token: a delta is walked, or listed, in one pass.
"""

from __future__ import annotations

from typing import Any

import orjson

from siraya.router.codec.chat_reply_parts import (
    BAD_SHAPE,
    as_object,
    choices_of,
    decode_logprobs,
    decode_usage,
    logprobs_dict,
    timestamp,
    usage_dict,
    wrong_type,
)
from siraya.router.codec.fields import JsonObject
from siraya.router.v1 import chat_pb2

__all__ = ["decode_chat_chunk", "encode_chat_chunk"]

_CHUNK_OPTIONAL = ("system_fingerprint", "service_tier", "obfuscation")
# String keys of a stream delta, and the proto field each one fills.
_DELTA_STRINGS = {
    "role": "role",
    "content": "content",
    "refusal": "refusal",
    "reasoning": "reasoning",
    "reasoning_content": "reasoning",
}


# --- decode -----------------------------------------------------------------------------------


def decode_chat_chunk(body: Any) -> chat_pb2.ChatCompletionChunk:
    """Decode one upstream SSE `data:` object (OpenAI's CreateChatCompletionStreamResponse)."""
    choices = choices_of(body, "chat completion chunk")
    try:
        chunk = chat_pb2.ChatCompletionChunk(
            id=body.get("id") or "",
            object=body.get("object") or "chat.completion.chunk",
            created=timestamp(body.get("created")),
            model=body.get("model") or "",
        )
        for key in _CHUNK_OPTIONAL:
            value = body.get(key)
            if value is not None:
                setattr(chunk, key, value)
    except BAD_SHAPE:
        raise wrong_type("chat completion chunk", "<root>") from None
    for position, raw in enumerate(choices):
        try:
            _decode_chunk_choice(raw, chunk.choices, position)
        except BAD_SHAPE:
            raise wrong_type("chat completion chunk", f"choices[{position}]") from None
    usage = body.get("usage")
    if usage is not None:
        decode_usage(usage, chunk.usage, "chat completion chunk")
    return chunk


def _decode_chunk_choice(raw: Any, choices: Any, position: int) -> None:
    raw = as_object(raw)
    index = raw.get("index")
    target = choices.add(index=position if index is None else index, finish_reason=raw.get("finish_reason"))
    logprobs = raw.get("logprobs")
    if logprobs is not None:
        decode_logprobs(logprobs, target.logprobs)
    delta = target.delta
    delta.SetInParent()
    raw_delta = raw.get("delta")
    if not raw_delta:
        return
    # A delta usually holds one key; walking it beats looking up each possible field.
    for key, value in as_object(raw_delta).items():
        if value is None:
            continue
        field = _DELTA_STRINGS.get(key)
        if field is not None:
            setattr(delta, field, value)
        elif key == "tool_calls":
            for call_position, call in enumerate(value):
                _decode_tool_call_delta(call, delta.tool_calls.add(), call_position)
        elif key == "function_call":
            value = as_object(value)
            _fill_function_delta(delta.function_call, value.get("name"), value.get("arguments"))


def _decode_tool_call_delta(raw: Any, target: chat_pb2.ToolCallDelta, position: int) -> None:
    raw = as_object(raw)
    index = raw.get("index")
    target.index = position if index is None else index
    call_id = raw.get("id")
    if call_id is not None:
        target.id = call_id
    kind = raw.get("type")
    if kind is not None:
        target.type = kind
    function = raw.get("function")
    if function is not None:
        function = as_object(function)
        _fill_function_delta(target.function, function.get("name"), function.get("arguments"))
        return
    # A custom tool's input streams as `custom.input`; it rides in `function.arguments`.
    custom = raw.get("custom")
    if custom is not None:
        custom = as_object(custom)
        _fill_function_delta(target.function, custom.get("name"), custom.get("input"))
        if kind is None:
            target.type = "custom"


def _fill_function_delta(target: chat_pb2.FunctionCallDelta, name: Any, arguments: Any) -> None:
    target.SetInParent()
    if name is not None:
        target.name = name
    if arguments is not None:
        target.arguments = arguments


# --- encode -----------------------------------------------------------------------------------


def encode_chat_chunk(chunk: chat_pb2.ChatCompletionChunk, include_usage_field: bool = False) -> bytes:
    """Encode one stream chunk as OpenAI's `data:` JSON.

    With `include_usage_field` (the client asked for `stream_options.include_usage`) every chunk
    carries `"usage": null` except the usage chunk, as OpenAI does; otherwise `usage` appears only
    when the chunk has it.
    """
    return orjson.dumps(_chunk_dict(chunk, include_usage_field))


def _chunk_dict(chunk: chat_pb2.ChatCompletionChunk, include_usage_field: bool) -> JsonObject:
    out: JsonObject = {
        "id": chunk.id,
        "object": "chat.completion.chunk",
        "created": chunk.created,
        "model": chunk.model,
    }
    if chunk.HasField("service_tier"):
        out["service_tier"] = chunk.service_tier
    if chunk.HasField("system_fingerprint"):
        out["system_fingerprint"] = chunk.system_fingerprint
    out["choices"] = [
        {
            "index": choice.index,
            "delta": _delta_dict(choice.delta),
            "logprobs": logprobs_dict(choice.logprobs) if choice.HasField("logprobs") else None,
            "finish_reason": choice.finish_reason if choice.HasField("finish_reason") else None,
        }
        for choice in chunk.choices
    ]
    if chunk.HasField("usage"):
        out["usage"] = usage_dict(chunk.usage)
    elif include_usage_field:
        out["usage"] = None
    if chunk.HasField("obfuscation"):
        out["obfuscation"] = chunk.obfuscation
    if chunk.HasField("provider"):
        out["provider"] = chunk.provider
    return out


def _delta_dict(delta: chat_pb2.ChatCompletionDelta) -> JsonObject:
    out: JsonObject = {}
    # One ListFields call instead of a HasField per field: this runs once per streamed token.
    for field, value in delta.ListFields():
        name = field.name
        if name == "tool_calls":
            out[name] = [_tool_call_delta_dict(call) for call in value]
        elif name == "function_call":
            out[name] = _function_delta_dict(value, "arguments")
        else:
            out[name] = value
    return out


def _tool_call_delta_dict(call: chat_pb2.ToolCallDelta) -> JsonObject:
    out: JsonObject = {"index": call.index}
    if call.HasField("id"):
        out["id"] = call.id
    if call.HasField("type"):
        out["type"] = call.type
    if call.HasField("function"):
        if call.type == "custom":
            out["custom"] = _function_delta_dict(call.function, "input")
        else:
            out["function"] = _function_delta_dict(call.function, "arguments")
    return out


def _function_delta_dict(function: chat_pb2.FunctionCallDelta, arguments_key: str) -> JsonObject:
    out: JsonObject = {}
    if function.HasField("name"):
        out["name"] = function.name
    if function.HasField("arguments"):
        out[arguments_key] = function.arguments
    return out
