"""OpenAI tools and tool_choice -> Gemini `tools[].functionDeclarations` and `toolConfig` (pure).

Parameters go as `parametersJsonSchema`, which takes the client's JSON Schema unchanged (the older
`parameters` field takes an OpenAPI 3.0 subset and would need a lossy rewrite). tool_choice maps
auto -> AUTO, none -> NONE, required -> ANY, a named function -> ANY with allowedFunctionNames;
`allowed_tools` in mode required -> ANY with those names, in mode auto -> AUTO with only those
tools declared (Gemini accepts allowedFunctionNames only together with ANY).
"""

from __future__ import annotations

from typing import Any

import orjson

from server.errors import InvalidRequest
from siraya.router.codec.fields import struct_to_dict
from siraya.router.v1 import chat_pb2

__all__ = ["tools_and_config"]

JsonObject = dict[str, Any]
_TOOL_MODES = {"auto": "AUTO", "none": "NONE", "required": "ANY"}


def tools_and_config(params: chat_pb2.ChatCompletionParams) -> tuple[list[JsonObject], JsonObject | None]:
    """(the `tools` array, the `toolConfig` or None) of a generateContent request."""
    declarations: list[JsonObject] = []
    for k, tool in enumerate(params.tools):
        if tool.type != "function":
            raise InvalidRequest(
                f"Tools of type '{tool.type}' are not supported by Gemini.",
                param=f"tools[{k}].type",
                code="unsupported_parameter",
            )
        function = tool.function
        declaration: JsonObject = {"name": function.name}
        if function.HasField("description"):
            declaration["description"] = function.description
        if function.HasField("parameters_json"):
            # Decoded into an ordered dict: the client's property order reaches Gemini unchanged.
            declaration["parametersJsonSchema"] = orjson.loads(function.parameters_json)
        declarations.append(declaration)
    if not declarations or not params.HasField("tool_choice"):
        return ([{"functionDeclarations": declarations}] if declarations else []), None
    config, allowed = _function_calling_config(params.tool_choice, {d["name"] for d in declarations})
    if allowed is not None:
        declarations = [d for d in declarations if d["name"] in allowed]
    return [{"functionDeclarations": declarations}], {"functionCallingConfig": config}


def _function_calling_config(
    choice: chat_pb2.ToolChoice, names: set[str]
) -> tuple[JsonObject, set[str] | None]:
    """(functionCallingConfig, the declarations to keep or None for all)."""
    which = choice.WhichOneof("choice")
    if which == "mode":
        mode = _TOOL_MODES.get(choice.mode)
        if mode is None:
            raise InvalidRequest(f"Unknown tool_choice '{choice.mode}'.", param="tool_choice")
        return {"mode": mode}, None
    if which == "named":
        _require_declared(choice.named.name, names)
        return {"mode": "ANY", "allowedFunctionNames": [choice.named.name]}, None
    other = struct_to_dict(choice.other)
    allowed_tools = other.get("allowed_tools") if other.get("type") == "allowed_tools" else None
    if not isinstance(allowed_tools, dict):
        raise InvalidRequest("This tool_choice form is not supported by Gemini.", param="tool_choice")
    allowed = [
        tool.get("function", {}).get("name")
        for tool in allowed_tools.get("tools") or []
        if isinstance(tool, dict)
    ]
    for name in allowed:
        _require_declared(name, names)
    if allowed_tools.get("mode") == "required":
        return {"mode": "ANY", "allowedFunctionNames": allowed}, None
    # Gemini takes allowedFunctionNames only with ANY; under AUTO the other tools are left out instead.
    return {"mode": "AUTO"}, set(allowed)


def _require_declared(name: Any, names: set[str]) -> None:
    if name not in names:
        raise InvalidRequest(
            f"tool_choice names the function '{name}', which is not in tools.", param="tool_choice"
        )
