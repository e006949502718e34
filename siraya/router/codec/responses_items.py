"""Responses API items, content parts, tools and text settings <-> protobuf.

Shared by the request codec (client `input`, `tools`) and the response codec (upstream `output`).
A known item or part type is decoded into typed fields; when it also carries keys the proto does
not model (`phase`, a reasoning item's `content`, ...), the whole JSON object is kept in `raw` as
well and is what gets encoded, so an upstream's item reaches the client unchanged. Types the
gateway does not model at all (hosted tool calls, `item_reference`, ...) live in `raw` alone.
"""

from __future__ import annotations

from typing import Any

import orjson

from siraya.router.codec.errors import CodecError
from siraya.router.codec.fields import JsonObject, list_to_python, struct_to_dict
from siraya.router.v1 import responses_pb2

__all__ = [
    "decode_item",
    "decode_part",
    "decode_reasoning_config",
    "decode_text_config",
    "decode_tool",
    "decode_tool_choice",
    "encode_item",
    "encode_part",
    "encode_reasoning_echo",
    "encode_text_config",
    "encode_text_echo",
    "encode_tool",
    "encode_tool_choice",
    "encode_tool_echo",
    "invalid_type",
    "missing",
]

_MESSAGE_ROLES = frozenset({"user", "assistant", "system", "developer"})
_MESSAGE_KEYS = frozenset({"type", "id", "status", "role", "content"})
_FUNCTION_CALL_KEYS = frozenset({"type", "id", "status", "call_id", "name", "arguments"})
_FUNCTION_OUTPUT_KEYS = frozenset({"type", "id", "status", "call_id", "output"})
_REASONING_KEYS = frozenset({"type", "id", "status", "summary", "encrypted_content"})
_FUNCTION_TOOL_KEYS = frozenset({"type", "name", "description", "parameters", "strict"})
_TEXT_KEYS = frozenset({"format", "verbosity"})
_FORMAT_KEYS = frozenset({"type", "name", "description", "schema", "strict"})
_FORMAT_TYPES = frozenset({"text", "json_object", "json_schema"})
_REASONING_CONFIG_KEYS = frozenset({"effort", "summary"})
# Part types that are just {"type", "text"}.
_TEXT_PARTS = frozenset({"input_text", "summary_text", "reasoning_text"})
_PART_KEYS: dict[str, frozenset[str]] = {
    "input_text": frozenset({"type", "text"}),
    "summary_text": frozenset({"type", "text"}),
    "reasoning_text": frozenset({"type", "text"}),
    "output_text": frozenset({"type", "text", "annotations", "logprobs"}),
    "refusal": frozenset({"type", "refusal"}),
    "input_image": frozenset({"type", "image_url", "file_id", "detail"}),
    "input_file": frozenset({"type", "file_id", "file_data", "filename", "file_url"}),
}
_IMAGE_FIELDS = ("image_url", "file_id", "detail")
_FILE_FIELDS = ("file_id", "file_data", "filename", "file_url")


def invalid_type(param: str, expected: str) -> CodecError:
    return CodecError(f"Invalid type for '{param}': expected {expected}.", param, "invalid_type")


def missing(param: str) -> CodecError:
    return CodecError(f"Missing required parameter: '{param}'.", param, "missing_required_parameter")


def _str(raw: JsonObject, key: str, param: str, *, required: bool = False) -> str | None:
    value = raw.get(key)
    if type(value) is str:
        return value
    if value is None:
        if required:
            raise missing(f"{param}.{key}")
        return None
    raise invalid_type(f"{param}.{key}", "a string")


def _keep_raw(target: Any, raw: JsonObject) -> None:
    target.raw.update(raw)


# --- items ------------------------------------------------------------------------------------


def decode_item(raw: Any, item: responses_pb2.ResponseItem, param: str) -> None:
    """Fill `item` from one input or output item; `param` (e.g. `input[2]`) prefixes error paths."""
    if not isinstance(raw, dict):
        raise invalid_type(param, "an object")
    kind = raw.get("type")
    if kind is None:
        if "role" in raw:
            kind = "message"  # EasyInputMessage
        elif "id" in raw:
            item.type = "item_reference"
            _keep_raw(item, raw)
            return
        else:
            raise missing(f"{param}.type")
    elif type(kind) is not str:
        raise invalid_type(f"{param}.type", "a string")
    item.type = kind
    if kind == "message":
        _decode_message(raw, item, param)
        known = _MESSAGE_KEYS
    elif kind == "function_call":
        _decode_function_call(raw, item, param)
        known = _FUNCTION_CALL_KEYS
    elif kind == "function_call_output":
        if not _decode_function_output(raw, item, param):
            _keep_raw(item, raw)
            return
        known = _FUNCTION_OUTPUT_KEYS
    elif kind == "reasoning":
        _decode_reasoning(raw, item, param)
        known = _REASONING_KEYS
    else:
        _keep_raw(item, raw)
        return
    if not known.issuperset(raw):
        _keep_raw(item, raw)


def _decode_common(raw: JsonObject, item: responses_pb2.ResponseItem, param: str) -> None:
    item_id = _str(raw, "id", param)
    if item_id is not None:
        item.id = item_id
    status = _str(raw, "status", param)
    if status is not None:
        item.status = status


def _decode_message(raw: JsonObject, item: responses_pb2.ResponseItem, param: str) -> None:
    role = raw.get("role")
    if role is None:
        raise missing(f"{param}.role")
    if role not in _MESSAGE_ROLES:
        raise CodecError(
            f"Invalid value for '{param}.role': expected 'user', 'assistant', 'system' or 'developer'.",
            f"{param}.role",
        )
    item.role = role
    content = raw.get("content")
    if type(content) is str:
        item.content_text = content
    elif type(content) is list:
        parts = item.content
        for position, part in enumerate(content):
            decode_part(part, parts.add(), f"{param}.content[{position}]")
    elif content is None:
        raise missing(f"{param}.content")
    else:
        raise invalid_type(f"{param}.content", "a string or an array of content parts")
    if len(raw) > 2:
        _decode_common(raw, item, param)


def _decode_function_call(raw: JsonObject, item: responses_pb2.ResponseItem, param: str) -> None:
    item.call_id = _str(raw, "call_id", param, required=True) or ""
    item.name = _str(raw, "name", param, required=True) or ""
    item.arguments = _str(raw, "arguments", param, required=True) or ""
    _decode_common(raw, item, param)


def _decode_function_output(raw: JsonObject, item: responses_pb2.ResponseItem, param: str) -> bool:
    """False when the output is an array of parts, which only `raw` can hold."""
    item.call_id = _str(raw, "call_id", param, required=True) or ""
    _decode_common(raw, item, param)
    output = raw.get("output")
    if type(output) is str:
        item.output = output
        return True
    if type(output) is list:
        for position, part in enumerate(output):
            if not isinstance(part, dict):
                raise invalid_type(f"{param}.output[{position}]", "an object")
        return False
    if output is None:
        raise missing(f"{param}.output")
    raise invalid_type(f"{param}.output", "a string or an array of content parts")


def _decode_reasoning(raw: JsonObject, item: responses_pb2.ResponseItem, param: str) -> None:
    _decode_common(raw, item, param)
    encrypted = _str(raw, "encrypted_content", param)
    if encrypted is not None:
        item.encrypted_content = encrypted
    summary = raw.get("summary")
    if summary is None:
        return
    if type(summary) is not list:
        raise invalid_type(f"{param}.summary", "an array")
    add = item.summary.add
    for position, part in enumerate(summary):
        path = f"{param}.summary[{position}]"
        if not isinstance(part, dict):
            raise invalid_type(path, "an object")
        add(type=_str(part, "type", path) or "summary_text", text=_str(part, "text", path, required=True))


def decode_part(raw: Any, part: responses_pb2.ResponseContentPart, param: str) -> None:
    if not isinstance(raw, dict):
        raise invalid_type(param, "an object")
    kind = raw.get("type")
    if type(kind) is not str:
        raise missing(f"{param}.type") if kind is None else invalid_type(f"{param}.type", "a string")
    part.type = kind
    known = _PART_KEYS.get(kind)
    if known is None:
        _keep_raw(part, raw)
        return
    if kind in _TEXT_PARTS:
        part.text = _str(raw, "text", param, required=True) or ""
    elif kind == "output_text":
        part.text = _str(raw, "text", param, required=True) or ""
        annotations = raw.get("annotations")
        if annotations:
            if type(annotations) is not list:
                raise invalid_type(f"{param}.annotations", "an array")
            for position, annotation in enumerate(annotations):
                if not isinstance(annotation, dict):
                    raise invalid_type(f"{param}.annotations[{position}]", "an object")
                part.annotations.add().update(annotation)
        logprobs = raw.get("logprobs")
        if logprobs is not None:
            if type(logprobs) is not list:
                raise invalid_type(f"{param}.logprobs", "an array")
            part.logprobs.SetInParent()
            part.logprobs.extend(logprobs)
    elif kind == "refusal":
        part.refusal = _str(raw, "refusal", param, required=True) or ""
    else:
        for key in _IMAGE_FIELDS if kind == "input_image" else _FILE_FIELDS:
            value = _str(raw, key, param)
            if value is not None:
                setattr(part, key, value)
    if not known.issuperset(raw):
        _keep_raw(part, raw)


def encode_item(item: responses_pb2.ResponseItem) -> JsonObject:
    """One item as OpenAI writes it (output items in the order the API returns their keys)."""
    if item.HasField("raw"):
        return struct_to_dict(item.raw)
    kind = item.type
    out: JsonObject = {}
    if item.HasField("id"):
        out["id"] = item.id
    out["type"] = kind
    if kind == "reasoning":
        if item.HasField("encrypted_content"):
            out["encrypted_content"] = item.encrypted_content
        out["summary"] = [{"type": part.type or "summary_text", "text": part.text} for part in item.summary]
        if item.HasField("status"):
            out["status"] = item.status
        return out
    if item.HasField("status"):
        out["status"] = item.status
    if kind == "message":
        out["content"] = (
            item.content_text
            if item.HasField("content_text")
            else [encode_part(part) for part in item.content]
        )
        out["role"] = item.role
    elif kind == "function_call":
        out["arguments"] = item.arguments
        out["call_id"] = item.call_id
        out["name"] = item.name
    elif kind == "function_call_output":
        out["call_id"] = item.call_id
        out["output"] = item.output
    return out


def encode_part(part: responses_pb2.ResponseContentPart) -> JsonObject:
    if part.HasField("raw"):
        return struct_to_dict(part.raw)
    kind = part.type
    if kind == "output_text":
        out: JsonObject = {"type": kind, "annotations": [struct_to_dict(a) for a in part.annotations]}
        if part.HasField("logprobs"):
            out["logprobs"] = list_to_python(part.logprobs)
        out["text"] = part.text
        return out
    if kind == "refusal":
        return {"type": kind, "refusal": part.refusal}
    if kind == "input_image" or kind == "input_file":
        out = {"type": kind}
        for key in _IMAGE_FIELDS if kind == "input_image" else _FILE_FIELDS:
            if part.HasField(key):
                out[key] = getattr(part, key)
        return out
    return {"type": kind, "text": part.text}


# --- tools ------------------------------------------------------------------------------------


def decode_tool(raw: Any, tool: responses_pb2.ResponseTool, param: str) -> None:
    if not isinstance(raw, dict):
        raise invalid_type(param, "an object")
    kind = _str(raw, "type", param, required=True) or ""
    tool.type = kind
    if kind != "function":
        tool.raw_json = orjson.dumps(raw)
        return
    tool.name = _str(raw, "name", param, required=True) or ""
    description = _str(raw, "description", param)
    if description is not None:
        tool.description = description
    parameters = raw.get("parameters")
    if parameters is not None:
        if not isinstance(parameters, dict):
            raise invalid_type(f"{param}.parameters", "an object")
        # JSON text, not a Struct: the schema's key order is part of what the model sees.
        tool.parameters_json = orjson.dumps(parameters)
    strict = raw.get("strict")
    if strict is not None:
        if type(strict) is not bool:
            raise invalid_type(f"{param}.strict", "a boolean")
        tool.strict = strict
    if not _FUNCTION_TOOL_KEYS.issuperset(raw):
        tool.raw_json = orjson.dumps(raw)


def encode_tool(tool: responses_pb2.ResponseTool) -> JsonObject:
    """A tool as sent upstream: only the fields the client set."""
    if tool.HasField("raw_json"):
        return orjson.loads(tool.raw_json)  # type: ignore[no-any-return]
    out: JsonObject = {"type": tool.type, "name": tool.name}
    if tool.HasField("description"):
        out["description"] = tool.description
    if tool.HasField("parameters_json"):
        out["parameters"] = orjson.loads(tool.parameters_json)
    if tool.HasField("strict"):
        out["strict"] = tool.strict
    return out


def encode_tool_echo(tool: responses_pb2.ResponseTool) -> JsonObject:
    """A tool as a Response echoes it: every key present, in the order OpenAI writes them."""
    if tool.HasField("raw_json"):
        return orjson.loads(tool.raw_json)  # type: ignore[no-any-return]
    return {
        "type": tool.type,
        "description": tool.description if tool.HasField("description") else None,
        "name": tool.name,
        "parameters": orjson.loads(tool.parameters_json) if tool.HasField("parameters_json") else None,
        "strict": tool.strict if tool.HasField("strict") else None,
    }


def decode_tool_choice(
    value: Any, target: responses_pb2.ResponseToolChoice, param: str = "tool_choice"
) -> None:
    if type(value) is str:
        target.mode = value
    elif isinstance(value, dict):
        name = value.get("name")
        if value.get("type") == "function" and type(name) is str and len(value) == 2:
            target.function_name = name
        else:
            target.other.SetInParent()
            target.other.update(value)
    else:
        raise invalid_type(param, "a string or an object")


def encode_tool_choice(choice: responses_pb2.ResponseToolChoice) -> Any:
    kind = choice.WhichOneof("choice")
    if kind == "mode":
        return choice.mode
    if kind == "function_name":
        return {"type": "function", "name": choice.function_name}
    if kind == "other":
        return struct_to_dict(choice.other)
    return "auto"


# --- text and reasoning settings --------------------------------------------------------------


def decode_text_config(raw: Any, target: responses_pb2.ResponseTextConfig, param: str = "text") -> bool:
    """Fill `target`; False when the object has a shape the proto cannot hold (left unset)."""
    if not isinstance(raw, dict):
        raise invalid_type(param, "an object")
    if not _TEXT_KEYS.issuperset(raw):
        return False
    fmt = raw.get("format")
    if fmt is not None:
        path = f"{param}.format"
        if not isinstance(fmt, dict):
            raise invalid_type(path, "an object")
        kind = _str(fmt, "type", path, required=True)
        if kind not in _FORMAT_TYPES or not _FORMAT_KEYS.issuperset(fmt):
            return False
        target.format.type = kind or ""
        if kind == "json_schema":
            target.format.name = _str(fmt, "name", path, required=True) or ""
            description = _str(fmt, "description", path)
            if description is not None:
                target.format.description = description
            schema = fmt.get("schema")
            if schema is not None:
                if not isinstance(schema, dict):
                    raise invalid_type(f"{path}.schema", "an object")
                target.format.schema_json = orjson.dumps(schema)
            strict = fmt.get("strict")
            if strict is not None:
                if type(strict) is not bool:
                    raise invalid_type(f"{path}.strict", "a boolean")
                target.format.strict = strict
    verbosity = _str(raw, "verbosity", param)
    if verbosity is not None:
        target.verbosity = verbosity
    target.SetInParent()
    return True


def encode_text_config(text: responses_pb2.ResponseTextConfig) -> JsonObject:
    """The `text` request parameter: only what the client set."""
    out: JsonObject = {}
    if text.HasField("format"):
        fmt = text.format
        encoded: JsonObject = {"type": fmt.type}
        if fmt.HasField("name") or fmt.type == "json_schema":
            encoded["name"] = fmt.name
        if fmt.HasField("description"):
            encoded["description"] = fmt.description
        if fmt.HasField("schema_json"):
            encoded["schema"] = orjson.loads(fmt.schema_json)
        if fmt.HasField("strict"):
            encoded["strict"] = fmt.strict
        out["format"] = encoded
    if text.HasField("verbosity"):
        out["verbosity"] = text.verbosity
    return out


def encode_text_echo(text: responses_pb2.ResponseTextConfig) -> JsonObject:
    """The `text` field of a Response: the format defaults to plain text, as OpenAI echoes it."""
    fmt = text.format
    if fmt.type == "json_schema":
        encoded: JsonObject = {"type": "json_schema"}
        # OpenAI's schema types `description` as a string (not nullable): omitted when unset.
        if fmt.HasField("description"):
            encoded["description"] = fmt.description
        encoded["name"] = fmt.name
        encoded["schema"] = orjson.loads(fmt.schema_json) if fmt.HasField("schema_json") else {}
        encoded["strict"] = fmt.strict if fmt.HasField("strict") else None
    else:
        encoded = {"type": fmt.type or "text"}
    out: JsonObject = {"format": encoded}
    if text.HasField("verbosity"):
        out["verbosity"] = text.verbosity
    return out


def decode_reasoning_config(
    raw: Any, target: responses_pb2.ReasoningConfig, param: str = "reasoning"
) -> bool:
    """Fill `target`; False when the object also has keys the proto does not model."""
    if not isinstance(raw, dict):
        raise invalid_type(param, "an object")
    target.SetInParent()
    for key in ("effort", "summary"):
        value = _str(raw, key, param)
        if value is not None:
            setattr(target, key, value)
    return _REASONING_CONFIG_KEYS.issuperset(raw)


def encode_reasoning_echo(reasoning: responses_pb2.ReasoningConfig) -> JsonObject:
    return {
        "effort": reasoning.effort if reasoning.HasField("effort") else None,
        "summary": reasoning.summary if reasoning.HasField("summary") else None,
    }
