"""OpenAI chat-completions request JSON <-> `ChatCompletionParams`.

`decode_chat_request` checks a client's body has the JSON shape the proto needs and names the
offending field in every error; the rules the proto itself can break (no messages, a role that is
no role, missing content) are `check_chat_params`'s, in siraya/router/codec/validate.py, which the
servicer applies to every request. `encode_chat_request` writes the body an OpenAI-compatible
upstream receives. `cache_control` (OpenRouter / LiteLLM prompt-cache breakpoints on the request,
messages, parts and tools) is decoded for the Anthropic adapter and never written here: strict
OpenAI-compatible servers answer 400 to it, and dropping it changes only what the request costs.
Message readers format their error paths only when a field fails, since a long conversation has
hundreds of fields.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from siraya.router.codec.errors import CodecError
from siraya.router.codec.fields import (
    JsonObject,
    fill_struct,
    fill_value,
    opt_bool,
    opt_float,
    opt_int,
    opt_list,
    opt_object,
    opt_str,
    require_list,
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
from siraya.router.codec.validate import NOT_A_ROLE
from siraya.router.v1 import chat_pb2, common_pb2

__all__ = ["decode_chat_request", "decode_tool_call", "encode_chat_request", "encode_tool_call"]

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
_RESPONSE_FORMATS = frozenset({"text", "json_object", "json_schema"})
_RESERVED_STREAMING = frozenset({"model", "messages", "stream"})
# OpenAI rejects stream_options on a non-streaming request.
_RESERVED = _RESERVED_STREAMING | {"stream_options"}


def _missing(param: str) -> CodecError:
    return CodecError(f"Missing required parameter: '{param}'.", param, "missing_required_parameter")


def _require_obj(container: JsonObject, key: str, param: str) -> JsonObject:
    value = container.get(key)
    if value is None:
        raise _missing(param)
    return require_object(value, param)


# --- decode -----------------------------------------------------------------------------------


def decode_chat_request(body: JsonObject) -> chat_pb2.ChatCompletionParams:
    """Decode a client's `POST /v1/chat/completions` body (CreateChatCompletionRequest + routing)."""
    if not isinstance(body, dict):
        raise CodecError("The request body must be a JSON object.", None, "invalid_type")
    params = chat_pb2.ChatCompletionParams(model=require_model(body))
    messages = body.get("messages")
    if messages is None:
        raise _missing("messages")
    if not isinstance(messages, list):
        raise invalid_type("messages", "an array")
    for index, raw in enumerate(messages):
        _decode_message(raw, params.messages, index)

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
            _decode_tool(tool, params.tools.add(), f"tools[{index}]")
    tool_choice = body.get("tool_choice")
    if tool_choice is not None:
        _decode_tool_choice(tool_choice, params.tool_choice)
    functions = opt_list(body, "functions")
    if functions:
        for index, function in enumerate(functions):
            param = f"functions[{index}]"
            _decode_function(require_object(function, param), params.functions.add(), param)
    function_call = body.get("function_call")
    if function_call is not None:
        fill_value(params.function_call, function_call)

    decode_stream_options(body, params)

    # A shape the proto cannot hold travels untouched in extra_body instead (it overrides typed fields).
    known = _KNOWN_KEYS
    response_format = opt_object(body, "response_format")
    if response_format is not None and not _decode_response_format(response_format, params.response_format):
        known = known - {"response_format"}
    audio = opt_object(body, "audio")
    if audio is not None and not _decode_audio(audio, params.audio):
        known = known - {"audio"}

    if "cache_control" in body:
        _decode_cache_control(body, params.cache_control, "cache_control")

    decode_routing(body, params.routing)
    collect_extra_body(body, known, params.extra_body)
    return params


def _decode_cache_control(container: JsonObject, target: common_pb2.CacheControl, param: str) -> None:
    """`cache_control` as Anthropic defines it ({"type": "ephemeral", "ttl": "5m" | "1h"}), where
    OpenRouter and LiteLLM accept it: on the request, a message, a content part or a tool."""
    raw = opt_object(container, "cache_control", param)
    if raw is None:
        return
    target.type = require_str(raw, "type", f"{param}.type")
    ttl = opt_str(raw, "ttl", f"{param}.ttl")
    if ttl is not None:
        target.ttl = ttl


def _decode_message(raw: Any, messages: Any, index: int) -> None:
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
        _decode_cache_control(raw, message.cache_control, f"messages[{index}].cache_control")


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
        _decode_cache_control(raw, target.cache_control, f"{param}.cache_control")


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


def _decode_function(function: JsonObject, target: chat_pb2.FunctionDefinition, param: str) -> None:
    target.name = require_str(function, "name", f"{param}.name")
    description = opt_str(function, "description", f"{param}.description")
    if description is not None:
        target.description = description
    parameters = function.get("parameters")
    if parameters is not None:
        # Kept as JSON text so the schema's key order reaches the upstream as the client wrote it
        # (the check refuses one that is not an object).
        target.parameters_json = orjson.dumps(parameters)
    strict = opt_bool(function, "strict", f"{param}.strict")
    if strict is not None:
        target.strict = strict


def _decode_tool(raw: Any, target: chat_pb2.ChatTool, param: str) -> None:
    tool = require_object(raw, param)
    kind = opt_str(tool, "type", f"{param}.type") or "function"
    # An unknown type, or a missing `function` / `custom`, is left for the check to refuse.
    target.type = kind
    if kind == "function":
        function = opt_object(tool, "function", f"{param}.function")
        if function is not None:
            _decode_function(function, target.function, f"{param}.function")
    elif kind == "custom":
        custom = opt_object(tool, "custom", f"{param}.custom")
        if custom is not None:
            target.custom.SetInParent()
            fill_struct(target.custom, custom)
    if "cache_control" in tool:
        _decode_cache_control(tool, target.cache_control, f"{param}.cache_control")


def _decode_tool_choice(value: Any, target: chat_pb2.ToolChoice) -> None:
    if isinstance(value, str):
        target.mode = value
        return
    if not isinstance(value, dict):
        raise invalid_type("tool_choice", "a string or an object")
    kind = value.get("type")
    named = value.get(kind) if kind in ("function", "custom") and len(value) == 2 else None
    name = named.get("name") if isinstance(named, dict) and len(named) == 1 else None
    if isinstance(kind, str) and isinstance(name, str):
        target.named.type = kind
        target.named.name = name
    else:
        # allowed_tools, or a shape only some provider knows: forwarded as written.
        target.other.SetInParent()
        fill_struct(target.other, value)


def _decode_response_format(value: JsonObject, target: chat_pb2.ResponseFormat) -> bool:
    """Fill `target`; False when the type is not one the proto models (it goes to extra_body)."""
    kind = require_str(value, "type", "response_format.type")
    if kind not in _RESPONSE_FORMATS:
        return False
    target.type = kind
    if kind == "json_schema":
        schema = opt_object(value, "json_schema", "response_format.json_schema")
        if schema is None:
            return True
        target.json_schema.name = require_str(schema, "name", "response_format.json_schema.name")
        description = opt_str(schema, "description", "response_format.json_schema.description")
        if description is not None:
            target.json_schema.description = description
        body = schema.get("schema")
        if body is not None:
            target.json_schema.schema_json = orjson.dumps(body)
        strict = opt_bool(schema, "strict", "response_format.json_schema.strict")
        if strict is not None:
            target.json_schema.strict = strict
    return True


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
            body["messages"] = [_encode_message(message) for message in value]
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


def _encode_message(message: chat_pb2.ChatMessage) -> JsonObject:
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


def _encode_function(function: chat_pb2.FunctionDefinition) -> JsonObject:
    out: JsonObject = {"name": function.name}
    if function.HasField("description"):
        out["description"] = function.description
    if function.HasField("parameters_json"):
        out["parameters"] = orjson.loads(function.parameters_json)
    if function.HasField("strict"):
        out["strict"] = function.strict
    return out


def _encode_tool(tool: chat_pb2.ChatTool) -> JsonObject:
    if tool.type == "custom":
        return {"type": "custom", "custom": struct_to_dict(tool.custom)}
    return {"type": "function", "function": _encode_function(tool.function)}


def _encode_tool_choice(choice: chat_pb2.ToolChoice) -> str | JsonObject:
    kind = choice.WhichOneof("choice")
    if kind == "mode":
        return choice.mode
    if kind == "named":
        return {"type": choice.named.type, choice.named.type: {"name": choice.named.name}}
    return struct_to_dict(choice.other)


def _encode_response_format(response_format: chat_pb2.ResponseFormat) -> JsonObject:
    out: JsonObject = {"type": response_format.type}
    if response_format.HasField("json_schema"):
        schema = response_format.json_schema
        encoded: JsonObject = {"name": schema.name}
        if schema.HasField("description"):
            encoded["description"] = schema.description
        if schema.HasField("schema_json"):
            encoded["schema"] = orjson.loads(schema.schema_json)
        if schema.HasField("strict"):
            encoded["strict"] = schema.strict
        out["json_schema"] = encoded
    return out


_AS_IS_PARAMS = frozenset({*_FLOAT_PARAMS, *_INT32_PARAMS, *_BOOL_PARAMS, *_STRING_PARAMS, "seed"})
# Every other parameter that goes upstream, with how it is written. `model`, `stream`,
# `stream_options`, `routing` and `extra_body` are handled apart.
_PARAM_ENCODERS: dict[str, Callable[[Any], Any]] = {
    "stop": list,
    "logit_bias": dict,
    "metadata": dict,
    "modalities": list,
    "tools": lambda tools: [_encode_tool(tool) for tool in tools],
    "tool_choice": _encode_tool_choice,
    "response_format": _encode_response_format,
    "audio": lambda audio: {"voice": audio.voice, "format": audio.format},
    "prediction": struct_to_dict,
    "web_search_options": struct_to_dict,
    "functions": lambda functions: [_encode_function(function) for function in functions],
    "function_call": value_to_python,
}
