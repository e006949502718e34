"""OpenAI chat-completions JSON <-> protobuf: completions and stream chunks, plus the request codec.

Upstream replies are decoded tolerantly (missing or null optional fields are simply unset) but
strictly about the essentials: an object with a `choices` array, and a `message` in every choice.
Scalars are passed straight to the proto constructors, which type-check them in C; a wrong type
becomes a `CodecError` naming the choice (the caller answers 502). Protos are encoded in OpenAI's
key order. An OpenAI-compatible upstream's answer to a JSON client never takes this way: the relay
lane (`server/providers/openai_relay.py`) passes it on as the upstream wrote it.
"""

from __future__ import annotations

from typing import Any

import orjson

from siraya.router.codec.chat_request import (
    decode_chat_request,
    decode_tool_call,
    encode_chat_request,
    encode_tool_call,
)
from siraya.router.codec.errors import CodecError
from siraya.router.codec.fields import JsonObject, fill_struct, struct_to_dict
from siraya.router.v1 import chat_pb2, common_pb2

__all__ = [
    "decode_chat_chunk",
    "decode_chat_completion",
    "decode_chat_request",
    "encode_chat_chunk",
    "encode_chat_completion",
    "encode_chat_request",
    "usage_object",
]

_BAD_SHAPE = (TypeError, ValueError)
_CHUNK_OPTIONAL = ("system_fingerprint", "service_tier", "obfuscation")
# String keys of a stream delta, and the proto field each one fills.
_DELTA_STRINGS = {
    "role": "role",
    "content": "content",
    "refusal": "refusal",
    "reasoning": "reasoning",
    "reasoning_content": "reasoning",
}


def _timestamp(value: Any) -> Any:
    # A few servers write `created` as a float; the proto (and OpenAI) use whole seconds.
    return int(value) if type(value) is float else value


def _choices_of(body: Any, what: str) -> list[Any]:
    if not isinstance(body, dict):
        raise CodecError(f"Invalid {what}: expected a JSON object.", None, "invalid_type")
    choices = body.get("choices")
    if not isinstance(choices, list):
        raise CodecError(f"Invalid {what}: 'choices' must be an array.", "choices", "invalid_type")
    return choices


def _object(value: Any) -> JsonObject:
    # TypeError is the internal signal for "wrong shape"; the decoders turn it into a CodecError.
    if not isinstance(value, dict):
        raise TypeError("expected an object")
    return value


def _wrong_type(what: str, param: str) -> CodecError:
    return CodecError(f"Invalid {what}: a field of '{param}' has the wrong type.", param, "invalid_type")


# --- decode -----------------------------------------------------------------------------------


def decode_chat_completion(body: Any) -> chat_pb2.ChatCompletion:
    """Decode an upstream's `chat.completion` body (OpenAI's CreateChatCompletionResponse)."""
    choices = _choices_of(body, "chat completion")
    try:
        completion = chat_pb2.ChatCompletion(
            id=body.get("id") or "",
            object=body.get("object") or "chat.completion",
            created=_timestamp(body.get("created")),
            model=body.get("model") or "",
            system_fingerprint=body.get("system_fingerprint"),
            service_tier=body.get("service_tier"),
        )
    except _BAD_SHAPE:
        raise _wrong_type("chat completion", "<root>") from None
    for position, raw in enumerate(choices):
        param = f"choices[{position}]"
        if not isinstance(raw, dict):
            raise CodecError(f"Invalid chat completion: '{param}' must be an object.", param, "invalid_type")
        message = raw.get("message")
        if not isinstance(message, dict):
            raise CodecError(
                f"Invalid chat completion: '{param}.message' must be an object.",
                f"{param}.message",
                "invalid_type",
            )
        try:
            index = raw.get("index")
            choice = completion.choices.add(
                index=position if index is None else index, finish_reason=raw.get("finish_reason") or ""
            )
            _decode_response_message(message, choice.message, param)
            logprobs = raw.get("logprobs")
            if logprobs is not None:
                _decode_logprobs(logprobs, choice.logprobs)
        except CodecError:
            raise
        except _BAD_SHAPE:
            raise _wrong_type("chat completion", param) from None
    usage = body.get("usage")
    if usage is not None:
        _decode_usage(usage, completion.usage, "chat completion")
    return completion


def _decode_response_message(raw: JsonObject, target: chat_pb2.ChatCompletionMessage, param: str) -> None:
    target.role = raw.get("role") or "assistant"
    content = raw.get("content")
    if content is not None:
        # Mistral's reasoning models send content as parts; the text parts are the answer.
        target.content = content if type(content) is not list else _text_of_parts(content)
    refusal = raw.get("refusal")
    if refusal is not None:
        target.refusal = refusal
    reasoning = raw.get("reasoning")
    if reasoning is None:
        reasoning = raw.get("reasoning_content")
    if reasoning is not None:
        target.reasoning = reasoning
    tool_calls = raw.get("tool_calls")
    if tool_calls:
        for position, call in enumerate(tool_calls):
            decode_tool_call(call, target.tool_calls.add(), f"{param}.message.tool_calls[{position}]")
    annotations = raw.get("annotations")
    if annotations:
        for annotation in annotations:
            fill_struct(target.annotations.add(), _object(annotation))
    audio = raw.get("audio")
    if audio is not None:
        target.audio.SetInParent()
        fill_struct(target.audio, _object(audio))
    function_call = raw.get("function_call")
    if function_call is not None:
        _object(function_call)
        target.function_call.SetInParent()
        target.function_call.name = function_call.get("name") or ""
        target.function_call.arguments = function_call.get("arguments") or ""


def _text_of_parts(parts: list[Any]) -> str:
    return "".join(
        part.get("text") or "" for part in parts if isinstance(part, dict) and part.get("type") == "text"
    )


def _decode_logprobs(raw: Any, target: chat_pb2.ChoiceLogprobs) -> None:
    raw = _object(raw)
    target.SetInParent()
    content = raw.get("content")
    if content:
        _decode_token_logprobs(content, target.content)
    refusal = raw.get("refusal")
    if refusal:
        _decode_token_logprobs(refusal, target.refusal)


def _decode_token_logprobs(items: list[Any], target: Any) -> None:
    for item in items:
        item = _object(item)
        raw_bytes = item.get("bytes")
        entry = target.add(
            token=item.get("token"),
            logprob=item.get("logprob"),
            bytes=raw_bytes,
            has_bytes=raw_bytes is not None,
        )
        top_logprobs = item.get("top_logprobs")
        if top_logprobs:
            add_top = entry.top_logprobs.add
            for top in top_logprobs:
                top = _object(top)
                top_bytes = top.get("bytes")
                add_top(
                    token=top.get("token"),
                    logprob=top.get("logprob"),
                    bytes=top_bytes,
                    has_bytes=top_bytes is not None,
                )


# (JSON key, proto field) of the usage details; the proto fields are optional, so absent stays absent.
_PROMPT_DETAILS = (
    ("cached_tokens", "cached_tokens"),
    ("audio_tokens", "audio_tokens"),
    ("cache_write_tokens", "cache_creation_tokens"),
)
_COMPLETION_DETAILS = (
    ("reasoning_tokens", "reasoning_tokens"),
    ("audio_tokens", "audio_tokens"),
    ("accepted_prediction_tokens", "accepted_prediction_tokens"),
    ("rejected_prediction_tokens", "rejected_prediction_tokens"),
)


def _copy_counts(raw: dict[str, Any], target: Any, fields: tuple[tuple[str, str], ...]) -> None:
    target.SetInParent()
    for key, field in fields:
        value = raw.get(key)
        if value is not None:
            setattr(target, field, value)


def _decode_usage(raw: Any, target: common_pb2.Usage, what: str) -> None:
    if not isinstance(raw, dict):
        raise CodecError(f"Invalid {what}: 'usage' must be an object.", "usage", "invalid_type")
    try:
        target.prompt_tokens = raw.get("prompt_tokens") or 0
        target.completion_tokens = raw.get("completion_tokens") or 0
        target.total_tokens = raw.get("total_tokens") or 0
        prompt = raw.get("prompt_tokens_details")
        if prompt is not None:
            _copy_counts(_object(prompt), target.prompt_tokens_details, _PROMPT_DETAILS)
        completion = raw.get("completion_tokens_details")
        if completion is not None:
            _copy_counts(_object(completion), target.completion_tokens_details, _COMPLETION_DETAILS)
    except _BAD_SHAPE:
        raise _wrong_type(what, "usage") from None


def decode_chat_chunk(body: Any) -> chat_pb2.ChatCompletionChunk:
    """Decode one upstream SSE `data:` object (OpenAI's CreateChatCompletionStreamResponse)."""
    choices = _choices_of(body, "chat completion chunk")
    try:
        chunk = chat_pb2.ChatCompletionChunk(
            id=body.get("id") or "",
            object=body.get("object") or "chat.completion.chunk",
            created=_timestamp(body.get("created")),
            model=body.get("model") or "",
        )
        for key in _CHUNK_OPTIONAL:
            value = body.get(key)
            if value is not None:
                setattr(chunk, key, value)
    except _BAD_SHAPE:
        raise _wrong_type("chat completion chunk", "<root>") from None
    for position, raw in enumerate(choices):
        try:
            _decode_chunk_choice(raw, chunk.choices, position)
        except _BAD_SHAPE:
            raise _wrong_type("chat completion chunk", f"choices[{position}]") from None
    usage = body.get("usage")
    if usage is not None:
        _decode_usage(usage, chunk.usage, "chat completion chunk")
    return chunk


def _decode_chunk_choice(raw: Any, choices: Any, position: int) -> None:
    raw = _object(raw)
    index = raw.get("index")
    target = choices.add(index=position if index is None else index, finish_reason=raw.get("finish_reason"))
    logprobs = raw.get("logprobs")
    if logprobs is not None:
        _decode_logprobs(logprobs, target.logprobs)
    delta = target.delta
    delta.SetInParent()
    raw_delta = raw.get("delta")
    if not raw_delta:
        return
    # A delta usually holds one key; walking it beats looking up each possible field.
    for key, value in _object(raw_delta).items():
        if value is None:
            continue
        field = _DELTA_STRINGS.get(key)
        if field is not None:
            setattr(delta, field, value)
        elif key == "tool_calls":
            for call_position, call in enumerate(value):
                _decode_tool_call_delta(call, delta.tool_calls.add(), call_position)
        elif key == "function_call":
            value = _object(value)
            _fill_function_delta(delta.function_call, value.get("name"), value.get("arguments"))


def _decode_tool_call_delta(raw: Any, target: chat_pb2.ToolCallDelta, position: int) -> None:
    raw = _object(raw)
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
        function = _object(function)
        _fill_function_delta(target.function, function.get("name"), function.get("arguments"))
        return
    # A custom tool's input streams as `custom.input`; it rides in `function.arguments`.
    custom = raw.get("custom")
    if custom is not None:
        custom = _object(custom)
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


def encode_chat_completion(completion: chat_pb2.ChatCompletion) -> bytes:
    """Encode a completion as the JSON bytes OpenAI would send, key order included."""
    return orjson.dumps(_completion_dict(completion))


def encode_chat_chunk(chunk: chat_pb2.ChatCompletionChunk, include_usage_field: bool = False) -> bytes:
    """Encode one stream chunk as OpenAI's `data:` JSON.

    With `include_usage_field` (the client asked for `stream_options.include_usage`) every chunk
    carries `"usage": null` except the usage chunk, as OpenAI does; otherwise `usage` appears only
    when the chunk has it.
    """
    return orjson.dumps(_chunk_dict(chunk, include_usage_field))


def usage_object(usage: common_pb2.Usage) -> JsonObject:
    """OpenAI's CompletionUsage object, as a chat completion carries it (legacy completions share it)."""
    return _usage_dict(usage)


def _completion_dict(completion: chat_pb2.ChatCompletion) -> JsonObject:
    out: JsonObject = {
        "id": completion.id,
        "object": "chat.completion",
        "created": completion.created,
        "model": completion.model,
        "choices": [
            {
                "index": choice.index,
                "message": _message_dict(choice.message),
                "logprobs": _logprobs_dict(choice.logprobs) if choice.HasField("logprobs") else None,
                "finish_reason": choice.finish_reason or None,
            }
            for choice in completion.choices
        ],
    }
    if completion.HasField("usage"):
        out["usage"] = _usage_dict(completion.usage)
    if completion.HasField("service_tier"):
        out["service_tier"] = completion.service_tier
    # The spec types it as a string: omitted when unset (as OpenAI does), never null.
    if completion.HasField("system_fingerprint"):
        out["system_fingerprint"] = completion.system_fingerprint
    if completion.HasField("provider"):
        out["provider"] = completion.provider
    return out


def _message_dict(message: chat_pb2.ChatCompletionMessage) -> JsonObject:
    # OpenAI writes tool calls between content and refusal.
    out: JsonObject = {
        "role": message.role or "assistant",
        "content": message.content if message.HasField("content") else None,
    }
    if message.tool_calls:
        out["tool_calls"] = [encode_tool_call(call) for call in message.tool_calls]
    if message.HasField("function_call"):
        out["function_call"] = {
            "name": message.function_call.name,
            "arguments": message.function_call.arguments,
        }
    out["refusal"] = message.refusal if message.HasField("refusal") else None
    if message.HasField("audio"):
        out["audio"] = struct_to_dict(message.audio)
    if message.HasField("reasoning"):
        out["reasoning"] = message.reasoning
    if message.annotations:
        out["annotations"] = [struct_to_dict(annotation) for annotation in message.annotations]
    return out


def _logprobs_dict(logprobs: chat_pb2.ChoiceLogprobs) -> JsonObject:
    # The proto cannot tell an empty list from null; OpenAI writes null for the side not taken.
    return {
        "content": _token_logprob_dicts(logprobs.content) if logprobs.content else None,
        "refusal": _token_logprob_dicts(logprobs.refusal) if logprobs.refusal else None,
    }


def _token_logprob_dicts(tokens: Any) -> list[JsonObject]:
    return [
        {
            "token": token.token,
            "logprob": token.logprob,
            "bytes": list(token.bytes) if token.has_bytes else None,
            "top_logprobs": [
                {
                    "token": top.token,
                    "logprob": top.logprob,
                    "bytes": list(top.bytes) if top.has_bytes else None,
                }
                for top in token.top_logprobs
            ],
        }
        for token in tokens
    ]


def _usage_dict(usage: common_pb2.Usage) -> JsonObject:
    out: JsonObject = {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
    }
    if usage.HasField("prompt_tokens_details"):
        prompt = usage.prompt_tokens_details
        prompt_details: JsonObject = {
            "cached_tokens": prompt.cached_tokens,
            "audio_tokens": prompt.audio_tokens,
        }
        if prompt.HasField("cache_creation_tokens"):
            prompt_details["cache_write_tokens"] = prompt.cache_creation_tokens
        out["prompt_tokens_details"] = prompt_details
    if usage.HasField("completion_tokens_details"):
        completion = usage.completion_tokens_details
        out["completion_tokens_details"] = {
            "reasoning_tokens": completion.reasoning_tokens,
            "audio_tokens": completion.audio_tokens,
            "accepted_prediction_tokens": completion.accepted_prediction_tokens,
            "rejected_prediction_tokens": completion.rejected_prediction_tokens,
        }
    if usage.HasField("cost"):
        out["cost"] = usage.cost
    return out


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
            "logprobs": _logprobs_dict(choice.logprobs) if choice.HasField("logprobs") else None,
            "finish_reason": choice.finish_reason if choice.HasField("finish_reason") else None,
        }
        for choice in chunk.choices
    ]
    if chunk.HasField("usage"):
        out["usage"] = _usage_dict(chunk.usage)
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
