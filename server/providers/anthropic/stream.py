"""Translate Anthropic's stream events into chat completion chunks, one event at a time. No I/O.

    message_start                     -> a chunk with role "assistant" and content "", carrying the
                                         prompt's token count as running usage (for metering)
    content_block_start  tool_use     -> a tool call delta with its id and name, arguments ""
    content_block_delta  text_delta   -> content
                         thinking_delta -> reasoning
                         input_json_delta -> tool call arguments
                         signature_delta -> kept for the first tool call's id (`thinking.py`)
                         citations_delta -> nothing
    message_delta                     -> the chunk with finish_reason
    message_stop                      -> the usage chunk
    ping, content_block_stop          -> nothing
    error                             -> the mapped GatewayError is raised

Usage is always produced, whatever the client asked: the gateway meters it and shows the client
the usage chunk only when `stream_options.include_usage` asked for it.

OpenAI numbers tool calls 0, 1, ... among tool calls only, while Anthropic's `index` counts every
content block (thinking and text included), so the translator keeps its own map.
"""

from __future__ import annotations

import time
from typing import Any

from server.providers.anthropic.errors import error_from_event
from server.providers.anthropic.response import AnthropicShapeError, finish_reason, usage_from_anthropic
from server.providers.anthropic.thinking import join_signature
from siraya.router.v1 import chat_pb2

__all__ = ["StreamTranslator"]

_CHUNK_OBJECT = "chat.completion.chunk"


class StreamTranslator:
    """Anthropic SSE events in, OpenAI chunks out; one instance per stream."""

    def __init__(
        self,
        provider: str,
        *,
        secrets: tuple[str, ...] = (),
        created: int | None = None,
    ) -> None:
        self._provider = provider
        self._secrets = secrets
        self._created = created if created is not None else int(time.time())
        self._id = ""
        self._model = ""
        # Anthropic content block index -> OpenAI tool call index.
        self._tool_index: dict[int, int] = {}
        self._usage: dict[str, Any] = {}
        # Thinking blocks seen so far, and the signature of the last one; a signature is carried
        # only when exactly one (unredacted) thinking block precedes the first tool call.
        self._thinking_blocks = 0
        self._redacted = False
        self._signature = ""
        self._finish_sent = False
        self.started = False
        self.finished = False

    def feed(self, data: Any) -> list[chat_pb2.ChatCompletionChunk]:
        """The chunks one event's parsed `data` produces (often none)."""
        if not isinstance(data, dict):
            raise AnthropicShapeError("a stream event is not a JSON object")
        kind = data.get("type")
        if kind == "error":
            raise error_from_event(self._provider, data, self._secrets)
        try:
            if kind == "message_start":
                return [self._start(data["message"])]
            if kind in ("ping", "content_block_stop") or kind is None:
                return []
            if not self.started:
                raise AnthropicShapeError(f"'{kind}' arrived before message_start")
            if kind == "content_block_start":
                return self._block_start(data["index"], data["content_block"])
            if kind == "content_block_delta":
                return self._block_delta(data["index"], data["delta"])
            if kind == "message_delta":
                self._add_usage(data.get("usage"))
                return [self._finish(data["delta"].get("stop_reason"))]
            if kind == "message_stop":
                return self._stop()
        except (KeyError, TypeError, AttributeError) as error:
            raise AnthropicShapeError(f"a '{kind}' event is malformed ({error!r})") from None
        # Event types added to the API later are skipped, as Anthropic's versioning policy asks.
        return []

    # events

    def _start(self, message: dict[str, Any]) -> chat_pb2.ChatCompletionChunk:
        self.started = True
        self._id = message.get("id") or ""
        self._model = message.get("model") or ""
        self._add_usage(message.get("usage"))
        chunk = self._chunk()
        chunk.choices[0].delta.role = "assistant"
        chunk.choices[0].delta.content = ""
        if "input_tokens" in self._usage:
            # The prompt as Anthropic counted it; the output so far is counted from the text relayed.
            usage = usage_from_anthropic(self._usage)
            usage.completion_tokens = 0
            usage.total_tokens = usage.prompt_tokens
            chunk.usage.CopyFrom(usage)
        return chunk

    def _block_start(self, index: int, block: dict[str, Any]) -> list[chat_pb2.ChatCompletionChunk]:
        kind = block["type"]
        if kind == "tool_use":
            position = len(self._tool_index)
            self._tool_index[index] = position
            carried = position == 0 and self._thinking_blocks == 1 and not self._redacted
            call_id = join_signature(block["id"], self._signature if carried else None)
            chunk = self._chunk()
            call = chunk.choices[0].delta.tool_calls.add(index=position, id=call_id, type="function")
            call.function.name = block["name"]
            call.function.arguments = ""
            return [chunk]
        if kind == "thinking":
            self._thinking_blocks += 1
            self._signature = block.get("signature") or ""
        elif kind == "redacted_thinking":
            self._redacted = True
        # Blocks start empty in practice; any initial text is still the model's.
        if kind == "text" and block.get("text"):
            return [self._content(block["text"])]
        if kind == "thinking" and block.get("thinking"):
            return [self._reasoning(block["thinking"])]
        return []

    def _block_delta(self, index: int, delta: dict[str, Any]) -> list[chat_pb2.ChatCompletionChunk]:
        kind = delta["type"]
        if kind == "text_delta":
            return [self._content(delta["text"])] if delta["text"] else []
        if kind == "thinking_delta":
            return [self._reasoning(delta["thinking"])] if delta["thinking"] else []
        if kind == "input_json_delta":
            fragment = delta["partial_json"]
            if not fragment:
                return []
            position = self._tool_index.get(index)
            if position is None:
                raise AnthropicShapeError(
                    f"input_json_delta for block {index}, which is not a tool_use block"
                )
            chunk = self._chunk()
            call = chunk.choices[0].delta.tool_calls.add(index=position)
            call.function.arguments = fragment
            return [chunk]
        if kind == "signature_delta":
            self._signature += delta["signature"]
        return []

    def _finish(self, stop_reason: str | None) -> chat_pb2.ChatCompletionChunk:
        self._finish_sent = True
        chunk = self._chunk()
        chunk.choices[0].finish_reason = finish_reason(stop_reason)
        return chunk

    def _stop(self) -> list[chat_pb2.ChatCompletionChunk]:
        self.finished = True
        chunks = [] if self._finish_sent else [self._finish(None)]
        chunk = chat_pb2.ChatCompletionChunk(
            id=self._id, object=_CHUNK_OBJECT, created=self._created, model=self._model
        )
        chunk.usage.CopyFrom(usage_from_anthropic(self._usage))
        chunks.append(chunk)
        return chunks

    # helpers

    def _add_usage(self, usage: Any) -> None:
        # Counts in message_delta are cumulative: a later value replaces the earlier one.
        if isinstance(usage, dict):
            self._usage.update((key, value) for key, value in usage.items() if value is not None)

    def _chunk(self) -> chat_pb2.ChatCompletionChunk:
        chunk = chat_pb2.ChatCompletionChunk(
            id=self._id, object=_CHUNK_OBJECT, created=self._created, model=self._model
        )
        chunk.choices.add(index=0).delta.SetInParent()
        return chunk

    def _content(self, text: str) -> chat_pb2.ChatCompletionChunk:
        chunk = self._chunk()
        chunk.choices[0].delta.content = text
        return chunk

    def _reasoning(self, text: str) -> chat_pb2.ChatCompletionChunk:
        chunk = self._chunk()
        chunk.choices[0].delta.reasoning = text
        return chunk
