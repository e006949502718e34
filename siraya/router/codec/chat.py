"""OpenAI chat completions JSON <-> `ChatCompletion`, and the chat codec's public names.

Upstream replies are decoded tolerantly (missing or null optional fields are simply unset) but
strictly about the essentials: an object with a `choices` array, and a `message` in every choice.
Scalars are passed straight to the proto constructors, which type-check them in C; a wrong type
becomes a `CodecError` naming the choice (the caller answers 502). Protos are encoded in OpenAI's
key order. An OpenAI-compatible upstream's answer to a JSON client never takes this way: the relay
lane (`server/providers/openai_relay.py`) passes it on as the upstream wrote it.

The request codec (chat_request.py), stream chunks (chat_chunk.py) and the usage object
(chat_reply_parts.py) live in their own modules; their public functions are named here too, so the
chat codec is one import for its callers.
"""

from __future__ import annotations

from typing import Any

import orjson

from siraya.router.codec.chat_chunk import decode_chat_chunk, encode_chat_chunk
from siraya.router.codec.chat_reply_parts import (
    BAD_SHAPE,
    as_object,
    choices_of,
    decode_logprobs,
    decode_usage,
    logprobs_dict,
    timestamp,
    usage_dict,
    usage_object,
    wrong_type,
)
from siraya.router.codec.chat_request import decode_chat_request, encode_chat_request
from siraya.router.codec.chat_request_messages import decode_tool_call, encode_tool_call
from siraya.router.codec.errors import CodecError
from siraya.router.codec.fields import JsonObject, fill_struct, struct_to_dict
from siraya.router.v1 import chat_pb2

__all__ = [
    "decode_chat_chunk",
    "decode_chat_completion",
    "decode_chat_request",
    "encode_chat_chunk",
    "encode_chat_completion",
    "encode_chat_request",
    "usage_object",
]


# --- decode -----------------------------------------------------------------------------------


def decode_chat_completion(body: Any) -> chat_pb2.ChatCompletion:
    """Decode an upstream's `chat.completion` body (OpenAI's CreateChatCompletionResponse)."""
    choices = choices_of(body, "chat completion")
    try:
        completion = chat_pb2.ChatCompletion(
            id=body.get("id") or "",
            object=body.get("object") or "chat.completion",
            created=timestamp(body.get("created")),
            model=body.get("model") or "",
            system_fingerprint=body.get("system_fingerprint"),
            service_tier=body.get("service_tier"),
        )
    except BAD_SHAPE:
        raise wrong_type("chat completion", "<root>") from None
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
                decode_logprobs(logprobs, choice.logprobs)
        except CodecError:
            raise
        except BAD_SHAPE:
            raise wrong_type("chat completion", param) from None
    usage = body.get("usage")
    if usage is not None:
        decode_usage(usage, completion.usage, "chat completion")
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
            fill_struct(target.annotations.add(), as_object(annotation))
    audio = raw.get("audio")
    if audio is not None:
        target.audio.SetInParent()
        fill_struct(target.audio, as_object(audio))
    function_call = raw.get("function_call")
    if function_call is not None:
        as_object(function_call)
        target.function_call.SetInParent()
        target.function_call.name = function_call.get("name") or ""
        target.function_call.arguments = function_call.get("arguments") or ""


def _text_of_parts(parts: list[Any]) -> str:
    return "".join(
        part.get("text") or "" for part in parts if isinstance(part, dict) and part.get("type") == "text"
    )


# --- encode -----------------------------------------------------------------------------------


def encode_chat_completion(completion: chat_pb2.ChatCompletion) -> bytes:
    """Encode a completion as the JSON bytes OpenAI would send, key order included."""
    return orjson.dumps(_completion_dict(completion))


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
                "logprobs": logprobs_dict(choice.logprobs) if choice.HasField("logprobs") else None,
                "finish_reason": choice.finish_reason or None,
            }
            for choice in completion.choices
        ],
    }
    if completion.HasField("usage"):
        out["usage"] = usage_dict(completion.usage)
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
