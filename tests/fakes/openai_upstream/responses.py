"""Responses API: read a request into a Conversation, build the Response object or its event stream."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .replies import Conversation, FunctionTool, Reply, Turn, split_arguments, split_words

__all__ = [
    "ResponseMeta",
    "output_items",
    "response_conversation",
    "response_events",
    "response_object",
    "response_status",
]


@dataclass(frozen=True)
class ResponseMeta:
    id: str
    created_at: int
    request: dict[str, Any]


def response_conversation(body: dict[str, Any]) -> Conversation:
    turns: list[Turn] = []
    if isinstance(body.get("instructions"), str):
        turns.append(Turn("developer", body["instructions"]))
    raw_input = body.get("input")
    if isinstance(raw_input, str):
        turns.append(Turn("user", raw_input))
    else:
        turns.extend(_turn(item) for item in raw_input or [] if isinstance(item, dict))
    tools = tuple(
        FunctionTool(tool["name"], tool.get("parameters") or {})
        for tool in body.get("tools") or []
        if tool.get("type") == "function" and "name" in tool
    )
    text_format = (body.get("text") or {}).get("format") or {}
    choice = body.get("tool_choice")
    return Conversation(
        turns=tuple(turns),
        tools=tools,
        tool_choice=choice.get("name") if isinstance(choice, dict) else choice,
        json_schema=(text_format.get("schema") or {}) if text_format.get("type") == "json_schema" else None,
        max_words=body.get("max_output_tokens"),
    )


def response_object(
    meta: ResponseMeta, status: str, output: list[dict[str, Any]], reply: Reply | None
) -> dict[str, Any]:
    """The Response resource; `reply` None means still in progress (no usage yet)."""
    req = meta.request
    incomplete = reply is not None and reply.finish_reason == "length"
    body = {
        "id": meta.id,
        "object": "response",
        "created_at": meta.created_at,
        "status": status,
        "background": bool(req.get("background", False)),
        "completed_at": meta.created_at if status == "completed" else None,
        "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if incomplete else None,
        "instructions": req.get("instructions"),
        "max_output_tokens": req.get("max_output_tokens"),
        "max_tool_calls": req.get("max_tool_calls"),
        "model": req.get("model"),
        "output": output,
        "parallel_tool_calls": req.get("parallel_tool_calls", True),
        "previous_response_id": req.get("previous_response_id"),
        "prompt_cache_key": req.get("prompt_cache_key"),
        "reasoning": req.get("reasoning") or {"effort": None, "summary": None},
        "safety_identifier": req.get("safety_identifier"),
        "service_tier": "default",
        "store": req.get("store", True),
        "temperature": float(req.get("temperature", 1.0)),
        "text": req.get("text") or {"format": {"type": "text"}, "verbosity": "medium"},
        "tool_choice": req.get("tool_choice", "auto"),
        "tools": req.get("tools") or [],
        "top_logprobs": req.get("top_logprobs", 0),
        "top_p": float(req.get("top_p", 1.0)),
        "truncation": req.get("truncation", "disabled"),
        "usage": None if reply is None else _usage(reply),
        "user": req.get("user"),
        "metadata": req.get("metadata") or {},
    }
    if body["user"] is None:
        # OpenAI echoes "user": null, but its published schema types `user` as a plain string.
        del body["user"]
    return body


def response_status(reply: Reply) -> str:
    return "incomplete" if reply.finish_reason == "length" else "completed"


def output_items(reply: Reply, new_id: Callable[[str], str]) -> list[dict[str, Any]]:
    """The finished output items; ids are minted here so stream and body agree."""
    items: list[dict[str, Any]] = []
    if reply.content is not None:
        items.append(_message_item(new_id("msg_"), "completed", [_text_part(reply.content)]))
    for call in reply.tool_calls:
        items.append(_function_item(new_id("fc_"), "completed", call.arguments, call.id, call.name))
    return items


def response_events(
    meta: ResponseMeta, reply: Reply, items: list[dict[str, Any]]
) -> list[tuple[str, dict[str, Any]]]:
    """The typed event sequence of a streamed response, each as (event type, payload)."""
    events: list[tuple[str, dict[str, Any]]] = []

    def emit(kind: str, **fields: Any) -> None:
        events.append((kind, {"type": kind, "sequence_number": len(events), **fields}))

    emit("response.created", response=response_object(meta, "in_progress", [], None))
    emit("response.in_progress", response=response_object(meta, "in_progress", [], None))
    for index, item in enumerate(items):
        if item["type"] == "message":
            _message_events(emit, index, item)
        else:
            _function_events(emit, index, item)
    status = response_status(reply)
    emit(f"response.{status}", response=response_object(meta, status, items, reply))
    return events


def _message_events(emit: Callable[..., None], index: int, item: dict[str, Any]) -> None:
    text = item["content"][0]["text"]
    where = {"item_id": item["id"], "output_index": index, "content_index": 0}
    emit("response.output_item.added", output_index=index, item=_message_item(item["id"], "in_progress", []))
    emit("response.content_part.added", **where, part=_text_part(""))
    for piece in split_words(text):
        emit("response.output_text.delta", **where, delta=piece, logprobs=[])
    emit("response.output_text.done", **where, text=text, logprobs=[])
    emit("response.content_part.done", **where, part=_text_part(text))
    emit("response.output_item.done", output_index=index, item=item)


def _function_events(emit: Callable[..., None], index: int, item: dict[str, Any]) -> None:
    started = _function_item(item["id"], "in_progress", "", item["call_id"], item["name"])
    emit("response.output_item.added", output_index=index, item=started)
    for piece in split_arguments(item["arguments"]):
        emit("response.function_call_arguments.delta", item_id=item["id"], output_index=index, delta=piece)
    emit(
        "response.function_call_arguments.done",
        item_id=item["id"],
        output_index=index,
        name=item["name"],
        arguments=item["arguments"],
    )
    emit("response.output_item.done", output_index=index, item=item)


def _message_item(item_id: str, status: str, content: list[dict[str, Any]]) -> dict[str, Any]:
    return {"id": item_id, "type": "message", "status": status, "role": "assistant", "content": content}


def _text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "annotations": [], "logprobs": [], "text": text}


def _function_item(item_id: str, status: str, arguments: str, call_id: str, name: str) -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "function_call",
        "status": status,
        "arguments": arguments,
        "call_id": call_id,
        "name": name,
    }


def _usage(reply: Reply) -> dict[str, Any]:
    return {
        "input_tokens": reply.prompt_tokens,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": reply.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": reply.prompt_tokens + reply.completion_tokens,
    }


def _turn(item: dict[str, Any]) -> Turn:
    kind = item.get("type", "message")
    if kind == "function_call_output":
        output = item.get("output")
        return Turn("tool", output if isinstance(output, str) else _parts_text(output or []))
    if kind != "message":
        return Turn("assistant", "")
    content = item.get("content")
    role = str(item.get("role", "user"))
    if isinstance(content, str):
        return Turn(role, content)
    images = tuple(
        str(part.get("image_url") or part.get("file_id") or "")
        for part in content or []
        if part.get("type") == "input_image"
    )
    return Turn(role, _parts_text(content or []), images)


def _parts_text(parts: list[dict[str, Any]]) -> str:
    return " ".join(
        part.get("text", "") for part in parts if part.get("type") in ("input_text", "output_text")
    )
