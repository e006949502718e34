"""The gateway's chat reply as an Anthropic Message, and its chunks as Anthropic's event stream.

Pure: no I/O. A completion's `reasoning` is a thinking block (first, as Anthropic orders them), its
content a text block, a refusal a text block with stop_reason "refusal", and each tool call a
tool_use block whose `input` is the call's arguments, byte for byte.

Thinking signatures: a native adapter returns the signature of a turn's thinking inside the first
tool call's id (`thinking_signatures.py`). The unary reply splits it off into the thinking block,
so the client sees Anthropic's own tool_use id and signature. A stream can do the same only while
the thinking block is still open when that tool call arrives (thinking, then the call: Anthropic's
usual order); if text came between, the thinking block was already closed with an empty signature
and the tool_use id keeps the signature instead. Either way the next turn carries it back
(`messages_to_chat.py`), so a tool loop with thinking on keeps working.

    finish_reason   stop_reason        usage (chat)                      usage (Messages)
    stop            end_turn           prompt - cached - cache writes    input_tokens
    length          max_tokens         cached_tokens                     cache_read_input_tokens
    tool_calls      tool_use           cache_creation_tokens             cache_creation_input_tokens
    content_filter  refusal            completion_tokens                 output_tokens
    function_call   tool_use           reasoning_tokens                  output_tokens_details.thinking_tokens

The stream is Anthropic's exact sequence: message_start and a ping on the first chunk, then per
content block content_block_start, its deltas, content_block_stop, and at the end message_delta
(stop_reason and the cumulative usage) and message_stop. OpenAI ends with the finish chunk and
then the usage chunk, so the tail is written by `finish`, once the chunks are done.
"""

from __future__ import annotations

import orjson

from siraya.router.codec.thinking_signatures import split_signature
from siraya.router.v1 import chat_pb2, common_pb2, messages_pb2

__all__ = [
    "MessageStreamTranslator",
    "UntranslatableReply",
    "message_from_chat",
    "stop_reason",
    "usage_from_chat",
]

_STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}
_Event = messages_pb2.MessageStreamEvent


class UntranslatableReply(ValueError):
    """The upstream's reply cannot be written as a Message (the gateway answers 502)."""


def stop_reason(finish_reason: str) -> str:
    """Anthropic's stop_reason for a chat finish_reason; an unknown one counts as "end_turn"."""
    return _STOP_REASONS.get(finish_reason, "end_turn")


def usage_from_chat(usage: common_pb2.Usage) -> messages_pb2.MessageUsage:
    """Anthropic's usage: its input_tokens exclude the tokens read from or written to a cache."""
    cached = usage.prompt_tokens_details.cached_tokens
    written = usage.prompt_tokens_details.cache_creation_tokens
    out = messages_pb2.MessageUsage(
        input_tokens=max(0, usage.prompt_tokens - cached - written),
        output_tokens=usage.completion_tokens,
        cache_creation_input_tokens=written,
        cache_read_input_tokens=cached,
    )
    if usage.completion_tokens_details.HasField("reasoning_tokens"):
        out.output_tokens_details.thinking_tokens = usage.completion_tokens_details.reasoning_tokens
    if usage.HasField("cost"):
        out.cost = usage.cost
    return out


def _tool_input(arguments: str, position: int) -> bytes:
    """The arguments as the tool_use `input` object's JSON text, unchanged when they are one."""
    text = arguments.strip()
    if not text:
        return b"{}"
    try:
        parsed = orjson.loads(text)
    except orjson.JSONDecodeError:
        parsed = None
    if not isinstance(parsed, dict):
        raise UntranslatableReply(f"the arguments of tool call {position} are not a JSON object")
    return text.encode()


def message_from_chat(completion: chat_pb2.ChatCompletion) -> messages_pb2.Message:
    """The Message for a chat completion (its first choice)."""
    message = messages_pb2.Message(id=completion.id, type="message", role="assistant", model=completion.model)
    if completion.HasField("provider"):
        message.provider = completion.provider
    if completion.choices:
        choice = completion.choices[0]
        answer = choice.message
        calls = answer.tool_calls
        first_id, signature = split_signature(calls[0].id) if calls else ("", "")
        carried = bool(signature) and answer.HasField("reasoning")
        if answer.HasField("reasoning") and answer.reasoning:
            thinking = message.content.add().thinking
            thinking.thinking = answer.reasoning
            thinking.signature = signature if carried else ""
        if answer.HasField("content") and answer.content:
            message.content.add().text.text = answer.content
        if answer.HasField("refusal") and answer.refusal:
            message.content.add().text.text = answer.refusal
        for position, call in enumerate(calls):
            use = message.content.add().tool_use
            use.id = first_id if position == 0 and carried else call.id
            use.name = call.function.name
            use.input_json = _tool_input(call.function.arguments, position)
        reason = stop_reason(choice.finish_reason)
        if answer.HasField("refusal") and answer.refusal and reason == "end_turn":
            reason = "refusal"
        message.stop_reason = reason
    else:
        message.stop_reason = "end_turn"
    if completion.HasField("usage"):
        message.usage.CopyFrom(usage_from_chat(completion.usage))
    else:
        message.usage.SetInParent()
    return message


class MessageStreamTranslator:
    """Chat chunks in, Anthropic stream events out; one instance per stream.

    `input_estimate` is message_start's input_tokens (the real count, known only from the usage
    chunk at the end, goes in message_delta).
    """

    def __init__(self, input_estimate: int = 0) -> None:
        self._input_estimate = input_estimate
        self._started = False
        self._next_index = 0
        # The open block: its index and kind ("text", "thinking", "tool_use"), or -1 / "".
        self._open_index = -1
        self._open_kind = ""
        # OpenAI tool-call index -> the block index of its tool_use.
        self._tool_blocks: dict[int, int] = {}
        self._stop_reason = ""
        self._refused = False
        self._usage: common_pb2.Usage | None = None

    @property
    def started(self) -> bool:
        return self._started

    def feed(self, chunk: chat_pb2.ChatCompletionChunk) -> list[messages_pb2.MessageStreamEvent]:
        """The events one chunk produces (none for an empty delta)."""
        events: list[messages_pb2.MessageStreamEvent] = []
        if not self._started:
            self._started = True
            events.append(self._message_start(chunk))
            events.append(_Event(ping=messages_pb2.PingEvent()))
        if chunk.HasField("usage"):
            self._usage = chunk.usage
        for choice in chunk.choices:
            if choice.index != 0:
                continue
            delta = choice.delta
            if delta.HasField("reasoning") and delta.reasoning:
                self._thinking(delta.reasoning, events)
            if delta.HasField("content") and delta.content:
                self._text(delta.content, events)
            if delta.HasField("refusal") and delta.refusal:
                self._refused = True
                self._text(delta.refusal, events)
            for call in delta.tool_calls:
                self._tool_call(call, events)
            if choice.HasField("finish_reason") and choice.finish_reason:
                self._stop_reason = stop_reason(choice.finish_reason)
        return events

    def finish(self) -> list[messages_pb2.MessageStreamEvent]:
        """The tail once the chunks are done: the last block's stop, message_delta, message_stop."""
        if not self._started:
            return []
        events: list[messages_pb2.MessageStreamEvent] = []
        self._close(events)
        reason = self._stop_reason or "end_turn"
        if self._refused and reason == "end_turn":
            reason = "refusal"
        delta = _Event()
        delta.message_delta.delta.stop_reason = reason
        if self._usage is not None:
            delta.message_delta.usage.CopyFrom(usage_from_chat(self._usage))
        else:
            delta.message_delta.usage.input_tokens = self._input_estimate
        events.append(delta)
        events.append(_Event(message_stop=messages_pb2.MessageStopEvent()))
        return events

    # blocks

    def _message_start(self, chunk: chat_pb2.ChatCompletionChunk) -> messages_pb2.MessageStreamEvent:
        event = _Event()
        message = event.message_start.message
        message.id = chunk.id
        message.type = "message"
        message.role = "assistant"
        message.model = chunk.model
        if chunk.HasField("provider"):
            message.provider = chunk.provider
        message.usage.input_tokens = self._input_estimate
        return event

    def _close(self, events: list[messages_pb2.MessageStreamEvent]) -> None:
        if self._open_index >= 0:
            events.append(
                _Event(content_block_stop=messages_pb2.ContentBlockStopEvent(index=self._open_index))
            )
            self._open_index, self._open_kind = -1, ""

    def _open(
        self, block: messages_pb2.MessageContentBlock, events: list[messages_pb2.MessageStreamEvent]
    ) -> int:
        self._close(events)
        index = self._next_index
        self._next_index += 1
        self._open_index, self._open_kind = index, block.WhichOneof("block") or ""
        events.append(
            _Event(content_block_start=messages_pb2.ContentBlockStartEvent(index=index, content_block=block))
        )
        return index

    def _thinking(self, text: str, events: list[messages_pb2.MessageStreamEvent]) -> None:
        if self._open_kind != "thinking":
            self._open(messages_pb2.MessageContentBlock(thinking=messages_pb2.MessageThinkingBlock()), events)
        event = _Event()
        event.content_block_delta.index = self._open_index
        event.content_block_delta.delta.thinking_delta.thinking = text
        events.append(event)

    def _text(self, text: str, events: list[messages_pb2.MessageStreamEvent]) -> None:
        if self._open_kind != "text":
            self._open(messages_pb2.MessageContentBlock(text=messages_pb2.MessageTextBlock()), events)
        event = _Event()
        event.content_block_delta.index = self._open_index
        event.content_block_delta.delta.text_delta.text = text
        events.append(event)

    def _tool_call(self, call: chat_pb2.ToolCallDelta, events: list[messages_pb2.MessageStreamEvent]) -> None:
        index = self._tool_blocks.get(call.index)
        if index is None:
            call_id = call.id if call.HasField("id") and call.id else f"toolu_{call.index:02d}"
            base, signature = split_signature(call_id)
            if signature and not self._tool_blocks and self._open_kind == "thinking":
                # The thinking block is still open: its signature goes where Anthropic puts it.
                event = _Event()
                event.content_block_delta.index = self._open_index
                event.content_block_delta.delta.signature_delta.signature = signature
                events.append(event)
                call_id = base
            block = messages_pb2.MessageContentBlock()
            block.tool_use.id = call_id
            block.tool_use.name = call.function.name
            index = self._tool_blocks[call.index] = self._open(block, events)
        arguments = call.function.arguments
        if arguments:
            # A fragment of an earlier call (interleaved calls) still names that call's block.
            event = _Event()
            event.content_block_delta.index = index
            event.content_block_delta.delta.input_json_delta.partial_json = arguments
            events.append(event)
