"""The prompt and answer text of one request, kept with its ledger record when
`observability.store_bodies` is true (it is false by default: then nothing of either is kept).

The text is for a person reading the request log, not a replay of the request: a chat prompt is
one line per message ("user: ...", tool calls as `name(arguments)`), a Responses prompt its
instructions and input text, an embeddings, image or video prompt its input text; media and tool
schemas are left out. The answer is the assistant's text and tool calls, read from whichever form
the gateway handled (protos, OpenAI's JSON, Anthropic's Message and events). Each side is cut to
MAX_BODY_CHARS characters, ending in CUT_MARK, so a record stays small whatever the request.

One `BodyCapture` per request: admission makes it with the prompt (only when storing is on), the
gateway hands it the unary result or each stream item, and the ledger record takes both texts.
"""

from __future__ import annotations

from typing import Any

import orjson
from google.protobuf.message import Message

from server.accounts.moderation import input_texts
from siraya.router.v1 import chat_pb2, responses_pb2

__all__ = ["CUT_MARK", "MAX_BODY_CHARS", "BodyCapture", "prompt_text"]

MAX_BODY_CHARS = 8000
CUT_MARK = " … [cut]"
_ROLES = {value: name.removeprefix("CHAT_ROLE_").lower() for name, value in chat_pb2.ChatRole.items()}


def _bounded(text: str) -> str:
    if len(text) <= MAX_BODY_CHARS:
        return text
    return text[: MAX_BODY_CHARS - len(CUT_MARK)] + CUT_MARK


def _message_line(message: chat_pb2.ChatMessage) -> str:
    which = message.WhichOneof("content")
    if which == "text":
        pieces = [message.text] if message.text else []
    elif which == "parts":
        pieces = [part.text.text for part in message.parts.parts if part.HasField("text")]
        media = sum(1 for part in message.parts.parts if not part.HasField("text"))
        if media:
            pieces.append(f"[{media} media part(s)]")
    else:
        pieces = []
    pieces.extend(f"{call.function.name}({call.function.arguments})" for call in message.tool_calls)
    return f"{_ROLES.get(message.role, 'message')}: {' '.join(pieces)}"


def prompt_text(params: Message | None) -> str | None:
    """What the request asked, as text (None when it holds none)."""
    if isinstance(params, chat_pb2.ChatCompletionParams):
        text = "\n".join(_message_line(message) for message in params.messages)
    else:
        text = "\n\n".join(input_texts(params))
    return _bounded(text) if text else None


def _chat_message(message: dict[str, Any], out: list[str]) -> None:
    content = message.get("content")
    if isinstance(content, str):
        out.append(content)
    elif isinstance(content, list):
        out.extend(
            part["text"] for part in content if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    for call in message.get("tool_calls") or ():
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict):
            out.append(f"{function.get('name', '')}({function.get('arguments') or ''})")


def _anthropic_blocks(blocks: list[Any], out: list[str]) -> None:
    for block in blocks:
        if not isinstance(block, dict):
            continue
        if block.get("type") == "text" and isinstance(block.get("text"), str):
            out.append(block["text"])
        elif block.get("type") == "tool_use":
            out.append(f"{block.get('name', '')}({orjson.dumps(block.get('input') or {}).decode()})")


class BodyCapture:
    """One request's prompt text, and its answer text as the answer arrives."""

    __slots__ = ("_answer", "_size", "_tool_open", "prompt")

    def __init__(self, params: Message | None) -> None:
        self.prompt = prompt_text(params)
        self._answer: list[str] = []
        self._size = 0
        # A streamed tool call's name was written and its arguments are still arriving.
        self._tool_open = False

    def answer_text(self) -> str | None:
        if self._tool_open:
            self._put(")")
            self._tool_open = False
        text = "".join(self._answer)
        return _bounded(text) if text else None

    def _put(self, text: str) -> None:
        # Past the bound nothing more is kept: a long stream costs no more memory than a short one.
        if text and self._size <= MAX_BODY_CHARS:
            self._answer.append(text)
            self._size += len(text)

    def _tool(self, name: str) -> None:
        if self._tool_open:
            self._put(")")
        self._put(("\n" if self._size else "") + name + "(")
        self._tool_open = True

    # a whole answer

    def answer(self, result: object) -> None:
        """Keep the text of a unary answer."""
        out: list[str] = []
        # A chat answer (server/chat_reply.py) holds the upstream's own form: relayed JSON, or a proto.
        if not isinstance(result, Message):
            result = getattr(result, "answer", result)
        if isinstance(result, chat_pb2.ChatCompletion):
            if result.choices:
                message = result.choices[0].message
                if message.HasField("content"):
                    out.append(message.content)
                if message.HasField("refusal"):
                    out.append(message.refusal)
                out.extend(f"{call.function.name}({call.function.arguments})" for call in message.tool_calls)
        elif isinstance(result, responses_pb2.Response):
            for item in result.output:
                if item.type == "message":
                    out.extend(part.text for part in item.content if part.HasField("text"))
                elif item.type == "function_call":
                    out.append(f"{item.name}({item.arguments})")
        elif isinstance(result, dict):
            choices = result.get("choices")
            if isinstance(choices, list) and choices and isinstance(choices[0], dict):
                _chat_message(choices[0].get("message") or {}, out)
            elif isinstance(result.get("content"), list):
                _anthropic_blocks(result["content"], out)
        self._put("\n".join(text for text in out if text))

    # a stream, one item at a time

    def add(self, item: object) -> None:
        """Keep the text a stream item adds to the answer."""
        if self._size > MAX_BODY_CHARS:
            return
        if isinstance(item, chat_pb2.ChatCompletionChunk):
            for choice in item.choices:
                if choice.index == 0:
                    self._chat_delta_proto(choice.delta)
        elif isinstance(item, responses_pb2.ResponseStreamEvent):
            if item.type == "response.output_text.delta":
                self._put(item.delta)
            elif item.type == "response.output_item.added" and item.item.type == "function_call":
                self._tool(item.item.name)
            elif item.type == "response.function_call_arguments.delta":
                self._put(item.delta)
        elif isinstance(item, dict):
            self._json_item(item)
        elif type(item) is bytes:  # a relayed chat event, read only when bodies are stored
            event = orjson.loads(item)
            if isinstance(event, dict):
                self._json_item(event)

    def _chat_delta_proto(self, delta: chat_pb2.ChatCompletionDelta) -> None:
        if delta.HasField("content"):
            self._put(delta.content)
        for call in delta.tool_calls:
            if call.function.HasField("name") and call.function.name:
                self._tool(call.function.name)
            self._put(call.function.arguments)

    def _json_item(self, item: dict[str, Any]) -> None:
        choices = item.get("choices")
        if isinstance(choices, list):
            for choice in choices:
                if isinstance(choice, dict) and choice.get("index", 0) == 0:
                    delta = choice.get("delta") or {}
                    content = delta.get("content")
                    if isinstance(content, str):
                        self._put(content)
                    for call in delta.get("tool_calls") or ():
                        function = call.get("function") or {}
                        if function.get("name"):
                            self._tool(function["name"])
                        if isinstance(function.get("arguments"), str):
                            self._put(function["arguments"])
            return
        kind = item.get("type")
        if kind == "content_block_start":
            block = item.get("content_block") or {}
            if block.get("type") == "tool_use":
                self._tool(str(block.get("name", "")))
            elif self._tool_open:
                self._put(")")
                self._tool_open = False
        elif kind == "content_block_delta":
            delta = item.get("delta") or {}
            if delta.get("type") == "text_delta":
                self._put(delta.get("text") or "")
            elif delta.get("type") == "input_json_delta":
                self._put(delta.get("partial_json") or "")
