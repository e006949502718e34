"""The tools of an OpenAI chat-completions request and the shape its answer must take, JSON <->
proto: `tools` (function and custom), the legacy `functions`, `tool_choice` and `response_format`.

A function's `parameters` and a JSON schema travel as JSON text, so their key order reaches the
upstream as the client wrote it.
"""

from __future__ import annotations

from typing import Any

import orjson

from siraya.router.codec.cache_control import decode_cache_control
from siraya.router.codec.fields import (
    JsonObject,
    fill_struct,
    opt_bool,
    opt_object,
    opt_str,
    require_object,
    require_str,
    struct_to_dict,
)
from siraya.router.codec.sampling_fields import invalid_type
from siraya.router.v1 import chat_pb2

__all__ = [
    "decode_function",
    "decode_response_format",
    "decode_tool",
    "decode_tool_choice",
    "encode_function",
    "encode_response_format",
    "encode_tool",
    "encode_tool_choice",
]

_RESPONSE_FORMATS = frozenset({"text", "json_object", "json_schema"})


# --- decode -----------------------------------------------------------------------------------


def decode_function(function: JsonObject, target: chat_pb2.FunctionDefinition, param: str) -> None:
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


def decode_tool(raw: Any, target: chat_pb2.ChatTool, param: str) -> None:
    tool = require_object(raw, param)
    kind = opt_str(tool, "type", f"{param}.type") or "function"
    # An unknown type, or a missing `function` / `custom`, is left for the check to refuse.
    target.type = kind
    if kind == "function":
        function = opt_object(tool, "function", f"{param}.function")
        if function is not None:
            decode_function(function, target.function, f"{param}.function")
    elif kind == "custom":
        custom = opt_object(tool, "custom", f"{param}.custom")
        if custom is not None:
            target.custom.SetInParent()
            fill_struct(target.custom, custom)
    if "cache_control" in tool:
        decode_cache_control(tool, target.cache_control, f"{param}.cache_control")


def decode_tool_choice(value: Any, target: chat_pb2.ToolChoice) -> None:
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


def decode_response_format(value: JsonObject, target: chat_pb2.ResponseFormat) -> bool:
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


# --- encode -----------------------------------------------------------------------------------


def encode_function(function: chat_pb2.FunctionDefinition) -> JsonObject:
    out: JsonObject = {"name": function.name}
    if function.HasField("description"):
        out["description"] = function.description
    if function.HasField("parameters_json"):
        out["parameters"] = orjson.loads(function.parameters_json)
    if function.HasField("strict"):
        out["strict"] = function.strict
    return out


def encode_tool(tool: chat_pb2.ChatTool) -> JsonObject:
    if tool.type == "custom":
        return {"type": "custom", "custom": struct_to_dict(tool.custom)}
    return {"type": "function", "function": encode_function(tool.function)}


def encode_tool_choice(choice: chat_pb2.ToolChoice) -> str | JsonObject:
    kind = choice.WhichOneof("choice")
    if kind == "mode":
        return choice.mode
    if kind == "named":
        return {"type": choice.named.type, choice.named.type: {"name": choice.named.name}}
    return struct_to_dict(choice.other)


def encode_response_format(response_format: chat_pb2.ResponseFormat) -> JsonObject:
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
