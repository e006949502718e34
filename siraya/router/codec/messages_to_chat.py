"""A Messages request (`MessageParams`) as the gateway's internal chat request. Pure: no I/O.

The gateway has one pipeline, keyed on `ChatCompletionParams`; the Anthropic front door joins it
by translating here. Decisions, where the two protocols differ:

- `system` (a string, or text blocks) becomes one system message, first.
- A user turn's `tool_result` blocks become `tool` messages, in order, ahead of the rest of the
  turn (OpenAI wants the tool messages right after the assistant turn that called the tools); the
  turn's other blocks follow as one user message. `is_error` has no chat counterpart and is dropped
  (the result's text still reaches the model).
- An assistant turn's text blocks become its content, `tool_use` blocks its `tool_calls` (the
  `input` object's JSON text, unchanged, as the arguments), and thinking blocks its `reasoning`.
  When the turn has exactly one thinking block with a signature and no redacted thinking, the
  signature rides in the first tool call's id (`thinking_signatures.py`), which is how the native
  adapters hand a signature back to Anthropic or Gemini; the matching tool_result ids follow, so
  every id stays consistent for OpenAI-compatible upstreams too. Redacted thinking is dropped.
- Images become `image_url` parts (base64 as a data: URL); a PDF becomes a `file` part with its
  bytes as a data: URL; a plain-text document becomes a text part. File ids and document URLs
  mean nothing outside Anthropic and are refused.
- `max_tokens` is `max_completion_tokens`; `stop_sequences` is `stop`; `metadata.user_id` is
  `user`; `service_tier` "standard_only" is "default"; `top_k` travels in `extra_body`, which the
  native adapters and llama.cpp read and OpenAI-compatible servers receive as sent.
- `thinking` becomes `reasoning_effort`: an enabled budget under 4096 tokens is "low", under
  16384 "medium", above that "high" (the Anthropic adapter's own budgets are 1024, 4096 and
  16384, so Claude never thinks longer than asked); "adaptive" is "medium"; "disabled" leaves the
  model's default. `output_config.format` is `response_format` json_schema and
  `output_config.effort` a `reasoning_effort` when `thinking` set none.
- `tool_choice` any / tool / none are "required" / the named function / "none";
  `disable_parallel_tool_use` is `parallel_tool_calls: false`.
- A mid-conversation `system` message (Claude Opus 4.8 and later) becomes a system message where
  it stands; the Anthropic adapter lifts every system message into the top-level `system`, and
  OpenAI-compatible upstreams take them in place.
- `cache_control` travels as the chat request's own (OpenRouter / LiteLLM style) `cache_control`:
  on a text, image or document block it marks that content part; on a system block, the system
  message's part; on a tool_result, the tool message (its last block, where the Anthropic adapter
  puts it back); on a tool_use, the assistant message (likewise, so on its last block); on a tool,
  the tool; at the top level, the request. So a Claude upstream reached by translation (a gRPC
  caller's proto, a fallback) caches what the client marked; other upstreams never see it.
- `context_management` and `inference_geo` are dropped (they change cost or where the request runs,
  never the answer).
- Server tools, `container` and `mcp_servers` need Anthropic's servers and are refused with the
  field named.
- Any other unknown top-level key reaches the upstream in `extra_body`, as on the chat endpoint.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import orjson
from google.protobuf import struct_pb2

from siraya.router.codec.errors import CodecError
from siraya.router.codec.fields import value_to_python
from siraya.router.codec.thinking_signatures import join_signature, split_signature
from siraya.router.v1 import chat_pb2, common_pb2, messages_pb2

__all__ = ["effort_for_budget", "to_chat_params"]

_LOW_BELOW = 4096
_MEDIUM_BELOW = 16384
_EFFORTS = {"low": "low", "medium": "medium", "high": "high", "max": "high"}
_SERVICE_TIERS = {"auto": "auto", "standard_only": "default"}
# Anthropic request fields that only Anthropic's own servers can honour.
_ANTHROPIC_ONLY = frozenset({"container", "mcp_servers"})
# Anthropic request fields whose absence cannot make an answer wrong.
_DROPPED = frozenset({"context_management", "inference_geo"})
_R = chat_pb2.ChatRole


class _Cacheable(Protocol):
    """A Messages block, tool or request: anything with a `cache_control`."""

    @property
    def cache_control(self) -> messages_pb2.MessageCacheControl: ...

    def HasField(self, field_name: str) -> bool: ...


class _CacheTarget(Protocol):
    @property
    def cache_control(self) -> common_pb2.CacheControl: ...


def _refuse(param: str, message: str) -> CodecError:
    return CodecError(f"{param}: {message}", param, "unsupported_parameter")


def effort_for_budget(budget: int) -> str:
    """The reasoning_effort for an Anthropic thinking budget."""
    if budget < _LOW_BELOW:
        return "low"
    return "medium" if budget < _MEDIUM_BELOW else "high"


def to_chat_params(params: messages_pb2.MessageParams) -> chat_pb2.ChatCompletionParams:
    """The chat request that asks any model what `params` asks."""
    chat = chat_pb2.ChatCompletionParams(model=params.model)
    _system(params, chat)
    # A client's tool_use id -> the chat tool-call id, when a signature was joined to it.
    ids: dict[str, str] = {}
    for i, message in enumerate(params.messages):
        if message.role == messages_pb2.MESSAGE_ROLE_USER:
            _user_turn(message, i, chat, ids)
        elif message.role == messages_pb2.MESSAGE_ROLE_ASSISTANT:
            _assistant_turn(message, i, chat, ids)
        elif message.role == messages_pb2.MESSAGE_ROLE_SYSTEM:
            _system_turn(message, chat, i)
        else:
            raise CodecError(
                f"messages.{i}.role: Input should be 'user', 'assistant' or 'system'", f"messages.{i}.role"
            )
    _options(params, chat)
    _cache(params, chat)
    _tools(params, chat)
    _extra_body(params, chat)
    if params.HasField("routing"):
        chat.routing.CopyFrom(params.routing)
    return chat


# --- turns ------------------------------------------------------------------------------------


def _system(params: messages_pb2.MessageParams, chat: chat_pb2.ChatCompletionParams) -> None:
    which = params.WhichOneof("system")
    if which == "system_text":
        if params.system_text:
            chat.messages.add(role=_R.CHAT_ROLE_SYSTEM, text=params.system_text)
    elif which == "system_blocks":
        _system_blocks(params.system_blocks.blocks, chat)


def _system_blocks(
    blocks: Sequence[messages_pb2.MessageTextBlock], chat: chat_pb2.ChatCompletionParams
) -> None:
    """Text blocks as one system message: a string, or parts when there are several or one is cached."""
    kept = [block for block in blocks if block.text]
    if len(kept) == 1 and not kept[0].HasField("cache_control"):
        chat.messages.add(role=_R.CHAT_ROLE_SYSTEM, text=kept[0].text)
    elif kept:
        parts = chat.messages.add(role=_R.CHAT_ROLE_SYSTEM).parts.parts
        for block in kept:
            part = parts.add()
            part.text.text = block.text
            _cache(block, part)


def _cache(block: _Cacheable, target: _CacheTarget) -> None:
    """Carry a block's `cache_control` onto the chat part, message, tool or request."""
    if block.HasField("cache_control"):
        control = block.cache_control
        target.cache_control.type = control.type
        if control.HasField("ttl"):
            target.cache_control.ttl = control.ttl


def _system_turn(message: messages_pb2.InputMessage, chat: chat_pb2.ChatCompletionParams, i: int) -> None:
    """A mid-conversation system message: text, or text blocks."""
    if message.WhichOneof("content") == "text":
        if message.text:
            chat.messages.add(role=_R.CHAT_ROLE_SYSTEM, text=message.text)
        return
    texts: list[messages_pb2.MessageTextBlock] = []
    for j, block in enumerate(message.blocks.blocks):
        if block.WhichOneof("block") != "text":
            raise _refuse(
                f"messages.{i}.content.{j}.type", "a system message may hold only text blocks for this model"
            )
        texts.append(block.text)
    _system_blocks(texts, chat)


def _user_turn(
    message: messages_pb2.InputMessage, i: int, chat: chat_pb2.ChatCompletionParams, ids: dict[str, str]
) -> None:
    if message.WhichOneof("content") == "text":
        chat.messages.add(role=_R.CHAT_ROLE_USER, text=message.text)
        return
    parts: list[chat_pb2.ChatContentPart] = []
    for j, block in enumerate(message.blocks.blocks):
        path = f"messages.{i}.content.{j}"
        if block.WhichOneof("block") == "tool_result":
            _tool_message(block.tool_result, path, chat, ids)
        else:
            parts.append(_user_part(block, path))
    if len(parts) == 1 and parts[0].WhichOneof("part") == "text" and not parts[0].HasField("cache_control"):
        chat.messages.add(role=_R.CHAT_ROLE_USER, text=parts[0].text.text)
    elif parts:
        chat.messages.add(role=_R.CHAT_ROLE_USER).parts.parts.extend(parts)


def _tool_message(
    result: messages_pb2.MessageToolResultBlock,
    path: str,
    chat: chat_pb2.ChatCompletionParams,
    ids: dict[str, str],
) -> None:
    tool = chat.messages.add(
        role=_R.CHAT_ROLE_TOOL, tool_call_id=ids.get(result.tool_use_id, result.tool_use_id)
    )
    _cache(result, tool)
    which = result.WhichOneof("content")
    if which == "blocks":
        parts = [_user_part(inner, f"{path}.content.{k}") for k, inner in enumerate(result.blocks.blocks)]
        if parts and all(
            part.WhichOneof("part") == "text" and not part.HasField("cache_control") for part in parts
        ):
            tool.text = "\n".join(part.text.text for part in parts)
        else:
            tool.parts.parts.extend(parts)
    else:
        tool.text = result.text


def _user_part(block: messages_pb2.MessageContentBlock, path: str) -> chat_pb2.ChatContentPart:
    kind = block.WhichOneof("block")
    part = chat_pb2.ChatContentPart()
    if kind == "text":
        part.text.text = block.text.text
        _cache(block.text, part)
    elif kind == "image":
        part.image_url.url = _image_url(block.image, f"{path}.source")
        _cache(block.image, part)
    elif kind == "document":
        _document_part(block.document, part, f"{path}.source")
        _cache(block.document, part)
    else:
        name = kind if kind != "other" else block.other.fields["type"].string_value
        raise _refuse(f"{path}.type", f"'{name}' blocks cannot be sent in a user turn to this model")
    return part


def _image_url(image: messages_pb2.MessageImageBlock, path: str) -> str:
    which = image.WhichOneof("source")
    if which == "base64":
        return f"data:{image.base64.media_type};base64,{image.base64.data}"
    if which == "url":
        return image.url.url
    raise _refuse(f"{path}.type", "file sources are only understood by Anthropic's own API")


def _document_part(
    document: messages_pb2.MessageDocumentBlock, part: chat_pb2.ChatContentPart, path: str
) -> None:
    which = document.WhichOneof("source")
    if which == "base64":
        part.file.file_data = f"data:{document.base64.media_type};base64,{document.base64.data}"
        part.file.filename = document.title if document.HasField("title") else "document.pdf"
    elif which == "text":
        title = f"{document.title}\n\n" if document.HasField("title") and document.title else ""
        part.text.text = title + document.text.data
    else:
        raise _refuse(
            f"{path}.type", f"'{which}' document sources cannot be sent to this model; send the PDF as base64"
        )


def _assistant_turn(
    message: messages_pb2.InputMessage, i: int, chat: chat_pb2.ChatCompletionParams, ids: dict[str, str]
) -> None:
    turn = chat.messages.add(role=_R.CHAT_ROLE_ASSISTANT)
    if message.WhichOneof("content") == "text":
        turn.text = message.text
        return
    texts: list[messages_pb2.MessageTextBlock] = []
    thoughts: list[str] = []
    signatures: list[str] = []
    redacted = False
    for j, block in enumerate(message.blocks.blocks):
        kind = block.WhichOneof("block")
        if kind == "text":
            if block.text.text:
                texts.append(block.text)
        elif kind == "thinking":
            thoughts.append(block.thinking.thinking)
            signatures.append(block.thinking.signature)
        elif kind == "redacted_thinking":
            redacted = True
        elif kind == "tool_use":
            call = turn.tool_calls.add(id=block.tool_use.id, type="function")
            call.function.name = block.tool_use.name
            call.function.arguments = (block.tool_use.input_json or b"{}").decode()
            # A tool call has no cache_control of its own: the turn's lands on its last block.
            _cache(block.tool_use, turn)
        else:
            path = f"messages.{i}.content.{j}"
            name = kind if kind != "other" else block.other.fields["type"].string_value
            raise _refuse(
                f"{path}.type", f"'{name}' blocks cannot be sent in an assistant turn to this model"
            )
    if len(texts) == 1 and not texts[0].HasField("cache_control"):
        turn.text = texts[0].text
    elif texts:
        for text in texts:
            part = turn.parts.parts.add()
            part.text.text = text.text
            _cache(text, part)
    elif not turn.tool_calls:
        turn.text = ""
    if thoughts:
        turn.reasoning = "".join(thoughts)
    if turn.tool_calls and len(signatures) == 1 and signatures[0] and not redacted:
        first = turn.tool_calls[0]
        if not split_signature(first.id)[1]:
            joined = join_signature(first.id, signatures[0])
            ids[first.id] = joined
            first.id = joined


# --- options ----------------------------------------------------------------------------------


def _options(params: messages_pb2.MessageParams, chat: chat_pb2.ChatCompletionParams) -> None:
    if params.HasField("max_tokens"):
        chat.max_completion_tokens = params.max_tokens
    if params.stop_sequences:
        chat.stop.extend(params.stop_sequences)
    if params.HasField("temperature"):
        chat.temperature = params.temperature
    if params.HasField("top_p"):
        chat.top_p = params.top_p
    if params.HasField("top_k"):
        chat.extra_body.fields["top_k"].number_value = params.top_k
    if params.metadata.HasField("user_id") and params.metadata.user_id:
        chat.user = params.metadata.user_id
    if params.HasField("service_tier"):
        tier = _SERVICE_TIERS.get(params.service_tier)
        if tier is None:
            raise CodecError("service_tier: Input should be 'auto' or 'standard_only'", "service_tier")
        chat.service_tier = tier
    if params.HasField("stream"):
        chat.stream = params.stream
    if params.HasField("thinking"):
        thinking = params.thinking
        if thinking.type == "enabled":
            chat.reasoning_effort = effort_for_budget(thinking.budget_tokens)
        elif thinking.type == "adaptive":
            chat.reasoning_effort = "medium"


def _tools(params: messages_pb2.MessageParams, chat: chat_pb2.ChatCompletionParams) -> None:
    for i, tool in enumerate(params.tools):
        if tool.HasField("type") and tool.type != "custom":
            raise _refuse(
                f"tools.{i}.type",
                f"the server tool '{tool.type}' runs on Anthropic's servers; this model cannot use it",
            )
        chat_tool = chat.tools.add(type="function")
        _cache(tool, chat_tool)
        function = chat_tool.function
        function.name = tool.name
        if tool.HasField("description"):
            function.description = tool.description
        if tool.HasField("input_schema_json"):
            function.parameters_json = tool.input_schema_json
        if tool.HasField("strict"):
            function.strict = tool.strict
    if not params.HasField("tool_choice"):
        return
    choice = params.tool_choice
    if choice.type == "tool":
        chat.tool_choice.named.type = "function"
        chat.tool_choice.named.name = choice.name
    else:
        chat.tool_choice.mode = {"auto": "auto", "any": "required", "none": "none"}[choice.type]
    if choice.disable_parallel_tool_use:
        chat.parallel_tool_calls = False


def _extra_body(params: messages_pb2.MessageParams, chat: chat_pb2.ChatCompletionParams) -> None:
    for key, value in params.extra_body.fields.items():
        if key in _ANTHROPIC_ONLY:
            raise _refuse(key, f"'{key}' is served only by Anthropic's own API")
        if key in _DROPPED:
            continue
        if key == "output_config":
            _output_config(value, chat)
        else:
            chat.extra_body.fields[key].CopyFrom(value)


def _output_config(value: struct_pb2.Value, chat: chat_pb2.ChatCompletionParams) -> None:
    config = value_to_python(value)
    if not isinstance(config, dict):
        raise CodecError("output_config: Input should be an object", "output_config", "invalid_type")
    effort = config.get("effort")
    if effort is not None and not chat.HasField("reasoning_effort"):
        if effort not in _EFFORTS:
            raise CodecError(
                "output_config.effort: Input should be 'low', 'medium', 'high' or 'max'",
                "output_config.effort",
            )
        chat.reasoning_effort = _EFFORTS[effort]
    fmt = config.get("format")
    if fmt is None:
        return
    if (
        not isinstance(fmt, dict)
        or fmt.get("type") != "json_schema"
        or not isinstance(fmt.get("schema"), dict)
    ):
        raise CodecError(
            "output_config.format: expected {'type': 'json_schema', 'schema': {...}}", "output_config.format"
        )
    chat.response_format.type = "json_schema"
    chat.response_format.json_schema.name = "output"
    chat.response_format.json_schema.strict = True
    # extra_body is a Struct, so the schema's key order is already the Struct's, not the client's.
    chat.response_format.json_schema.schema_json = orjson.dumps(fmt["schema"])
