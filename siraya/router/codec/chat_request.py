"""OpenAI chat-completions request JSON <-> `ChatCompletionParams`: the request's top level.

`decode_chat_request` checks a client's body has the JSON shape the proto needs and names the
offending field in every error; the rules the proto itself can break (no messages, a role that is
no role, missing content) are `check_chat_params`'s, in siraya/router/codec/validate.py, which the
servicer applies to every request. `encode_chat_request` writes the body an OpenAI-compatible
upstream receives. The messages are read and written by chat_request_messages.py, the tools and
`response_format` by chat_request_tools.py; `cache_control` (cache_control.py) is decoded for the
Anthropic adapter and never written here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from siraya.router.codec.cache_control import decode_cache_control
from siraya.router.codec.chat_request_messages import decode_message, encode_message
from siraya.router.codec.chat_request_tools import (
    decode_function,
    decode_response_format,
    decode_tool,
    decode_tool_choice,
    encode_function,
    encode_response_format,
    encode_tool,
    encode_tool_choice,
)
from siraya.router.codec.errors import CodecError
from siraya.router.codec.fields import (
    JsonObject,
    fill_struct,
    fill_value,
    missing_parameter,
    opt_bool,
    opt_float,
    opt_int,
    opt_list,
    opt_object,
    opt_str,
    require_object,
    require_str,
    str_map,
    struct_to_dict,
    value_to_python,
)
from siraya.router.codec.routing import collect_extra_body, decode_routing, encode_extra_body, require_model
from siraya.router.codec.sampling_fields import (
    INT32_MAX,
    INT32_MIN,
    decode_logit_bias,
    decode_seed,
    decode_stop,
    decode_stream_options,
    int_in,
    invalid_type,
)
from siraya.router.v1 import chat_pb2

__all__ = ["decode_chat_request", "encode_chat_request"]

_FLOAT_PARAMS = ("temperature", "top_p", "presence_penalty", "frequency_penalty")
_INT32_PARAMS = ("n", "max_tokens", "max_completion_tokens", "top_logprobs")
_BOOL_PARAMS = ("logprobs", "parallel_tool_calls", "store")
_STRING_PARAMS = (
    "user",
    "reasoning_effort",
    "service_tier",
    "verbosity",
    "safety_identifier",
    "prompt_cache_key",
    "prompt_cache_retention",
)
_STRUCT_PARAMS = ("prediction", "web_search_options")
_KNOWN_KEYS = frozenset(
    {
        *_FLOAT_PARAMS,
        *_INT32_PARAMS,
        *_BOOL_PARAMS,
        *_STRING_PARAMS,
        *_STRUCT_PARAMS,
        "model",
        "messages",
        "stop",
        "logit_bias",
        "seed",
        "tools",
        "tool_choice",
        "response_format",
        "metadata",
        "modalities",
        "stream_options",
        "audio",
        "functions",
        "function_call",
        "stream",
        "cache_control",
    }
)
_RESERVED_STREAMING = frozenset({"model", "messages", "stream"})
# OpenAI rejects stream_options on a non-streaming request.
_RESERVED = _RESERVED_STREAMING | {"stream_options"}


# --- decode -----------------------------------------------------------------------------------


def decode_chat_request(body: JsonObject) -> chat_pb2.ChatCompletionParams:
    """Decode a client's `POST /v1/chat/completions` body (CreateChatCompletionRequest + routing)."""
    if not isinstance(body, dict):
        raise CodecError("The request body must be a JSON object.", None, "invalid_type")
    params = chat_pb2.ChatCompletionParams(model=require_model(body))
    messages = body.get("messages")
    if messages is None:
        raise missing_parameter("messages")
    if not isinstance(messages, list):
        raise invalid_type("messages", "an array")
    for index, raw in enumerate(messages):
        decode_message(raw, params.messages, index)

    # Most bodies set a handful of these: the `in` tests skip the rest without a call.
    for key in _FLOAT_PARAMS:
        if key in body and (number := opt_float(body, key)) is not None:
            setattr(params, key, number)
    for key in _INT32_PARAMS:
        if key in body and (integer := int_in(opt_int(body, key), INT32_MIN, INT32_MAX, key)) is not None:
            setattr(params, key, integer)
    for key in _BOOL_PARAMS:
        if key in body and (flag := opt_bool(body, key)) is not None:
            setattr(params, key, flag)
    for key in _STRING_PARAMS:
        if key in body and (text := opt_str(body, key)) is not None:
            setattr(params, key, text)
    for key in _STRUCT_PARAMS:
        if key in body and (struct := opt_object(body, key)) is not None:
            target = getattr(params, key)
            target.SetInParent()
            fill_struct(target, struct)

    decode_seed(body, params)
    stream = opt_bool(body, "stream")
    if stream is not None:
        params.stream = stream
    decode_stop(body.get("stop"), params)
    decode_logit_bias(body, params)
    params.metadata.update(str_map(body, "metadata"))
    modalities = opt_list(body, "modalities")
    if modalities:
        params.modalities.extend(_str_items(modalities, "modalities"))

    tools = opt_list(body, "tools")
    if tools:
        for index, tool in enumerate(tools):
            decode_tool(tool, params.tools.add(), f"tools[{index}]")
    tool_choice = body.get("tool_choice")
    if tool_choice is not None:
        decode_tool_choice(tool_choice, params.tool_choice)
    functions = opt_list(body, "functions")
    if functions:
        for index, function in enumerate(functions):
            param = f"functions[{index}]"
            decode_function(require_object(function, param), params.functions.add(), param)
    function_call = body.get("function_call")
    if function_call is not None:
        fill_value(params.function_call, function_call)

    decode_stream_options(body, params)

    # A shape the proto cannot hold travels untouched in extra_body instead (it overrides typed fields).
    known = _KNOWN_KEYS
    response_format = opt_object(body, "response_format")
    if response_format is not None and not decode_response_format(response_format, params.response_format):
        known = known - {"response_format"}
    audio = opt_object(body, "audio")
    if audio is not None and not _decode_audio(audio, params.audio):
        known = known - {"audio"}

    if "cache_control" in body:
        decode_cache_control(body, params.cache_control, "cache_control")

    decode_routing(body, params.routing)
    collect_extra_body(body, known, params.extra_body)
    return params


def _decode_audio(value: JsonObject, target: chat_pb2.AudioOutputParams) -> bool:
    """Fill `target`; False for a custom voice object ({"id": ...}), which goes to extra_body."""
    if isinstance(value.get("voice"), dict):
        return False
    target.voice = require_str(value, "voice", "audio.voice")
    target.format = require_str(value, "format", "audio.format")
    return True


def _str_items(values: list[Any], param: str) -> list[str]:
    for index, item in enumerate(values):
        if not isinstance(item, str):
            raise invalid_type(f"{param}[{index}]", "a string")
    return values


# --- encode -----------------------------------------------------------------------------------


def encode_chat_request(
    params: chat_pb2.ChatCompletionParams, upstream_model: str, stream: bool
) -> JsonObject:
    """Build the JSON body for an OpenAI-compatible upstream's `/chat/completions`.

    Only set fields are written. `routing` never leaves the gateway; `extra_body` keys are merged
    at the top level and may override typed fields, but never the model, messages or streaming.
    """
    body: JsonObject = {"model": upstream_model, "messages": []}
    # ListFields yields only the set fields, in one call: cheaper than a HasField per parameter.
    for field, value in params.ListFields():
        name = field.name
        if name == "messages":
            body["messages"] = [encode_message(message) for message in value]
        elif name in _AS_IS_PARAMS:
            body[name] = value
        elif (encoder := _PARAM_ENCODERS.get(name)) is not None:
            body[name] = encoder(value)
    body["stream"] = stream
    if stream and params.HasField("stream_options"):
        options = params.stream_options
        encoded: JsonObject = {}
        if options.HasField("include_usage"):
            encoded["include_usage"] = options.include_usage
        if options.HasField("include_obfuscation"):
            encoded["include_obfuscation"] = options.include_obfuscation
        body["stream_options"] = encoded
    encode_extra_body(params.extra_body, body, _RESERVED_STREAMING if stream else _RESERVED)
    return body


_AS_IS_PARAMS = frozenset({*_FLOAT_PARAMS, *_INT32_PARAMS, *_BOOL_PARAMS, *_STRING_PARAMS, "seed"})
# Every other parameter that goes upstream, with how it is written. `model`, `stream`,
# `stream_options`, `routing` and `extra_body` are handled apart.
_PARAM_ENCODERS: dict[str, Callable[[Any], Any]] = {
    "stop": list,
    "logit_bias": dict,
    "metadata": dict,
    "modalities": list,
    "tools": lambda tools: [encode_tool(tool) for tool in tools],
    "tool_choice": encode_tool_choice,
    "response_format": encode_response_format,
    "audio": lambda audio: {"voice": audio.voice, "format": audio.format},
    "prediction": struct_to_dict,
    "web_search_options": struct_to_dict,
    "functions": lambda functions: [encode_function(function) for function in functions],
    "function_call": value_to_python,
}
