"""OpenAI Responses API JSON <-> protobuf: requests, Response objects and typed stream events.

Upstream bodies are decoded tolerantly (missing or null optional fields are simply unset) but
strictly about the essentials: a Response is an object whose `output` is an array, and an event
is an object with a `type`. Responses and events are encoded in the key order OpenAI writes, so
what an OpenAI upstream sends reaches the client byte for byte as far as the protos model it.

What does not survive a round trip: Response keys the proto has no field for (`billing`,
`prompt_cache_retention`, `conversation`, ...), `instructions` given as an array of items, `usage`
and `user` written as null (OpenAI's schema types both as non-null, so they are omitted when
unset), and the key order inside JSON objects held in a `Struct` (tool parameters, metadata,
annotations, raw items), which protobuf does not preserve.
"""

from __future__ import annotations

from typing import Any

import orjson

from siraya.router.codec.errors import CodecError
from siraya.router.codec.fields import JsonObject, list_to_python, struct_to_dict
from siraya.router.codec.responses_items import (
    decode_item,
    decode_part,
    decode_reasoning_config,
    decode_text_config,
    decode_tool,
    decode_tool_choice,
    encode_item,
    encode_part,
    encode_reasoning_echo,
    encode_text_echo,
    encode_tool_choice,
    encode_tool_echo,
)
from siraya.router.codec.responses_request import decode_response_request, encode_response_request
from siraya.router.v1 import responses_pb2

__all__ = [
    "decode_response",
    "encode_deleted_response",
    "encode_input_item_list",
    "decode_response_event",
    "decode_response_request",
    "encode_response",
    "encode_response_event",
    "encode_response_request",
    "response_event_to_dict",
    "response_to_dict",
]

_BAD_SHAPE = (TypeError, ValueError)
_RESPONSE_EVENTS = frozenset(
    {
        "response.created",
        "response.in_progress",
        "response.completed",
        "response.incomplete",
        "response.failed",
        "response.queued",
    }
)
_ITEM_EVENT = ("item", "output_index", "sequence_number")
_PART_EVENT = ("content_index", "item_id", "output_index", "part", "sequence_number")
_SUMMARY_PART_EVENT = ("item_id", "output_index", "part", "sequence_number", "summary_index")
# The keys of each modelled event after `type`, in the order OpenAI streams them (alphabetical).
_EVENT_KEYS: dict[str, tuple[str, ...]] = {
    **{kind: ("response", "sequence_number") for kind in _RESPONSE_EVENTS},
    "response.output_item.added": _ITEM_EVENT,
    "response.output_item.done": _ITEM_EVENT,
    "response.content_part.added": _PART_EVENT,
    "response.content_part.done": _PART_EVENT,
    "response.output_text.delta": (
        "content_index",
        "delta",
        "item_id",
        "logprobs",
        "obfuscation",
        "output_index",
        "sequence_number",
    ),
    "response.output_text.done": (
        "content_index",
        "item_id",
        "logprobs",
        "output_index",
        "sequence_number",
        "text",
    ),
    "response.refusal.delta": (
        "content_index",
        "delta",
        "item_id",
        "obfuscation",
        "output_index",
        "sequence_number",
    ),
    "response.refusal.done": ("content_index", "item_id", "output_index", "refusal", "sequence_number"),
    "response.function_call_arguments.delta": (
        "delta",
        "item_id",
        "obfuscation",
        "output_index",
        "sequence_number",
    ),
    "response.function_call_arguments.done": (
        "arguments",
        "item_id",
        "name",
        "output_index",
        "sequence_number",
    ),
    "response.reasoning_summary_part.added": _SUMMARY_PART_EVENT,
    "response.reasoning_summary_part.done": _SUMMARY_PART_EVENT,
    "response.reasoning_summary_text.delta": (
        "delta",
        "item_id",
        "obfuscation",
        "output_index",
        "sequence_number",
        "summary_index",
    ),
    "response.reasoning_summary_text.done": (
        "item_id",
        "output_index",
        "sequence_number",
        "summary_index",
        "text",
    ),
    "response.reasoning_text.delta": (
        "content_index",
        "delta",
        "item_id",
        "obfuscation",
        "output_index",
        "sequence_number",
    ),
    "response.reasoning_text.done": ("content_index", "item_id", "output_index", "sequence_number", "text"),
    "error": ("code", "message", "param", "sequence_number"),
}
_EVENT_KEY_SETS = {kind: frozenset(keys) | {"type"} for kind, keys in _EVENT_KEYS.items()}
# Keys OpenAI always writes for an event type, null or empty when there is nothing to say.
_ALWAYS: dict[str, JsonObject] = {
    "response.output_text.delta": {"logprobs": []},
    "response.output_text.done": {"logprobs": []},
    "error": {"code": None, "message": "", "param": None},
}
# Every key of a `ResponseStreamEvent` in alphabetical order, for a type that is not modelled.
_ALL_EVENT_KEYS = tuple(
    sorted(
        f.name for f in responses_pb2.ResponseStreamEvent.DESCRIPTOR.fields if f.name not in ("type", "raw")
    )
)
_NO_DEFAULTS: JsonObject = {}


def _timestamp(value: Any) -> Any:
    # Some servers write timestamps as floats; OpenAI (and the proto) use whole seconds.
    return int(value) if type(value) is float else value


# --- Response ---------------------------------------------------------------------------------


def decode_response(body: Any) -> responses_pb2.Response:
    """Decode an upstream's Response object (OpenAI's `Response` schema)."""
    if not isinstance(body, dict):
        raise CodecError("Invalid response: expected a JSON object.", None, "invalid_type")
    if not isinstance(body.get("output"), list):
        raise CodecError("Invalid response: 'output' must be an array.", "output", "invalid_type")
    response = responses_pb2.Response()
    _fill_response(body, response)
    return response


def _fill_response(body: JsonObject, target: responses_pb2.Response) -> None:
    instructions = body.get("instructions")
    try:
        target.MergeFrom(
            responses_pb2.Response(
                id=body.get("id") or "",
                object=body.get("object") or "response",
                created_at=_timestamp(body.get("created_at")) or 0,
                status=body.get("status") or "",
                completed_at=_timestamp(body.get("completed_at")),
                # An array of items (a prompt template's) has no field; it is dropped.
                instructions=instructions if type(instructions) is str else None,
                max_output_tokens=body.get("max_output_tokens"),
                model=body.get("model") or "",
                parallel_tool_calls=body.get("parallel_tool_calls") is not False,
                previous_response_id=body.get("previous_response_id"),
                store=body.get("store"),
                temperature=body.get("temperature"),
                top_p=body.get("top_p"),
                truncation=body.get("truncation"),
                user=body.get("user"),
                metadata=body.get("metadata") or None,
                service_tier=body.get("service_tier"),
                background=body.get("background"),
                top_logprobs=body.get("top_logprobs"),
                max_tool_calls=body.get("max_tool_calls"),
                safety_identifier=body.get("safety_identifier"),
                prompt_cache_key=body.get("prompt_cache_key"),
                provider=body.get("provider"),
            )
        )
        error = body.get("error")
        if error is not None:
            target.error.code = error.get("code") or ""
            target.error.message = error.get("message") or ""
        incomplete = body.get("incomplete_details")
        if incomplete is not None:
            target.incomplete_details.reason = incomplete.get("reason") or ""
        reasoning = body.get("reasoning")
        if reasoning is not None:
            decode_reasoning_config(reasoning, target.reasoning)
        text = body.get("text")
        if text is not None and not decode_text_config(text, target.text):
            target.ClearField("text")
        tool_choice = body.get("tool_choice")
        if tool_choice is not None:
            decode_tool_choice(tool_choice, target.tool_choice)
        usage = body.get("usage")
        if usage is not None:
            _decode_usage(usage, target.usage)
    except CodecError:
        raise
    except (*_BAD_SHAPE, AttributeError):
        raise CodecError("Invalid response: a field has the wrong type.", None, "invalid_type") from None
    output = body.get("output")
    if output:
        add = target.output.add
        for index, item in enumerate(output):
            decode_item(item, add(), f"output[{index}]")
    tools = body.get("tools")
    if tools:
        if type(tools) is not list:
            raise CodecError("Invalid response: 'tools' must be an array.", "tools", "invalid_type")
        for index, tool in enumerate(tools):
            decode_tool(tool, target.tools.add(), f"tools[{index}]")


def _decode_usage(raw: JsonObject, target: responses_pb2.ResponseUsage) -> None:
    target.input_tokens = raw.get("input_tokens") or 0
    target.output_tokens = raw.get("output_tokens") or 0
    target.total_tokens = raw.get("total_tokens") or 0
    input_details = raw.get("input_tokens_details")
    if input_details:
        cached = input_details.get("cached_tokens")
        if cached is not None:
            target.cached_tokens = cached
        written = input_details.get("cache_write_tokens")
        if written is not None:
            target.cache_write_tokens = written
    output_details = raw.get("output_tokens_details")
    if output_details:
        reasoning = output_details.get("reasoning_tokens")
        if reasoning is not None:
            target.reasoning_tokens = reasoning
    cost = raw.get("cost")
    if cost is not None:
        target.cost = cost


def encode_response(response: responses_pb2.Response) -> bytes:
    """Serialize a Response the way OpenAI writes it, key order included."""
    return orjson.dumps(response_to_dict(response))


def response_to_dict(r: responses_pb2.Response) -> JsonObject:
    has = r.HasField
    out: JsonObject = {
        "id": r.id,
        "object": r.object or "response",
        "created_at": r.created_at,
        "status": r.status,
        "background": r.background if has("background") else None,
        "completed_at": r.completed_at if has("completed_at") else None,
        "error": {"code": r.error.code, "message": r.error.message} if has("error") else None,
        "incomplete_details": {"reason": r.incomplete_details.reason} if has("incomplete_details") else None,
        "instructions": r.instructions if has("instructions") else None,
        "max_output_tokens": r.max_output_tokens if has("max_output_tokens") else None,
        "max_tool_calls": r.max_tool_calls if has("max_tool_calls") else None,
        "model": r.model,
        "output": [encode_item(item) for item in r.output],
        "parallel_tool_calls": r.parallel_tool_calls,
        "previous_response_id": r.previous_response_id if has("previous_response_id") else None,
        "prompt_cache_key": r.prompt_cache_key if has("prompt_cache_key") else None,
        "reasoning": encode_reasoning_echo(r.reasoning),
        "safety_identifier": r.safety_identifier if has("safety_identifier") else None,
        "service_tier": r.service_tier if has("service_tier") else None,
        "store": r.store if has("store") else None,
        "temperature": r.temperature if has("temperature") else None,
        "text": encode_text_echo(r.text),
        "tool_choice": encode_tool_choice(r.tool_choice),
        "tools": [encode_tool_echo(tool) for tool in r.tools],
        "top_logprobs": r.top_logprobs if has("top_logprobs") else None,
        "top_p": r.top_p if has("top_p") else None,
        "truncation": r.truncation if has("truncation") else None,
    }
    if has("usage"):
        out["usage"] = _encode_usage(r.usage)
    if has("user"):
        out["user"] = r.user
    out["metadata"] = dict(r.metadata)
    if has("provider"):
        out["provider"] = r.provider
    return out


def _encode_usage(usage: responses_pb2.ResponseUsage) -> JsonObject:
    out: JsonObject = {
        "input_tokens": usage.input_tokens,
        # OpenAI always writes both details objects, zeros included; its schema requires them.
        "input_tokens_details": {
            "cache_write_tokens": usage.cache_write_tokens,
            "cached_tokens": usage.cached_tokens,
        },
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": usage.total_tokens,
    }
    if usage.HasField("cost"):
        out["cost"] = usage.cost
    return out


def encode_input_item_list(page: responses_pb2.ListInputItemsResponse) -> bytes:
    """A page of a stored response's input items: OpenAI's ResponseItemList."""
    has = page.HasField
    return orjson.dumps(
        {
            "object": "list",
            "data": [encode_item(item) for item in page.data],
            "first_id": page.first_id if has("first_id") else None,
            "last_id": page.last_id if has("last_id") else None,
            "has_more": page.has_more,
        }
    )


def encode_deleted_response(reply: responses_pb2.DeleteResponseResponse) -> bytes:
    return orjson.dumps({"id": reply.id, "object": "response", "deleted": reply.deleted})


# --- stream events ----------------------------------------------------------------------------


def decode_response_event(body: Any) -> responses_pb2.ResponseStreamEvent:
    """Decode one upstream SSE event; types the gateway does not model are kept whole in `raw`."""
    if not isinstance(body, dict):
        raise CodecError("Invalid stream event: expected a JSON object.", None, "invalid_type")
    kind = body.get("type")
    if type(kind) is not str:
        raise CodecError("Invalid stream event: 'type' must be a string.", "type", "invalid_type")
    keys = _EVENT_KEY_SETS.get(kind)
    try:
        event = responses_pb2.ResponseStreamEvent(type=kind, sequence_number=body.get("sequence_number") or 0)
        if keys is None:
            event.raw.update(body)
            return event
        unmodelled = False
        for key, value in body.items():
            if key not in keys:
                unmodelled = True
            elif value is None or key == "type" or key == "sequence_number":
                continue
            elif key == "response":
                if not isinstance(value, dict):
                    raise CodecError(
                        "Invalid stream event: 'response' must be an object.", "response", "invalid_type"
                    )
                _fill_response(value, event.response)
            elif key == "item":
                decode_item(value, event.item, "item")
            elif key == "part":
                decode_part(value, event.part, "part")
            elif key == "logprobs":
                event.logprobs.SetInParent()
                event.logprobs.extend(value)
            else:
                setattr(event, key, value)
    except CodecError:
        raise
    except _BAD_SHAPE:
        raise CodecError(
            f"Invalid '{kind}' event: a field has the wrong type.", None, "invalid_type"
        ) from None
    if unmodelled:
        if kind == "error":
            _decode_nested_error(body.get("error"), event)
        # Events that carry a Response stay typed: the gateway rewrites their model and provider.
        if kind not in _RESPONSE_EVENTS:
            event.raw.update(body)
    return event


def _decode_nested_error(error: Any, event: responses_pb2.ResponseStreamEvent) -> None:
    # Some upstreams nest the fields: {"type": "error", "error": {"code", "message", "param"}}.
    if not isinstance(error, dict):
        return
    for key in ("code", "message", "param"):
        value = error.get(key)
        if type(value) is str and not event.HasField(key):
            setattr(event, key, value)


def encode_response_event(event: responses_pb2.ResponseStreamEvent) -> bytes:
    """Serialize one stream event exactly as OpenAI streams its type."""
    return orjson.dumps(response_event_to_dict(event))


def response_event_to_dict(event: responses_pb2.ResponseStreamEvent) -> JsonObject:
    if event.HasField("raw"):
        out = struct_to_dict(event.raw)
        out["sequence_number"] = event.sequence_number
        return out
    kind = event.type
    keys = _EVENT_KEYS.get(kind, _ALL_EVENT_KEYS)
    defaults = _ALWAYS.get(kind, _NO_DEFAULTS)
    out = {"type": kind}
    has = event.HasField
    for key in keys:
        if key == "sequence_number":
            out[key] = event.sequence_number
        elif has(key):
            if key == "response":
                out[key] = response_to_dict(event.response)
            elif key == "item":
                out[key] = encode_item(event.item)
            elif key == "part":
                out[key] = encode_part(event.part)
            elif key == "logprobs":
                out[key] = list_to_python(event.logprobs)
            else:
                out[key] = getattr(event, key)
        elif key in defaults:
            # A fresh list each time: callers may mutate the dict this returns.
            out[key] = [] if key == "logprobs" else defaults[key]
    return out
