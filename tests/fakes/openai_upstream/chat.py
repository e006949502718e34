"""Chat Completions: read a request into a Conversation, build the body or the stream chunks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .replies import Conversation, FunctionTool, Reply, Turn, split_arguments, split_words

__all__ = [
    "ChatMeta",
    "chat_completion",
    "chat_conversation",
    "chat_stream_chunks",
    "chat_usage",
    "wants_thinking",
]


@dataclass(frozen=True)
class ChatMeta:
    """The fields every body or chunk of one completion repeats."""

    id: str
    created: int
    model: str
    system_fingerprint: str = "fp_fake0001"
    service_tier: str = "default"


def chat_conversation(body: dict[str, Any]) -> Conversation:
    turns = tuple(_turn(message) for message in body.get("messages") or [] if isinstance(message, dict))
    tools = tuple(
        FunctionTool(tool["function"]["name"], tool["function"].get("parameters") or {})
        for tool in body.get("tools") or []
        if tool.get("type") == "function" and isinstance(tool.get("function"), dict)
    )
    response_format = body.get("response_format") or {}
    json_schema = None
    if response_format.get("type") == "json_schema":
        json_schema = (response_format.get("json_schema") or {}).get("schema") or {}
    stop = body.get("stop")
    return Conversation(
        turns=turns,
        tools=tools,
        tool_choice=_tool_choice(body.get("tool_choice")),
        json_schema=json_schema,
        max_words=body.get("max_completion_tokens") or body.get("max_tokens"),
        stop=(stop,) if isinstance(stop, str) else tuple(stop or ()),
    )


def wants_thinking(body: dict[str, Any]) -> bool:
    """Whether the request asks a reasoning model to think, as `reasoning_effort` does."""
    effort = body.get("reasoning_effort")
    return isinstance(effort, str) and effort != "none"


def chat_usage(prompt_tokens: int, completion_tokens: int, reasoning_tokens: int = 0) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": reasoning_tokens,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def chat_completion(
    meta: ChatMeta, reply: Reply, n: int, reasoning_field: str | None = None
) -> dict[str, Any]:
    """The completion body; a reply's reasoning goes in `reasoning_field` ("reasoning_content" as vLLM
    and DeepSeek send it, "reasoning" as OpenRouter does), or nowhere without one."""
    message: dict[str, Any] = {"role": "assistant", "content": reply.content}
    if reasoning_field and reply.reasoning:
        message[reasoning_field] = reply.reasoning
    if reply.tool_calls:
        message["tool_calls"] = [
            {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}
            for call in reply.tool_calls
        ]
    message["refusal"] = None
    message["annotations"] = []
    return {
        "id": meta.id,
        "object": "chat.completion",
        "created": meta.created,
        "model": meta.model,
        "choices": [
            {"index": index, "message": message, "logprobs": None, "finish_reason": reply.finish_reason}
            for index in range(n)
        ],
        "usage": chat_usage(reply.prompt_tokens, reply.completion_tokens * n, reply.reasoning_tokens * n),
        "service_tier": meta.service_tier,
        "system_fingerprint": meta.system_fingerprint,
    }


def chat_stream_chunks(
    meta: ChatMeta, reply: Reply, n: int, include_usage: bool, reasoning_field: str | None = None
) -> list[dict[str, Any]]:
    """Every chunk of the stream, in order; with include_usage a final chunk carries the usage."""
    chunks = []
    for index in range(n):
        for delta in _deltas(reply, reasoning_field):
            chunks.append(_chunk(meta, include_usage, [_choice(index, delta, None)]))
        chunks.append(_chunk(meta, include_usage, [_choice(index, {}, reply.finish_reason)]))
    if include_usage:
        chunk = _chunk(meta, False, [])
        chunk["usage"] = chat_usage(
            reply.prompt_tokens, reply.completion_tokens * n, reply.reasoning_tokens * n
        )
        chunks.append(chunk)
    return chunks


def _deltas(reply: Reply, reasoning_field: str | None) -> list[dict[str, Any]]:
    # OpenAI opens with the role; a tool-call-only reply folds its first call into that delta.
    # Reasoning streams first, in its own deltas, after the role.
    deltas: list[dict[str, Any]] = []
    texted = reply.content is not None or not reply.tool_calls
    if reasoning_field and reply.reasoning:
        deltas.append({"role": "assistant", "content": "" if texted else None, "refusal": None})
        deltas.extend({reasoning_field: piece} for piece in split_words(reply.reasoning))
    if texted:
        if not deltas:
            deltas.append({"role": "assistant", "content": "", "refusal": None})
        deltas.extend({"content": piece} for piece in split_words(reply.content or ""))
    for index, call in enumerate(reply.tool_calls):
        header = {
            "index": index,
            "id": call.id,
            "type": "function",
            "function": {"name": call.name, "arguments": ""},
        }
        if deltas:
            deltas.append({"tool_calls": [header]})
        else:
            deltas.append({"role": "assistant", "content": None, "tool_calls": [header], "refusal": None})
        deltas.extend(
            {"tool_calls": [{"index": index, "function": {"arguments": piece}}]}
            for piece in split_arguments(call.arguments)
        )
    return deltas


def _choice(index: int, delta: dict[str, Any], finish_reason: str | None) -> dict[str, Any]:
    return {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish_reason}


def _chunk(meta: ChatMeta, usage_null: bool, choices: list[dict[str, Any]]) -> dict[str, Any]:
    chunk: dict[str, Any] = {
        "id": meta.id,
        "object": "chat.completion.chunk",
        "created": meta.created,
        "model": meta.model,
        "service_tier": meta.service_tier,
        "system_fingerprint": meta.system_fingerprint,
        "choices": choices,
    }
    if usage_null:
        chunk["usage"] = None
    return chunk


def _turn(message: dict[str, Any]) -> Turn:
    content = message.get("content")
    if isinstance(content, str) or content is None:
        return Turn(str(message.get("role", "")), content or "")
    texts = [part.get("text", "") for part in content if part.get("type") == "text"]
    images = []
    for part in content:
        if part.get("type") == "image_url":
            image = part.get("image_url")
            images.append(image.get("url", "") if isinstance(image, dict) else str(image))
    return Turn(str(message.get("role", "")), " ".join(texts), tuple(images))


def _tool_choice(choice: Any) -> str | None:
    if isinstance(choice, dict):
        function = choice.get("function")
        name = (function.get("name") if isinstance(function, dict) else None) or choice.get("name")
        return str(name) if name else None
    return str(choice) if choice is not None else None
