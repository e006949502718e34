"""The request rules of Anthropic's Messages API that a translation can break, checked strictly.

Each check returns Anthropic-style `invalid_request_error` text naming the field by its dotted
path ("messages.2.content.0.tool_use_id"), so a translation bug fails a test with a clear reason.
The fake is stricter than the real API where the real API silently repairs (it merges consecutive
same-role turns): a gateway that relies on that repair is a gateway with a bug.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from .replies import sign_thinking

__all__ = ["RequestInvalid", "validate_request"]

_TOP_LEVEL = frozenset(
    {
        "model",
        "messages",
        "max_tokens",
        "system",
        "stop_sequences",
        "stream",
        "temperature",
        "top_p",
        "top_k",
        "tools",
        "tool_choice",
        "thinking",
        "metadata",
        "service_tier",
        "output_config",
        "container",
        "context_management",
        "mcp_servers",
        "cache_control",
    }
)
_USER_BLOCKS = frozenset({"text", "image", "document", "tool_result"})
_ASSISTANT_BLOCKS = frozenset({"text", "tool_use", "thinking", "redacted_thinking"})
_IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_TOOL_ID = re.compile(r"^[a-zA-Z0-9_-]+$")
_MIN_THINKING_BUDGET = 1024


class RequestInvalid(Exception):
    """The request breaks a documented rule; the message is what the fake answers."""


def _fail(message: str) -> RequestInvalid:
    return RequestInvalid(message)


def validate_request(body: Any) -> None:
    """Raise `RequestInvalid` for the first rule `body` breaks."""
    if not isinstance(body, dict):
        raise _fail("The request body is not a JSON object.")
    extra = sorted(set(body) - _TOP_LEVEL)
    if extra:
        raise _fail(f"{extra[0]}: Extra inputs are not permitted")
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise _fail("model: Field required")
    max_tokens = body.get("max_tokens")
    if type(max_tokens) is not int or max_tokens < 1:
        raise _fail("max_tokens: Field required (an integer >= 1)")
    _check_system(body.get("system"))
    _check_sampling(body)
    tool_names = _check_tools(body.get("tools"), body.get("tool_choice"))
    _check_messages(body.get("messages"), tool_names)
    _check_thinking(body.get("thinking"), max_tokens, body["messages"])
    _check_output_config(body.get("output_config"))
    metadata = body.get("metadata")
    if metadata is not None and (not isinstance(metadata, dict) or set(metadata) - {"user_id"}):
        raise _fail("metadata: only 'user_id' is permitted")


def _check_system(system: Any) -> None:
    if system is None or (isinstance(system, str) and system):
        return
    if isinstance(system, list) and system:
        for i, block in enumerate(system):
            if not isinstance(block, dict) or block.get("type") != "text" or not block.get("text"):
                raise _fail(f"system.{i}: expected a non-empty text block")
        return
    raise _fail("system: expected a non-empty string or a list of text blocks")


def _check_sampling(body: dict[str, Any]) -> None:
    for key in ("temperature", "top_p"):
        value = body.get(key)
        if value is not None and (not isinstance(value, (int, float)) or not 0 <= value <= 1):
            raise _fail(f"{key}: must be a number between 0 and 1")
    top_k = body.get("top_k")
    if top_k is not None and (type(top_k) is not int or top_k < 0):
        raise _fail("top_k: must be a non-negative integer")
    stops = body.get("stop_sequences")
    if stops is not None and (
        not isinstance(stops, list) or not all(isinstance(s, str) and s for s in stops)
    ):
        raise _fail("stop_sequences: expected a list of non-empty strings")
    if "stream" in body and not isinstance(body["stream"], bool):
        raise _fail("stream: expected a boolean")


def _check_tools(tools: Any, choice: Any) -> set[str]:
    names: set[str] = set()
    if tools is not None:
        if not isinstance(tools, list):
            raise _fail("tools: expected a list")
        for i, tool in enumerate(tools):
            if not isinstance(tool, dict) or not _TOOL_NAME.match(str(tool.get("name", ""))):
                raise _fail(f"tools.{i}.name: String should match pattern '^[a-zA-Z0-9_-]{{1,64}}$'")
            extra = sorted(set(tool) - {"name", "description", "input_schema", "strict", "cache_control"})
            if extra:
                raise _fail(f"tools.{i}.{extra[0]}: Extra inputs are not permitted")
            schema = tool.get("input_schema")
            if not isinstance(schema, dict) or schema.get("type") != "object":
                raise _fail(f"tools.{i}.input_schema: Input should be a JSON Schema with type 'object'")
            names.add(tool["name"])
    if choice is None:
        return names
    if not isinstance(choice, dict) or choice.get("type") not in ("auto", "any", "tool", "none"):
        raise _fail("tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'")
    allowed = {"type", "disable_parallel_tool_use"} | ({"name"} if choice["type"] == "tool" else set())
    extra = sorted(set(choice) - allowed)
    if extra:
        raise _fail(f"tool_choice.{extra[0]}: Extra inputs are not permitted")
    if choice["type"] == "tool" and choice.get("name") not in names:
        raise _fail(f"tool_choice.name: no tool named '{choice.get('name')}' was given")
    if choice["type"] in ("any", "tool") and not names:
        raise _fail("tool_choice: requires 'tools'")
    return names


def _check_messages(messages: Any, tool_names: set[str]) -> None:
    if not isinstance(messages, list) or not messages:
        raise _fail("messages: at least one message is required")
    pending: set[str] = set()
    previous: str | None = None
    for i, message in enumerate(messages):
        where = f"messages.{i}"
        if not isinstance(message, dict) or set(message) - {"role", "content"}:
            raise _fail(f"{where}: expected an object with only 'role' and 'content'")
        role = message.get("role")
        if role == "system" and i > 0:
            # A mid-conversation system message (Claude Opus 4.8+): text, right after a user turn.
            _check_mid_conversation_system(message, messages[i - 1], where)
            continue
        if role not in ("user", "assistant"):
            raise _fail(
                f"{where}.role: Input should be 'user' or 'assistant' (system goes in the top-level 'system')"
            )
        if i == 0 and role != "user":
            raise _fail(f"{where}.role: the first message must use the 'user' role")
        if previous == role:
            raise _fail(
                f"messages: roles must alternate between 'user' and 'assistant', but {where} repeats '{role}'"
            )
        previous = role
        content = message.get("content")
        if isinstance(content, str):
            if not content:
                raise _fail(f"{where}.content: must be non-empty")
            blocks: list[Any] = [{"type": "text", "text": content}]
        elif isinstance(content, list) and content:
            blocks = content
        else:
            raise _fail(f"{where}.content: expected a non-empty string or list of content blocks")
        if role == "user":
            _check_user_blocks(blocks, where, pending)
            pending = set()
        else:
            if pending:
                raise _fail(
                    f"{where}: tool_use ids {sorted(pending)} have no tool_result in the message before"
                )
            pending = _check_assistant_blocks(blocks, where)


def _check_mid_conversation_system(message: dict[str, Any], before: Any, where: str) -> None:
    if not isinstance(before, dict) or before.get("role") != "user":
        raise _fail(f"{where}.role: a system message must come right after a user message")
    content = message.get("content")
    if isinstance(content, str) and content:
        return
    if not isinstance(content, list) or not content:
        raise _fail(f"{where}.content: expected a non-empty string or list of text blocks")
    for j, block in enumerate(content):
        if not isinstance(block, dict) or block.get("type") != "text":
            raise _fail(f"{where}.content.{j}.type: a system message holds only text blocks")
        _check_block(block, f"{where}.content.{j}")


def _check_user_blocks(blocks: list[Any], where: str, pending: set[str]) -> None:
    seen_other = False
    answered: set[str] = set()
    for j, block in enumerate(blocks):
        path = f"{where}.content.{j}"
        kind = block.get("type") if isinstance(block, dict) else None
        if kind not in _USER_BLOCKS:
            raise _fail(f"{path}.type: '{kind}' is not a user content block")
        if kind == "tool_result":
            if seen_other:
                raise _fail(f"{path}: tool_result blocks must come before any other content in the message")
            tool_use_id = block.get("tool_use_id")
            if tool_use_id not in pending:
                raise _fail(
                    f"{path}.tool_use_id: unexpected tool_use_id '{tool_use_id}': each tool_result"
                    " must answer a tool_use block of the previous assistant message"
                )
            answered.add(tool_use_id)
            content = block.get("content")
            if content is not None and not isinstance(content, str):
                for k, inner in enumerate(content):
                    if not isinstance(inner, dict) or inner.get("type") not in ("text", "image"):
                        raise _fail(f"{path}.content.{k}: expected a text or image block")
                    _check_block(inner, f"{path}.content.{k}")
            continue
        seen_other = True
        _check_block(block, path)
    if pending - answered:
        raise _fail(
            f"{where}: tool_use ids {sorted(pending - answered)} were found without tool_result blocks"
        )


def _check_assistant_blocks(blocks: list[Any], where: str) -> set[str]:
    ids: set[str] = set()
    for j, block in enumerate(blocks):
        path = f"{where}.content.{j}"
        kind = block.get("type") if isinstance(block, dict) else None
        if kind not in _ASSISTANT_BLOCKS:
            raise _fail(f"{path}.type: '{kind}' is not an assistant content block")
        if kind == "tool_use":
            if not _TOOL_ID.match(str(block.get("id", ""))):
                raise _fail(f"{path}.id: String should match pattern '^[a-zA-Z0-9_-]+$'")
            if not isinstance(block.get("name"), str) or not isinstance(block.get("input"), dict):
                raise _fail(f"{path}: tool_use needs a string 'name' and an object 'input'")
            ids.add(block["id"])
        elif kind == "thinking":
            if not block.get("signature"):
                raise _fail(f"{path}.signature: Field required")
            if block["signature"] != sign_thinking(str(block.get("thinking"))):
                raise _fail(f"{path}: Invalid `signature` in `thinking` block")
        else:
            _check_block(block, path)
    return ids


def _check_block(block: dict[str, Any], path: str) -> None:
    kind = block["type"]
    if kind == "text":
        if not isinstance(block.get("text"), str) or not block["text"]:
            raise _fail(f"{path}.text: text content blocks must be non-empty")
    elif kind == "image":
        source = block.get("source") or {}
        if source.get("type") == "base64":
            if source.get("media_type") not in _IMAGE_TYPES:
                raise _fail(
                    f"{path}.source.media_type: Input should be 'image/jpeg', 'image/png', 'image/gif'"
                    " or 'image/webp'"
                )
            _check_base64(source.get("data"), f"{path}.source.data")
        elif source.get("type") == "url":
            if not str(source.get("url", "")).startswith("https://"):
                raise _fail(f"{path}.source.url: only https URLs are supported")
        else:
            raise _fail(f"{path}.source.type: Input should be 'base64' or 'url'")
    elif kind == "document":
        source = block.get("source") or {}
        if source.get("type") == "base64" and source.get("media_type") == "application/pdf":
            data = _check_base64(source.get("data"), f"{path}.source.data")
            if not data.startswith(b"%PDF-"):
                raise _fail(f"{path}.source.data: The PDF specified was not valid.")
        elif source.get("type") == "text" and source.get("media_type") == "text/plain":
            if not isinstance(source.get("data"), str):
                raise _fail(f"{path}.source.data: expected a string")
        elif source.get("type") != "url":
            raise _fail(f"{path}.source: expected a base64 PDF, a text/plain text source or a url source")


def _check_base64(data: Any, path: str) -> bytes:
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise _fail(f"{path}: invalid base64 data") from None


def _check_thinking(thinking: Any, max_tokens: int, messages: list[dict[str, Any]]) -> None:
    if thinking is None:
        return
    if not isinstance(thinking, dict) or thinking.get("type") not in ("enabled", "disabled", "adaptive"):
        raise _fail("thinking.type: Input should be 'enabled', 'disabled' or 'adaptive'")
    if thinking["type"] != "enabled":
        # "adaptive": the model decides whether and how long to think (Claude Code sends it).
        return
    budget = thinking.get("budget_tokens")
    if type(budget) is not int or budget < _MIN_THINKING_BUDGET:
        raise _fail(
            f"thinking.budget_tokens: Input should be greater than or equal to {_MIN_THINKING_BUDGET}"
        )
    if max_tokens <= budget:
        raise _fail("max_tokens must be greater than thinking.budget_tokens")
    last = next((m for m in reversed(messages) if m["role"] == "assistant"), None)
    if last is None or isinstance(last["content"], str):
        return
    kinds = [block["type"] for block in last["content"]]
    if "tool_use" in kinds and kinds[0] not in ("thinking", "redacted_thinking"):
        raise _fail(
            f"messages.{messages.index(last)}.content.0.type: Expected `thinking` or `redacted_thinking`, but"
            f" found `{kinds[0]}`. When `thinking` is enabled, a final `assistant` message must start with a"
            " thinking block."
        )


def _check_output_config(config: Any) -> None:
    if config is None:
        return
    fmt = config.get("format") if isinstance(config, dict) else None
    if fmt is None:
        return
    if (
        not isinstance(fmt, dict)
        or fmt.get("type") != "json_schema"
        or not isinstance(fmt.get("schema"), dict)
    ):
        raise _fail("output_config.format: expected {'type': 'json_schema', 'schema': {...}}")
