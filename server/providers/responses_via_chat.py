"""Serve the Responses API on an upstream that only speaks chat completions.

`response_params_to_chat` turns a Responses request into a chat request, `chat_completion_to_response`
turns the completion back into a Response, and `ChatStreamToResponseEvents` (in
`responses_chat_stream`) turns a chunk stream into the typed event sequence. Pure functions, no I/O.

What chat cannot express is refused with `InvalidRequest` naming the field, never silently
dropped: hosted (non-function) tools, item types other than messages, function calls and their
outputs, and server-side state (`previous_response_id`, `conversation`, `prompt`, `background`).
Dropped because ignoring them cannot change a correct answer: reasoning items in the input (chat
has no slot for them), `include` (extra output data), `truncation` and `max_tool_calls` (which only
counts built-in tool calls, and there are none). One exception: a reasoning item right before
function calls whose ids carry a thinking signature (`__ts_`, minted by the Anthropic and Gemini
adapters) becomes that assistant turn's `reasoning`, so Anthropic can rebuild its signed thinking
block and keep thinking on through a tool loop.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from typing import Any

from google.protobuf import struct_pb2
from google.protobuf.internal.containers import RepeatedCompositeFieldContainer

from server.errors import InvalidRequest
from server.providers.responses_chat_stream import ChatStreamToResponseEvents
from server.providers.responses_envelope import (
    fill_usage,
    incomplete_reason,
    item_id,
    output_annotations,
    output_logprobs,
    response_envelope,
)
from siraya.router.codec.fields import struct_to_dict
from siraya.router.v1 import chat_pb2, responses_pb2

__all__ = [
    "ChatStreamToResponseEvents",
    "chat_completion_to_response",
    "response_params_to_chat",
    "responses_param",
]

_CODE = "unsupported_parameter"
_ROLES = {
    "user": chat_pb2.CHAT_ROLE_USER,
    "assistant": chat_pb2.CHAT_ROLE_ASSISTANT,
    "system": chat_pb2.CHAT_ROLE_SYSTEM,
    "developer": chat_pb2.CHAT_ROLE_DEVELOPER,
}
_TEXT_PARTS = frozenset({"input_text", "output_text"})
_LOGPROBS_INCLUDE = "message.output_text.logprobs"
# Simple parameters with the same name and meaning in both APIs.
_SAME_NAME = (
    "temperature",
    "top_p",
    "parallel_tool_calls",
    "user",
    "service_tier",
    "store",
    "safety_identifier",
    "prompt_cache_key",
    "prompt_cache_retention",
)


def _unsupported(message: str, param: str) -> InvalidRequest:
    return InvalidRequest(message, param=param, code=_CODE)


# --- request ----------------------------------------------------------------------------------


def response_params_to_chat(
    params: responses_pb2.ResponseParams, origins: list[str] | None = None
) -> chat_pb2.ChatCompletionParams:
    """Translate a Responses request into the chat request that answers it.

    With `origins`, the Responses path each chat message came from is appended to it, one entry
    per message ("instructions", "input", "input[3]"), for naming a part in an error.
    """
    _refuse_server_state(params)
    chat = chat_pb2.ChatCompletionParams(model=params.model)
    messages = chat.messages
    if params.HasField("instructions"):
        messages.add(role=chat_pb2.CHAT_ROLE_SYSTEM, text=params.instructions)
        if origins is not None:
            origins.append("instructions")
    source = params.WhichOneof("input")
    if source == "input_text":
        messages.add(role=chat_pb2.CHAT_ROLE_USER, text=params.input_text)
        if origins is not None:
            origins.append("input")
    elif source == "input_items":
        _translate_items(params.input_items.items, messages, origins)

    for index, tool in enumerate(params.tools):
        if tool.type != "function":
            raise _unsupported(
                f"Tool type '{tool.type}' is not supported by this model's provider, only function tools.",
                f"tools[{index}]",
            )
        function = chat.tools.add(type="function").function
        function.name = tool.name
        if tool.HasField("description"):
            function.description = tool.description
        if tool.HasField("parameters_json"):
            function.parameters_json = tool.parameters_json
        if tool.HasField("strict"):
            function.strict = tool.strict
    if params.HasField("tool_choice"):
        _translate_tool_choice(params.tool_choice, chat.tool_choice)
    if params.HasField("text"):
        _translate_text(params.text, chat)

    has = params.HasField
    for name in _SAME_NAME:
        if has(name):
            setattr(chat, name, getattr(params, name))
    if has("max_output_tokens"):
        chat.max_completion_tokens = params.max_output_tokens
    wants_logprobs = _LOGPROBS_INCLUDE in params.include
    if has("top_logprobs") and (params.top_logprobs > 0 or wants_logprobs):
        chat.top_logprobs = params.top_logprobs
        wants_logprobs = True
    if wants_logprobs:
        chat.logprobs = True
    if params.metadata:
        chat.metadata.update(params.metadata)
    if params.reasoning.HasField("effort"):
        chat.reasoning_effort = params.reasoning.effort
    if has("routing"):
        chat.routing.CopyFrom(params.routing)
    if params.extra_body.fields:
        _copy_extra_body(params.extra_body, chat.extra_body)
    return chat


_MESSAGE_PATH = re.compile(r"messages\[(\d+)\]")


def responses_param(params: responses_pb2.ResponseParams, param: str | None) -> str | None:
    """The Responses path for a chat request path: "messages[2].content[1]" -> "input[1].content[1]".

    Only for error reports (it translates the request again); other params come back unchanged.
    """
    match = _MESSAGE_PATH.match(param or "")
    if param is None or match is None:
        return param
    origins: list[str] = []
    response_params_to_chat(params, origins)
    position = int(match.group(1))
    return origins[position] + param[match.end() :] if position < len(origins) else param


def _refuse_server_state(params: responses_pb2.ResponseParams) -> None:
    # Each of these needs state the gateway does not keep for a chat-only upstream.
    for name in ("previous_response_id", "conversation", "prompt"):
        if params.HasField(name):
            raise _unsupported(f"'{name}' is not supported by this model's provider.", name)
    if params.background:
        raise _unsupported("Background responses are not supported by this model's provider.", "background")


# Tool call ids that carry a thinking signature (see anthropic/thinking.py, gemini/tool_ids.py).
_SIGNED_CALL_MARK = "__ts_"


def _translate_items(
    items: Sequence[responses_pb2.ResponseItem],
    messages: RepeatedCompositeFieldContainer[chat_pb2.ChatMessage],
    origins: list[str] | None = None,
) -> None:
    # The assistant turn that collects a run of function calls, while the run lasts.
    calls_turn: chat_pb2.ChatMessage | None = None
    # The summary of a reasoning item, until the turn it precedes is known.
    reasoning: str | None = None
    for index, item in enumerate(items):
        kind = item.type
        if origins is not None:
            # The messages the previous item added come from it.
            origins.extend(f"input[{index - 1}]" for _ in range(len(messages) - len(origins)))
        if kind == "function_call":
            if calls_turn is None:
                last = messages[-1] if messages else None
                # Text then calls is one assistant turn in chat; keep them together.
                if last is not None and last.role == chat_pb2.CHAT_ROLE_ASSISTANT and not last.tool_calls:
                    calls_turn = last
                else:
                    calls_turn = messages.add(role=chat_pb2.CHAT_ROLE_ASSISTANT)
                if reasoning and _SIGNED_CALL_MARK in item.call_id:
                    calls_turn.reasoning = reasoning
            reasoning = None
            call = calls_turn.tool_calls.add(id=item.call_id, type="function")
            call.function.name = item.name
            call.function.arguments = item.arguments
            continue
        if kind == "reasoning":
            # Chat has no slot for a previous turn's reasoning, except a signed tool turn's (above).
            reasoning = "".join(part.text for part in item.summary)
            continue
        calls_turn = None
        if not (kind == "message" and item.role == "assistant"):
            reasoning = None
        if kind == "message":
            role = _ROLES.get(item.role)
            if role is None:
                raise InvalidRequest(f"Invalid message role '{item.role}'.", param=f"input[{index}].role")
            _translate_message(item, messages.add(role=role), index)
        elif kind == "function_call_output":
            answer = messages.add(role=chat_pb2.CHAT_ROLE_TOOL, tool_call_id=item.call_id)
            if item.HasField("output"):
                answer.text = item.output
            else:
                answer.text = _output_parts_text(item.raw, index)
        else:
            raise _unsupported(
                f"Input items of type '{kind}' are not supported by this model's provider.", f"input[{index}]"
            )
    if origins is not None:
        origins.extend(f"input[{len(items) - 1}]" for _ in range(len(messages) - len(origins)))


def _translate_message(item: responses_pb2.ResponseItem, message: chat_pb2.ChatMessage, index: int) -> None:
    if item.HasField("content_text"):
        message.text = item.content_text
        return
    parts: list[chat_pb2.ChatContentPart] = []
    for position, part in enumerate(item.content):
        kind = part.type
        param = f"input[{index}].content[{position}]"
        if kind in _TEXT_PARTS:
            parts.append(chat_pb2.ChatContentPart(text=chat_pb2.TextPart(text=part.text)))
        elif kind == "refusal" and message.role == chat_pb2.CHAT_ROLE_ASSISTANT:
            message.refusal = message.refusal + part.refusal
        elif kind == "input_image":
            if not part.HasField("image_url"):
                raise _unsupported(
                    "Images given by file_id are not supported by this model's provider.", param
                )
            image = chat_pb2.ImageUrlPart(url=part.image_url)
            if part.HasField("detail"):
                image.detail = part.detail
            parts.append(chat_pb2.ChatContentPart(image_url=image))
        elif kind == "input_file" and (part.HasField("file_data") or part.HasField("file_id")):
            file = chat_pb2.FilePart()
            for key in ("file_data", "file_id", "filename"):
                if part.HasField(key):
                    setattr(file, key, getattr(part, key))
            parts.append(chat_pb2.ChatContentPart(file=file))
        else:
            raise _unsupported(
                f"Content parts of type '{kind}' are not supported by this model's provider.", param
            )
    if len(parts) == 1 and parts[0].HasField("text"):
        message.text = parts[0].text.text
    elif parts:
        message.parts.parts.extend(parts)
    elif message.role != chat_pb2.CHAT_ROLE_ASSISTANT:
        message.text = ""


def _output_parts_text(raw: struct_pb2.Struct, index: int) -> str:
    # A function_call_output given as parts: a tool message can only carry their text.
    texts = []
    for position, part in enumerate(struct_to_dict(raw).get("output") or ()):
        if part.get("type") not in _TEXT_PARTS:
            raise _unsupported(
                "Only text parts are supported in a function_call_output by this model's provider.",
                f"input[{index}].output[{position}]",
            )
        texts.append(part.get("text") or "")
    return "".join(texts)


def _translate_tool_choice(choice: responses_pb2.ResponseToolChoice, target: chat_pb2.ToolChoice) -> None:
    kind = choice.WhichOneof("choice")
    if kind == "mode":
        target.mode = choice.mode
    elif kind == "function_name":
        target.named.type = "function"
        target.named.name = choice.function_name
    elif kind == "other":
        other = struct_to_dict(choice.other)
        tools = other.get("tools")
        if other.get("type") != "allowed_tools" or not isinstance(tools, list):
            raise _unsupported("This tool_choice is not supported by this model's provider.", "tool_choice")
        named: list[Any] = []
        for tool in tools:
            if not isinstance(tool, dict) or tool.get("type") != "function":
                raise _unsupported(
                    "Only function tools can be allowed on this model's provider.", "tool_choice"
                )
            named.append({"type": "function", "function": {"name": tool.get("name")}})
        target.other.update(
            {"type": "allowed_tools", "allowed_tools": {"mode": other.get("mode") or "auto", "tools": named}}
        )


def _translate_text(text: responses_pb2.ResponseTextConfig, chat: chat_pb2.ChatCompletionParams) -> None:
    fmt = text.format
    if fmt.type == "json_schema":
        chat.response_format.type = "json_schema"
        schema = chat.response_format.json_schema
        schema.name = fmt.name
        if fmt.HasField("description"):
            schema.description = fmt.description
        if fmt.HasField("schema_json"):
            schema.schema_json = fmt.schema_json
        if fmt.HasField("strict"):
            schema.strict = fmt.strict
    elif fmt.type == "json_object":
        chat.response_format.type = "json_object"
    if text.HasField("verbosity"):
        chat.verbosity = text.verbosity


def _copy_extra_body(extra: struct_pb2.Struct, target: struct_pb2.Struct) -> None:
    # The request codec parks a `text` or `reasoning` it cannot model here; neither is a chat field.
    if "text" in extra.fields:
        raise _unsupported("This text format is not supported by this model's provider.", "text.format")
    target.CopyFrom(extra)
    if "reasoning" in target.fields:
        del target.fields["reasoning"]


# --- response ---------------------------------------------------------------------------------


def chat_completion_to_response(
    completion: chat_pb2.ChatCompletion, params: responses_pb2.ResponseParams, response_id: str
) -> responses_pb2.Response:
    """The Response for a chat completion that answered `response_params_to_chat(params)`."""
    choice = completion.choices[0] if completion.choices else None
    reason = incomplete_reason(choice.finish_reason) if choice is not None else None
    response = response_envelope(
        params,
        response_id,
        completion.created or int(time.time()),
        completion.model or params.model,
        "incomplete" if reason else "completed",
    )
    if reason:
        response.incomplete_details.reason = reason
    else:
        response.completed_at = int(time.time())
    if completion.HasField("provider"):
        response.provider = completion.provider
    if completion.HasField("service_tier"):
        response.service_tier = completion.service_tier
    if choice is not None:
        _add_output(choice, response, response_id, "incomplete" if reason else "completed")
    if completion.HasField("usage"):
        fill_usage(completion.usage, response.usage)
    return response


def _add_output(
    choice: chat_pb2.ChatCompletionChoice, response: responses_pb2.Response, response_id: str, status: str
) -> None:
    message, output = choice.message, response.output
    if message.reasoning:
        item = output.add(type="reasoning", id=item_id("rs", response_id, len(output)))
        item.summary.add(type="summary_text", text=message.reasoning)
    has_text = message.HasField("content") and (bool(message.content) or not message.tool_calls)
    if has_text or message.refusal:
        item = output.add(
            type="message", id=item_id("msg", response_id, len(output)), status=status, role="assistant"
        )
        if has_text:
            part = item.content.add(type="output_text", text=message.content)
            for annotation in output_annotations(message.annotations):
                part.annotations.add().update(annotation)
            part.logprobs.SetInParent()
            if choice.logprobs.content:
                part.logprobs.extend(output_logprobs(choice.logprobs.content))
        if message.refusal:
            item.content.add(type="refusal", refusal=message.refusal)
    for call in message.tool_calls:
        output.add(
            type="function_call",
            id=item_id("fc", response_id, len(output)),
            status="completed",
            arguments=call.function.arguments,
            call_id=call.id,
            name=call.function.name,
        )
