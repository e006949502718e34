"""Translate a chat request proto into an Anthropic Messages request body. Pure: no I/O.

Decisions (each one is a place where the two protocols differ):

- `system` and `developer` messages, wherever they appear, become the top-level `system` (one text
  block each, in order). Anthropic has no such roles inside `messages`.
- Turns must alternate user/assistant: consecutive turns of one role are merged, and `tool`
  messages become `tool_result` blocks in a user turn. Anthropic wants the tool results first in
  their user turn, so any other user content merged into it follows them. A conversation that
  opens with an assistant turn gets a minimal user turn (".") in front, since Anthropic's first
  turn is the user's.
- `max_tokens` is required by Anthropic: `max_completion_tokens`, else `max_tokens`, else
  `DEFAULT_MAX_TOKENS` (4096, an answer of a few pages, which every Claude model can produce).
- `reasoning_effort` becomes `thinking: {"type": "enabled", "budget_tokens": THINKING_BUDGETS[effort]}`
  ("none" and "minimal" mean no thinking). Anthropic counts thinking inside `max_tokens` and wants
  `max_tokens > budget_tokens`: without a caller limit we send budget + 4096; a caller limit that
  does not exceed the budget is sent as budget + limit, so the visible answer keeps that room.
  When the last assistant turn made tool calls, Anthropic requires that turn to begin with its
  signed thinking block: it is rebuilt from the turn's `reasoning` and the signature its first
  tool call id carries (`thinking.py`). Without them thinking is left off for that request, and
  thinking blocks are only ever sent while thinking is on.
- `response_format: json_schema` uses Anthropic's structured outputs, `output_config.format =
  {"type": "json_schema", "schema": ...}`: constrained decoding, so the reply text is JSON that
  matches the schema (the strictest mechanism Anthropic offers, and GA, so no beta header). The
  alternative, a forced tool, is schema-checked only as a strict tool too, cannot be combined with
  extended thinking, and turns the answer into a tool call that must be turned back into text.
  Models that predate structured outputs answer 400, passed on as Anthropic worded it.
  `json_object` has no Anthropic counterpart (every object schema there must be closed), so it
  becomes a system instruction.
- Content parts (images, files) become blocks as `content.py` describes.
- `cache_control` (OpenRouter / LiteLLM style) is Anthropic's own: a part's goes on its block, a
  message's on the message's last block (a tool message's on its tool_result), a tool's on its
  definition, the request's at the top level (automatic caching). A system prompt with a cached
  block is sent as blocks, never folded into one string.
- `temperature` is clamped to Anthropic's 0..1 range; `user`/`safety_identifier` become
  `metadata.user_id`. From `extra_body`, only keys Anthropic's Messages API defines pass through
  (`top_k`, `thinking`, ...); they override what the translation wrote.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from server.providers.anthropic.content import (
    Block,
    cache_control,
    content_blocks,
    invalid,
    mark_last,
    resolve_media,
)
from server.providers.anthropic.thinking import split_signature
from server.providers.param_policy import ParameterSupport
from server.providers.remote_media import Media
from siraya.router.codec.fields import struct_to_dict, value_to_python
from siraya.router.v1 import chat_pb2

__all__ = [
    "ANTHROPIC_SUPPORT",
    "DEFAULT_MAX_TOKENS",
    "EXTRA_BODY_KEYS",
    "THINKING_BUDGETS",
    "resolve_media",
    "to_anthropic",
]

DEFAULT_MAX_TOKENS = 4096
# Anthropic's minimum budget is 1024; each step is 4x the last, and high + the default answer
# (20,480) stays within the output limit of every Claude model that can think.
THINKING_BUDGETS = {"low": 1024, "medium": 4096, "high": 16384}
_NO_THINKING = frozenset({"none", "minimal"})
EXTRA_BODY_KEYS = frozenset(
    {
        "top_k",
        "thinking",
        "metadata",
        "service_tier",
        "container",
        "context_management",
        "mcp_servers",
        "output_config",
    }
)
_TOOL_CHOICE_MODES = {"auto": "auto", "none": "none", "required": "any"}
_JSON_OBJECT_INSTRUCTION = "Respond with a single valid JSON object and nothing else."
_R = chat_pb2.ChatRole

ANTHROPIC_SUPPORT = ParameterSupport(
    supported=frozenset(
        {
            "temperature",
            "top_p",
            "stop",
            "max_tokens",
            "max_completion_tokens",
            "tools",
            "tool_choice",
            "parallel_tool_calls",
            "response_format",
            "reasoning_effort",
            "stream_options",
            "user",
            "safety_identifier",
            "image_url",
            "file",
            "cache_control",
        }
    )
)
"""What the translation honours; `param_policy` drops or refuses the rest (n > 1, logprobs, audio, ...)."""


# --- messages ---------------------------------------------------------------------------------


def _system_blocks(message: chat_pb2.ChatMessage, i: int) -> list[Block]:
    """The message's text blocks, with their `cache_control` (the message's own on the last)."""
    which = message.WhichOneof("content")
    blocks: list[Block] = []
    if which == "text":
        if message.text:
            blocks.append({"type": "text", "text": message.text})
    elif which == "parts":
        for j, part in enumerate(message.parts.parts):
            if part.WhichOneof("part") != "text":
                path = f"messages[{i}].content[{j}]"
                raise invalid(f"System and developer messages may hold only text parts ({path}).", path)
            if part.text.text:
                block: Block = {"type": "text", "text": part.text.text}
                if part.HasField("cache_control"):
                    block["cache_control"] = cache_control(part.cache_control)
                blocks.append(block)
    mark_last(blocks, message)
    return blocks


def _tool_use_blocks(message: chat_pb2.ChatMessage, i: int) -> list[Block]:
    blocks: list[Block] = []
    for j, call in enumerate(message.tool_calls):
        path = f"messages[{i}].tool_calls[{j}]"
        if call.type not in ("", "function"):
            raise invalid(f"Anthropic models support only function tool calls ({path}.type).", f"{path}.type")
        arguments = call.function.arguments.strip()
        try:
            parsed = orjson.loads(arguments) if arguments else {}
        except orjson.JSONDecodeError:
            raise invalid(
                f"The tool call arguments are not valid JSON ({path}.function.arguments).",
                f"{path}.function.arguments",
            ) from None
        if not isinstance(parsed, dict):
            raise invalid(
                f"The tool call arguments must be a JSON object ({path}.function.arguments).",
                f"{path}.function.arguments",
            )
        tool_use_id, _ = split_signature(call.id)
        blocks.append({"type": "tool_use", "id": tool_use_id, "name": call.function.name, "input": parsed})
    return blocks


def _thinking_block(message: chat_pb2.ChatMessage) -> list[Block]:
    """The signed thinking block an assistant turn with tool calls carried back, if it did."""
    if not message.tool_calls or not message.HasField("reasoning") or not message.reasoning:
        return []
    _, signature = split_signature(message.tool_calls[0].id)
    if signature is None:
        return []
    return [{"type": "thinking", "thinking": message.reasoning, "signature": signature}]


def _tool_result_block(message: chat_pb2.ChatMessage, i: int, media: Mapping[str, Media]) -> Block:
    if not message.HasField("tool_call_id") or not message.tool_call_id:
        raise invalid(f"A tool message needs 'tool_call_id' (messages[{i}]).", f"messages[{i}].tool_call_id")
    block: Block = {"type": "tool_result", "tool_use_id": split_signature(message.tool_call_id)[0]}
    content = content_blocks(message, i, media)
    if content:
        block["content"] = content
    if message.HasField("cache_control"):
        block["cache_control"] = cache_control(message.cache_control)
    return block


def _conversation(
    params: chat_pb2.ChatCompletionParams, media: Mapping[str, Media]
) -> tuple[list[Block], list[dict[str, Any]]]:
    """(system text blocks, alternating turns starting with the user's)."""
    system: list[Block] = []
    turns: list[dict[str, Any]] = []
    for i, message in enumerate(params.messages):
        role = message.role
        if role in (_R.CHAT_ROLE_SYSTEM, _R.CHAT_ROLE_DEVELOPER):
            system.extend(_system_blocks(message, i))
            continue
        if role == _R.CHAT_ROLE_USER:
            anthropic_role, blocks = "user", content_blocks(message, i, media)
        elif role == _R.CHAT_ROLE_ASSISTANT:
            if message.HasField("function_call"):
                raise invalid(
                    "Deprecated 'function_call' turns are not supported here; use 'tool_calls'.",
                    f"messages[{i}].function_call",
                )
            anthropic_role = "assistant"
            blocks = _thinking_block(message) + content_blocks(message, i, media)
            blocks += _tool_use_blocks(message, i)
        elif role == _R.CHAT_ROLE_TOOL:
            anthropic_role, blocks = "user", [_tool_result_block(message, i, media)]
        else:
            raise invalid(
                f"Messages with this role are not supported for Anthropic models (messages[{i}].role).",
                f"messages[{i}].role",
            )
        if role != _R.CHAT_ROLE_TOOL:
            mark_last(blocks, message)
        if not blocks:
            continue
        if turns and turns[-1]["role"] == anthropic_role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": anthropic_role, "content": blocks})
    if not turns:
        raise invalid("Anthropic models need at least one non-empty user or assistant message.", "messages")
    for turn in turns:
        content = turn["content"]
        if turn["role"] == "user" and len(content) > 1:
            # A stable sort: tool results first, everything else after them, each in request order.
            content.sort(key=lambda block: block["type"] != "tool_result")
    if turns[0]["role"] != "user":
        turns.insert(0, {"role": "user", "content": [{"type": "text", "text": "."}]})
    return system, turns


# --- tools ------------------------------------------------------------------------------------


def _tool_definition(tool: chat_pb2.ChatTool, i: int) -> Block:
    if tool.type not in ("", "function"):
        raise invalid(f"Anthropic models support only function tools (tools[{i}].type).", f"tools[{i}].type")
    function = tool.function
    definition: Block = {"name": function.name}
    if function.HasField("description"):
        definition["description"] = function.description
    if function.HasField("parameters_json"):
        definition["input_schema"] = orjson.loads(function.parameters_json)
    else:
        definition["input_schema"] = {"type": "object", "properties": {}}
    if function.strict:
        definition["strict"] = True
    if tool.HasField("cache_control"):
        definition["cache_control"] = cache_control(tool.cache_control)
    return definition


def _tools(params: chat_pb2.ChatCompletionParams) -> tuple[list[Block], Block | None]:
    """(tool definitions, tool_choice), with OpenAI's `allowed_tools` applied as a filter."""
    tools = [_tool_definition(tool, i) for i, tool in enumerate(params.tools)]
    choice: Block | None = None
    if params.HasField("tool_choice"):
        which = params.tool_choice.WhichOneof("choice")
        if which == "mode":
            mode = params.tool_choice.mode
            if mode not in _TOOL_CHOICE_MODES:
                raise invalid(f"Invalid value for 'tool_choice': '{mode}'.", "tool_choice")
            choice = {"type": _TOOL_CHOICE_MODES[mode]}
        elif which == "named":
            choice = {"type": "tool", "name": params.tool_choice.named.name}
        elif which == "other":
            tools, choice = _allowed_tools(struct_to_dict(params.tool_choice.other), tools)
    if params.HasField("parallel_tool_calls") and not params.parallel_tool_calls:
        choice = choice or {"type": "auto"}
        if choice["type"] != "none":
            choice["disable_parallel_tool_use"] = True
    return tools, choice


def _allowed_tools(raw: dict[str, Any], tools: list[Block]) -> tuple[list[Block], Block]:
    allowed = raw.get("allowed_tools") if raw.get("type") == "allowed_tools" else None
    if not isinstance(allowed, dict) or allowed.get("mode") not in ("auto", "required"):
        raise invalid("This form of 'tool_choice' is not supported for Anthropic models.", "tool_choice")
    names: set[Any] = set()
    for entry in allowed.get("tools") or []:
        if isinstance(entry, dict):
            function = entry.get("function")
            names.add(function.get("name") if isinstance(function, dict) else entry.get("name"))
    kept = [tool for tool in tools if tool["name"] in names]
    return kept, {"type": "any" if allowed["mode"] == "required" else "auto"}


# --- the request ------------------------------------------------------------------------------


def _thinking_budget(params: chat_pb2.ChatCompletionParams, turns: list[dict[str, Any]]) -> int | None:
    # A literal `thinking` in extra_body is the caller speaking Anthropic directly: it wins.
    if not params.HasField("reasoning_effort") or "thinking" in params.extra_body.fields:
        return None
    effort = params.reasoning_effort
    if effort in _NO_THINKING:
        return None
    budget = THINKING_BUDGETS.get(effort)
    if budget is None:
        expected = ", ".join(sorted(_NO_THINKING | THINKING_BUDGETS.keys()))
        raise invalid(
            f"Invalid value for 'reasoning_effort': '{effort}' (expected {expected}).", "reasoning_effort"
        )
    last_assistant = next((t for t in reversed(turns) if t["role"] == "assistant"), None)
    if (
        last_assistant
        and any(b["type"] == "tool_use" for b in last_assistant["content"])
        and last_assistant["content"][0]["type"] != "thinking"
    ):
        return None
    return budget


def _thinking_on(params: chat_pb2.ChatCompletionParams, budget: int | None) -> bool:
    if budget is not None:
        return True
    literal = params.extra_body.fields.get("thinking")
    if literal is None or literal.WhichOneof("kind") != "struct_value":
        return False
    kind = literal.struct_value.fields.get("type")
    return kind is not None and kind.string_value == "enabled"


def _keep_thinking_blocks(turns: list[dict[str, Any]], thinking_on: bool) -> None:
    """Drop carried thinking blocks unless thinking is on and the block opens its turn."""
    for turn in turns:
        if turn["role"] != "assistant":
            continue
        content = turn["content"]
        kept = [
            block
            for position, block in enumerate(content)
            if block["type"] != "thinking" or (thinking_on and position == 0)
        ]
        if len(kept) != len(content):
            turn["content"] = kept


def _response_format(params: chat_pb2.ChatCompletionParams, system: list[Block]) -> Block | None:
    if not params.HasField("response_format"):
        return None
    kind = params.response_format.type
    if kind == "json_schema":
        json_schema = params.response_format.json_schema
        if not json_schema.HasField("schema_json"):
            raise invalid(
                "'response_format.json_schema.schema' is required.", "response_format.json_schema.schema"
            )
        return {"format": {"type": "json_schema", "schema": orjson.loads(json_schema.schema_json)}}
    if kind == "json_object":
        system.append({"type": "text", "text": _JSON_OBJECT_INSTRUCTION})
    elif kind != "text":
        raise invalid(f"Invalid value for 'response_format.type': '{kind}'.", "response_format.type")
    return None


def to_anthropic(
    params: chat_pb2.ChatCompletionParams,
    upstream_model: str,
    stream: bool,
    media: Mapping[str, Media] | None = None,
) -> dict[str, Any]:
    """The JSON body for POST /v1/messages. `media` is `resolve_media(params)` (decoded here if None)."""
    system, turns = _conversation(params, media or {})
    output_config = _response_format(params, system)
    limit: int | None = None
    if params.HasField("max_completion_tokens"):
        limit = params.max_completion_tokens
    elif params.HasField("max_tokens"):
        limit = params.max_tokens
    budget = _thinking_budget(params, turns)
    _keep_thinking_blocks(turns, _thinking_on(params, budget))
    max_tokens = limit or DEFAULT_MAX_TOKENS
    if budget is not None and (limit is None or max_tokens <= budget):
        max_tokens += budget

    body: dict[str, Any] = {"model": upstream_model, "max_tokens": max_tokens, "messages": turns}
    if system:
        # One plain block is sent as a string, as the Messages API's own examples write it.
        body["system"] = system[0]["text"] if len(system) == 1 and len(system[0]) == 2 else system
    if params.stop:
        body["stop_sequences"] = list(params.stop)
    if params.HasField("temperature"):
        body["temperature"] = min(max(params.temperature, 0.0), 1.0)
    if params.HasField("top_p"):
        body["top_p"] = params.top_p
    tools, tool_choice = _tools(params)
    if tools:
        body["tools"] = tools
        if tool_choice is not None:
            body["tool_choice"] = tool_choice
    if budget is not None:
        body["thinking"] = {"type": "enabled", "budget_tokens": budget}
    if output_config is not None:
        body["output_config"] = output_config
    user = params.safety_identifier if params.HasField("safety_identifier") else params.user
    if user:
        body["metadata"] = {"user_id": user}
    if params.HasField("cache_control"):
        body["cache_control"] = cache_control(params.cache_control)
    if stream:
        body["stream"] = True
    for key, value in params.extra_body.fields.items():
        if key in EXTRA_BODY_KEYS:
            body[key] = value_to_python(value)
    return body
