"""OpenAI Responses request JSON (`POST /v1/responses`) <-> `ResponseParams`.

`decode_response_request` checks a client's body has the JSON shape the proto needs and names the
offending field in every error; the rules the proto itself can break (no input, an unknown
tool_choice mode) are `check_response_params`'s, in validate.py. `encode_response_request` writes
the body an upstream that serves `/responses` itself receives.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from siraya.router.codec.errors import CodecError
from siraya.router.codec.fields import (
    JsonObject,
    fill_value,
    opt_bool,
    opt_float,
    opt_int,
    opt_list,
    opt_object,
    opt_str,
    str_map,
    struct_to_dict,
    value_to_python,
)
from siraya.router.codec.responses_items import (
    decode_item,
    decode_reasoning_config,
    decode_text_config,
    decode_tool,
    decode_tool_choice,
    encode_item,
    encode_text_config,
    encode_tool,
    encode_tool_choice,
    invalid_type,
)
from siraya.router.codec.routing import collect_extra_body, decode_routing, encode_extra_body, require_model
from siraya.router.v1 import responses_pb2

__all__ = ["decode_response_request", "encode_response_request"]

_STRING_PARAMS = (
    "instructions",
    "previous_response_id",
    "user",
    "service_tier",
    "truncation",
    "safety_identifier",
    "prompt_cache_key",
    "prompt_cache_retention",
)
_INT32_PARAMS = ("max_output_tokens", "top_logprobs", "max_tool_calls")
_FLOAT_PARAMS = ("temperature", "top_p")
_BOOL_PARAMS = ("parallel_tool_calls", "store", "background", "stream")
_STRUCT_PARAMS = ("prompt", "stream_options")
_KNOWN_KEYS = frozenset(
    {
        *_STRING_PARAMS,
        *_INT32_PARAMS,
        *_FLOAT_PARAMS,
        *_BOOL_PARAMS,
        *_STRUCT_PARAMS,
        "model",
        "input",
        "tools",
        "tool_choice",
        "text",
        "reasoning",
        "metadata",
        "include",
        "conversation",
    }
)
_RESERVED_STREAMING = frozenset({"model", "input", "stream"})
# `stream_options` only makes sense, and is only accepted, on a streaming request.
_RESERVED = _RESERVED_STREAMING | {"stream_options"}
_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1


# --- decode -----------------------------------------------------------------------------------


def decode_response_request(body: JsonObject) -> responses_pb2.ResponseParams:
    """Decode a client's `POST /v1/responses` body (CreateResponse + the gateway's routing fields)."""
    if not isinstance(body, dict):
        raise CodecError("The request body must be a JSON object.", None, "invalid_type")
    params = responses_pb2.ResponseParams(model=require_model(body))
    raw_input = body.get("input")
    if type(raw_input) is str:
        params.input_text = raw_input
    elif type(raw_input) is list:
        items = params.input_items.items
        params.input_items.SetInParent()
        for index, raw in enumerate(raw_input):
            decode_item(raw, items.add(), f"input[{index}]")
    elif raw_input is not None:
        raise invalid_type("input", "a string or an array of input items")

    # Most bodies set a handful of these: the `in` tests skip the rest without a call.
    for key in _STRING_PARAMS:
        if key in body and (text := opt_str(body, key)) is not None:
            setattr(params, key, text)
    for key in _INT32_PARAMS:
        if key in body and (integer := opt_int(body, key)) is not None:
            if not _INT32_MIN <= integer <= _INT32_MAX:
                raise CodecError(f"Invalid value for '{key}': integer out of range.", key)
            setattr(params, key, integer)
    for key in _FLOAT_PARAMS:
        if key in body and (number := opt_float(body, key)) is not None:
            setattr(params, key, number)
    for key in _BOOL_PARAMS:
        if key in body and (flag := opt_bool(body, key)) is not None:
            setattr(params, key, flag)
    for key in _STRUCT_PARAMS:
        if key in body and (struct := opt_object(body, key)) is not None:
            target = getattr(params, key)
            target.SetInParent()
            target.update(struct)

    tools = opt_list(body, "tools")
    if tools:
        for index, tool in enumerate(tools):
            decode_tool(tool, params.tools.add(), f"tools[{index}]")
    tool_choice = body.get("tool_choice")
    if tool_choice is not None:
        decode_tool_choice(tool_choice, params.tool_choice)
    params.metadata.update(str_map(body, "metadata"))
    include = opt_list(body, "include")
    if include:
        for index, value in enumerate(include):
            if type(value) is not str:
                raise invalid_type(f"include[{index}]", "a string")
        params.include.extend(include)
    conversation = body.get("conversation")
    if conversation is not None:
        fill_value(params.conversation, conversation)

    # A shape the proto cannot hold travels untouched in extra_body instead (it overrides typed fields).
    known = _KNOWN_KEYS
    text = body.get("text")
    if text is not None and not decode_text_config(text, params.text):
        params.ClearField("text")
        known = known - {"text"}
    reasoning = body.get("reasoning")
    if reasoning is not None and not decode_reasoning_config(reasoning, params.reasoning):
        known = known - {"reasoning"}

    decode_routing(body, params.routing)
    collect_extra_body(body, known, params.extra_body)
    return params


# --- encode -----------------------------------------------------------------------------------


def encode_response_request(
    params: responses_pb2.ResponseParams, upstream_model: str, stream: bool
) -> JsonObject:
    """Build the JSON body for an upstream's own `/responses` endpoint.

    Only set fields are written. `routing` never leaves the gateway; `extra_body` keys are merged
    at the top level and may override typed fields, but never the model, the input or streaming.
    """
    body: JsonObject = {"model": upstream_model}
    # ListFields yields only the set fields, in one call: cheaper than a HasField per parameter.
    for field, value in params.ListFields():
        name = field.name
        if name in _AS_IS_PARAMS:
            body[name] = value
        elif (encoder := _PARAM_ENCODERS.get(name)) is not None:
            body[_WIRE_NAMES.get(name, name)] = encoder(value)
    body["stream"] = stream
    if not stream:
        body.pop("stream_options", None)
    encode_extra_body(params.extra_body, body, _RESERVED_STREAMING if stream else _RESERVED)
    return body


def _encode_items(items: responses_pb2.ResponseItems) -> list[JsonObject]:
    return [encode_item(item) for item in items.items]


def _encode_tools(tools: Any) -> list[JsonObject]:
    return [encode_tool(tool) for tool in tools]


def _encode_reasoning(reasoning: responses_pb2.ReasoningConfig) -> JsonObject:
    out: JsonObject = {}
    if reasoning.HasField("effort"):
        out["effort"] = reasoning.effort
    if reasoning.HasField("summary"):
        out["summary"] = reasoning.summary
    return out


_AS_IS_PARAMS = frozenset(
    {*_STRING_PARAMS, *_INT32_PARAMS, *_FLOAT_PARAMS, "parallel_tool_calls", "store", "background"}
)
_PARAM_ENCODERS: dict[str, Callable[[Any], Any]] = {
    "input_text": lambda text: text,
    "input_items": _encode_items,
    "tools": _encode_tools,
    "tool_choice": encode_tool_choice,
    "text": encode_text_config,
    "reasoning": _encode_reasoning,
    "metadata": dict,
    "include": list,
    "prompt": struct_to_dict,
    "conversation": value_to_python,
    "stream_options": struct_to_dict,
}
_WIRE_NAMES = {"input_text": "input", "input_items": "input"}
