"""Decide the deterministic assistant reply for a chat or Responses request.

Both APIs are first normalised into a `Conversation`, so the reply rules live in one place.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

import orjson

from .control import ScriptedReply
from .schema_instance import schema_instance

__all__ = [
    "Conversation",
    "FunctionTool",
    "Reply",
    "ToolCall",
    "Turn",
    "plan_reply",
    "split_arguments",
    "split_words",
]

# Tool-call arguments stream in pieces of this many characters.
_ARGUMENT_PIECE = 8


@dataclass(frozen=True)
class Turn:
    """One message: its role, its text parts joined by a space, and its image URLs."""

    role: str
    text: str
    image_urls: tuple[str, ...] = ()


@dataclass(frozen=True)
class FunctionTool:
    name: str
    parameters: dict[str, Any]


@dataclass(frozen=True)
class Conversation:
    """What the reply rules need from a request, whichever API it came through."""

    turns: tuple[Turn, ...]
    tools: tuple[FunctionTool, ...] = ()
    tool_choice: str | None = None  # "auto", "none", "required", or a forced function name
    json_schema: dict[str, Any] | None = None
    max_words: int | None = None
    stop: tuple[str, ...] = ()
    # The request asked a reasoning model to think (`reasoning_effort` other than "none").
    think: bool = False


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class Reply:
    """One assistant choice. finish_reason uses the chat vocabulary (stop, length, tool_calls)."""

    content: str | None
    tool_calls: tuple[ToolCall, ...]
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    # What the model thought before answering; its words count in completion_tokens too.
    reasoning: str | None = None

    @property
    def reasoning_tokens(self) -> int:
        return len(split_words(self.reasoning or ""))


def split_words(text: str) -> list[str]:
    """Split text into word pieces (each with its trailing whitespace) that join back to it."""
    pieces = re.findall(r"\s*\S+\s*", text)
    return pieces or ([text] if text else [])


def split_arguments(arguments: str) -> list[str]:
    return [arguments[i : i + _ARGUMENT_PIECE] for i in range(0, len(arguments), _ARGUMENT_PIECE)]


def plan_reply(
    conversation: Conversation, scripted: ScriptedReply | None, new_call_id: Callable[[], str]
) -> Reply:
    prompt_tokens = sum(len(turn.text.split()) for turn in conversation.turns)
    if scripted is not None:
        return _scripted_reply(scripted, prompt_tokens, new_call_id)
    reply = _default_reply(conversation, prompt_tokens, new_call_id)
    if not conversation.think:
        return reply
    last = conversation.turns[-1].text if conversation.turns else ""
    reasoning = "Thinking about: " + last
    return replace(
        reply, reasoning=reasoning, completion_tokens=reply.completion_tokens + len(split_words(reasoning))
    )


def _default_reply(conversation: Conversation, prompt_tokens: int, new_call_id: Callable[[], str]) -> Reply:
    turns = conversation.turns
    last = turns[-1] if turns else None
    if last is not None and last.role == "tool":
        return _text_reply(conversation, "tool said: " + last.text, prompt_tokens)
    if conversation.tools and conversation.tool_choice != "none":
        tool = _chosen_tool(conversation)
        arguments = orjson.dumps(schema_instance(tool.parameters)).decode()
        call = ToolCall(id=new_call_id(), name=tool.name, arguments=arguments)
        return Reply(None, (call,), "tool_calls", prompt_tokens, len(split_arguments(arguments)))
    if conversation.json_schema is not None:
        content = orjson.dumps(schema_instance(conversation.json_schema)).decode()
        return _text_reply(conversation, content, prompt_tokens)
    user = next((turn for turn in reversed(turns) if turn.role == "user"), Turn("user", ""))
    if user.image_urls:
        described = ", ".join(_describe_image(url) for url in user.image_urls)
        return _text_reply(conversation, f"I see {len(user.image_urls)} image(s): {described}", prompt_tokens)
    return _text_reply(conversation, "echo: " + user.text, prompt_tokens)


def _text_reply(conversation: Conversation, content: str, prompt_tokens: int) -> Reply:
    finish_reason = "stop"
    cuts = [content.find(stop) for stop in conversation.stop if stop and stop in content]
    if cuts:
        content = content[: min(cuts)]
    words = split_words(content)
    if conversation.max_words is not None and len(words) > conversation.max_words:
        words = words[: conversation.max_words]
        content = "".join(words).rstrip()
        finish_reason = "length"
    return Reply(content, (), finish_reason, prompt_tokens, len(words))


def _scripted_reply(scripted: ScriptedReply, prompt_tokens: int, new_call_id: Callable[[], str]) -> Reply:
    calls = tuple(
        ToolCall(
            id=call.id or new_call_id(),
            name=call.name,
            arguments=call.arguments
            if isinstance(call.arguments, str)
            else orjson.dumps(call.arguments).decode(),
        )
        for call in scripted.tool_calls
    )
    completion = len(split_words(scripted.content or "")) + sum(
        len(split_arguments(call.arguments)) for call in calls
    )
    completion += len(split_words(scripted.reasoning or ""))
    usage = scripted.usage or {}
    return Reply(
        content=scripted.content,
        tool_calls=calls,
        finish_reason=scripted.finish_reason or ("tool_calls" if calls else "stop"),
        prompt_tokens=usage.get("prompt_tokens", prompt_tokens),
        completion_tokens=usage.get("completion_tokens", completion),
        reasoning=scripted.reasoning,
    )


def _chosen_tool(conversation: Conversation) -> FunctionTool:
    for tool in conversation.tools:
        if tool.name == conversation.tool_choice:
            return tool
    return conversation.tools[0]


def _describe_image(url: str) -> str:
    if url.startswith("data:"):
        return url[5:].split(";", 1)[0].split(",", 1)[0] or "data"
    return urlsplit(url).hostname or url
