"""Translate an Anthropic Messages reply into a chat completion proto. Pure: no I/O.

Text blocks are concatenated into `content`, `thinking` blocks into `reasoning`, and `tool_use`
blocks become `tool_calls` (arguments are the compact JSON of `input`). Redacted thinking and
server-side tool blocks have no OpenAI counterpart and are left out. A lone thinking block's
signature rides in the first tool call's id (see `thinking.py`), so a tool loop keeps thinking on.
Usage follows OpenAI's meaning: `prompt_tokens` counts every input token, cached or not.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from server.providers.anthropic.thinking import join_signature
from siraya.router.v1 import chat_pb2, common_pb2

__all__ = [
    "AnthropicShapeError",
    "carried_signature",
    "finish_reason",
    "from_anthropic",
    "usage_from_anthropic",
]

_FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    # A server tool loop paused; what was generated so far is a complete turn to the client.
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


class AnthropicShapeError(ValueError):
    """The reply is not the shape Anthropic documents (the provider answers 502)."""


def finish_reason(stop_reason: str | None) -> str:
    """OpenAI's finish_reason for an Anthropic stop_reason; an unknown one counts as "stop"."""
    return _FINISH_REASONS.get(stop_reason or "", "stop")


def _count(usage: dict[str, Any], key: str) -> int:
    value = usage.get(key)
    if value is None:
        return 0
    if type(value) is not int:
        raise AnthropicShapeError(f"usage.{key} is not an integer")
    return value


def usage_from_anthropic(usage: Any) -> common_pb2.Usage:
    """OpenAI usage from Anthropic's: cache reads and writes are part of the prompt."""
    if not isinstance(usage, dict):
        raise AnthropicShapeError("usage is not an object")
    cache_read = _count(usage, "cache_read_input_tokens")
    cache_creation = _count(usage, "cache_creation_input_tokens")
    prompt = _count(usage, "input_tokens") + cache_read + cache_creation
    completion = _count(usage, "output_tokens")
    details = common_pb2.PromptTokensDetails(cached_tokens=cache_read)
    if cache_creation:
        details.cache_creation_tokens = cache_creation
    return common_pb2.Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=prompt + completion,
        prompt_tokens_details=details,
    )


def carried_signature(blocks: list[Any]) -> str | None:
    """The signature to carry back: that of the only thinking block, when there is no redacted one."""
    kinds = ("thinking", "redacted_thinking")
    thinking = [b for b in blocks if isinstance(b, dict) and b.get("type") in kinds]
    if len(thinking) != 1 or thinking[0]["type"] != "thinking":
        return None
    signature = thinking[0].get("signature")
    return signature if isinstance(signature, str) and signature else None


def _arguments(value: Any) -> str:
    return orjson.dumps(value if value is not None else {}).decode()


def from_anthropic(body: Any, created: int | None = None) -> chat_pb2.ChatCompletion:
    """The completion for a Messages reply body; `created` defaults to now (Anthropic sends none)."""
    if not isinstance(body, dict) or not isinstance(body.get("content"), list):
        raise AnthropicShapeError("the reply has no 'content' array")
    texts: list[str] = []
    thoughts: list[str] = []
    message = chat_pb2.ChatCompletionMessage(role="assistant")
    signature = carried_signature(body["content"])
    try:
        for block in body["content"]:
            kind = block.get("type") if isinstance(block, dict) else None
            if kind == "text":
                texts.append(block["text"])
            elif kind == "thinking":
                thoughts.append(block["thinking"])
            elif kind == "tool_use":
                call_id = join_signature(block["id"], None if message.tool_calls else signature)
                call = message.tool_calls.add(id=call_id, type="function")
                call.function.name = block["name"]
                call.function.arguments = _arguments(block.get("input"))
        message.content = "".join(texts)
    except (KeyError, TypeError) as error:
        raise AnthropicShapeError(f"a content block is malformed ({error})") from None
    if thoughts:
        message.reasoning = "".join(thoughts)
    if not texts and message.tool_calls:
        message.ClearField("content")
    try:
        completion = chat_pb2.ChatCompletion(
            id=body.get("id") or "",
            object="chat.completion",
            created=created if created is not None else int(time.time()),
            model=body.get("model") or "",
        )
    except TypeError as error:
        raise AnthropicShapeError(f"the reply's id or model is malformed ({error})") from None
    completion.choices.add(index=0, message=message, finish_reason=finish_reason(body.get("stop_reason")))
    if body.get("usage") is not None:
        completion.usage.CopyFrom(usage_from_anthropic(body["usage"]))
    return completion
