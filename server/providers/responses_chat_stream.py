"""Translate a chat-completions chunk stream into the Responses API's typed event sequence.

The sequence is the one OpenAI streams: `response.created`, `response.in_progress`, then for each
output item `response.output_item.added`, its content events and `response.output_item.done`,
and finally `response.completed` (or `response.incomplete`) carrying the whole Response. Output
items are emitted one at a time, in the order the chat stream starts them: reasoning, then the
message, then each function call. Item ids are fixed when an item is added and reused by every
later event that names it. `sequence_number` counts every event from 0.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from server.providers.responses_envelope import (
    RESPONSE_ERROR_CODES,
    delta_logprobs,
    fill_usage,
    incomplete_reason,
    item_id,
    output_logprobs,
    response_envelope,
)
from siraya.router.v1 import chat_pb2, common_pb2, responses_pb2

__all__ = ["ChatStreamToResponseEvents", "ErrorLike"]

Event = responses_pb2.ResponseStreamEvent


class ErrorLike(Protocol):
    """Anything with an error message: `common_pb2.ErrorObject`, a `GatewayError`, ..."""

    message: str


@dataclass(slots=True)
class _Part:
    """An open content part of the message item: output_text or refusal."""

    kind: str
    index: int
    pieces: list[str] = field(default_factory=list)
    logprobs: list[chat_pb2.TokenLogprob] = field(default_factory=list)


@dataclass(slots=True)
class _Call:
    """A function call being streamed; `added` once its output_item.added event is out."""

    item: responses_pb2.ResponseItem
    output_index: int
    pieces: list[str] = field(default_factory=list)
    added: bool = False
    done: bool = False


class ChatStreamToResponseEvents:
    """Feed chat chunks in, get Responses events out; one instance per streamed response."""

    def __init__(self, params: responses_pb2.ResponseParams, response_id: str, created_at: int) -> None:
        self._params = params
        self._response_id = response_id
        self._created_at = created_at
        self._sequence = 0
        self._model = params.model
        self._provider: str | None = None
        self._service_tier: str | None = None
        self._output: list[responses_pb2.ResponseItem] = []
        self._reasoning: responses_pb2.ResponseItem | None = None
        self._reasoning_index = 0
        self._reasoning_pieces: list[str] = []
        self._message: responses_pb2.ResponseItem | None = None
        self._message_index = 0
        self._part: _Part | None = None
        self._calls: dict[int, _Call] = {}
        self._open_call: _Call | None = None
        self._usage: common_pb2.Usage | None = None
        self._finish_reason = ""

    # public API

    def start(self) -> list[Event]:
        """`response.created` and `response.in_progress`, before the first chunk."""
        return [
            self._event("response.created", response=self._snapshot("in_progress")),
            self._event("response.in_progress", response=self._snapshot("in_progress")),
        ]

    def feed(self, chunk: chat_pb2.ChatCompletionChunk) -> list[Event]:
        events: list[Event] = []
        if chunk.model:
            self._model = chunk.model
        if chunk.HasField("provider"):
            self._provider = chunk.provider
        if chunk.HasField("service_tier"):
            self._service_tier = chunk.service_tier
        if chunk.HasField("usage"):
            self._usage = common_pb2.Usage()
            self._usage.CopyFrom(chunk.usage)
        for choice in chunk.choices:
            if choice.index != 0:
                continue  # a Response has one output; n > 1 has no place in it
            delta = choice.delta
            if delta.reasoning:
                self._reasoning_delta(delta.reasoning, events)
            if delta.content:
                self._text_delta(delta.content, choice.logprobs.content, events)
            if delta.refusal:
                self._refusal_delta(delta.refusal, events)
            for call in delta.tool_calls:
                self._tool_call_delta(call, events)
            if choice.finish_reason:
                self._finish_reason = choice.finish_reason
        return events

    def finish(self) -> list[Event]:
        """Close every open item, then `response.completed` (or `response.incomplete`)."""
        events: list[Event] = []
        reason = incomplete_reason(self._finish_reason)
        status = "incomplete" if reason else "completed"
        self._close_reasoning(events)
        self._close_message(events, status)
        self._close_call(events, status)
        response = self._snapshot(status)
        response.output.extend(self._output)
        if reason:
            response.incomplete_details.reason = reason
        else:
            response.completed_at = int(time.time())
        if self._usage is not None:
            fill_usage(self._usage, response.usage)
        events.append(self._event(f"response.{status}", response=response))
        return events

    def fail(self, error: ErrorLike | str, code: str | None = None) -> list[Event]:
        """A `response.failed` event, for an upstream that dies mid-stream.

        `code` (else the error's own `code`) must be one of OpenAI's Response error codes;
        any other becomes `server_error`.
        """
        message = error if isinstance(error, str) else error.message
        code = code or (None if isinstance(error, str) else getattr(error, "code", None))
        response = self._snapshot("failed")
        response.output.extend(self._output)
        self._partial_output(response.output)
        response.error.code = code if code in RESPONSE_ERROR_CODES else "server_error"
        response.error.message = message
        if self._usage is not None:
            fill_usage(self._usage, response.usage)
        return [self._event("response.failed", response=response)]

    def _partial_output(self, output: Any) -> None:
        # What the open items hold so far, marked incomplete; no events are emitted for them.
        if self._message is not None:
            message = output[self._message_index]
            message.status = "incomplete"
            part = self._part
            if part is not None and part.kind == "output_text":
                message.content.add(type="output_text", text="".join(part.pieces)).logprobs.SetInParent()
            elif part is not None:
                message.content.add(type="refusal", refusal="".join(part.pieces))
        if self._reasoning is not None:
            output[self._reasoning_index].summary.add(
                type="summary_text", text="".join(self._reasoning_pieces)
            )
        call = self._open_call
        if call is not None:
            item = output[call.output_index]
            item.arguments = "".join(call.pieces)
            item.status = "incomplete"

    # building blocks

    def _event(self, kind: str, **fields: Any) -> Event:
        event = Event(type=kind, sequence_number=self._sequence, **fields)
        self._sequence += 1
        return event

    def _snapshot(self, status: str) -> responses_pb2.Response:
        response = response_envelope(self._params, self._response_id, self._created_at, self._model, status)
        if self._provider is not None:
            response.provider = self._provider
        if self._service_tier is not None:
            response.service_tier = self._service_tier
        return response

    def _new_item(self, kind: str, prefix: str, **fields: Any) -> tuple[responses_pb2.ResponseItem, int]:
        index = len(self._output)
        item = responses_pb2.ResponseItem(type=kind, id=item_id(prefix, self._response_id, index), **fields)
        self._output.append(item)
        return item, index

    # reasoning: one item with one summary part

    def _reasoning_delta(self, text: str, events: list[Event]) -> None:
        if self._reasoning is None:
            self._close_message(events, "completed")
            self._close_call(events, "completed")
            self._reasoning, index = self._new_item("reasoning", "rs")
            self._reasoning_index = index
            events.append(self._event("response.output_item.added", output_index=index, item=self._reasoning))
            events.append(
                self._event(
                    "response.reasoning_summary_part.added",
                    item_id=self._reasoning.id,
                    output_index=index,
                    summary_index=0,
                    part=responses_pb2.ResponseContentPart(type="summary_text", text=""),
                )
            )
        self._reasoning_pieces.append(text)
        events.append(
            self._event(
                "response.reasoning_summary_text.delta",
                item_id=self._reasoning.id,
                output_index=self._reasoning_index,
                summary_index=0,
                delta=text,
            )
        )

    def _close_reasoning(self, events: list[Event]) -> None:
        item = self._reasoning
        if item is None:
            return
        self._reasoning = None
        text = "".join(self._reasoning_pieces)
        self._reasoning_pieces = []
        index = self._reasoning_index
        where = {"item_id": item.id, "output_index": index, "summary_index": 0}
        events.append(self._event("response.reasoning_summary_text.done", text=text, **where))
        part = responses_pb2.ResponseContentPart(type="summary_text", text=text)
        events.append(self._event("response.reasoning_summary_part.done", part=part, **where))
        item.summary.add(type="summary_text", text=text)
        events.append(self._event("response.output_item.done", output_index=index, item=item))

    # the message: text and refusal parts

    def _open_message(self, events: list[Event]) -> responses_pb2.ResponseItem:
        if self._message is None:
            self._close_reasoning(events)
            self._close_call(events, "completed")
            self._message, index = self._new_item("message", "msg", status="in_progress", role="assistant")
            self._message_index = index
            events.append(self._event("response.output_item.added", output_index=index, item=self._message))
        return self._message

    def _open_part(self, kind: str, events: list[Event]) -> _Part:
        message = self._open_message(events)
        if self._part is not None and self._part.kind == kind:
            return self._part
        self._close_part(events)
        self._part = _Part(kind, len(message.content))
        if kind == "output_text":
            added = responses_pb2.ResponseContentPart(type=kind, text="")
            added.logprobs.SetInParent()
        else:
            added = responses_pb2.ResponseContentPart(type=kind, refusal="")
        events.append(
            self._event(
                "response.content_part.added",
                item_id=message.id,
                output_index=self._message_index,
                content_index=self._part.index,
                part=added,
            )
        )
        return self._part

    def _text_delta(self, text: str, logprobs: Any, events: list[Event]) -> None:
        part = self._open_part("output_text", events)
        part.pieces.append(text)
        message = self._message
        assert message is not None
        event = self._event(
            "response.output_text.delta",
            item_id=message.id,
            output_index=self._message_index,
            content_index=part.index,
            delta=text,
        )
        event.logprobs.SetInParent()
        if logprobs:
            part.logprobs.extend(logprobs)
            event.logprobs.extend(delta_logprobs(logprobs))
        events.append(event)

    def _refusal_delta(self, text: str, events: list[Event]) -> None:
        part = self._open_part("refusal", events)
        part.pieces.append(text)
        message = self._message
        assert message is not None
        events.append(
            self._event(
                "response.refusal.delta",
                item_id=message.id,
                output_index=self._message_index,
                content_index=part.index,
                delta=text,
            )
        )

    def _close_part(self, events: list[Event]) -> None:
        part, message = self._part, self._message
        if part is None or message is None:
            return
        self._part = None
        text = "".join(part.pieces)
        where = {"item_id": message.id, "output_index": self._message_index, "content_index": part.index}
        if part.kind == "output_text":
            done = message.content.add(type="output_text", text=text)
            done.logprobs.SetInParent()
            if part.logprobs:
                done.logprobs.extend(output_logprobs(part.logprobs))
            event = self._event("response.output_text.done", text=text, **where)
            event.logprobs.SetInParent()
            if part.logprobs:
                event.logprobs.extend(delta_logprobs(part.logprobs))
            events.append(event)
        else:
            done = message.content.add(type="refusal", refusal=text)
            events.append(self._event("response.refusal.done", refusal=text, **where))
        events.append(self._event("response.content_part.done", part=done, **where))

    def _close_message(self, events: list[Event], status: str) -> None:
        message = self._message
        if message is None:
            return
        self._close_part(events)
        self._message = None
        message.status = status
        events.append(
            self._event("response.output_item.done", output_index=self._message_index, item=message)
        )

    # function calls: one item per chat tool call index

    def _tool_call_delta(self, delta: chat_pb2.ToolCallDelta, events: list[Event]) -> None:
        call = self._calls.get(delta.index)
        if call is None:
            self._close_reasoning(events)
            self._close_message(events, "completed")
            self._close_call(events, "completed")
            item, index = self._new_item("function_call", "fc", status="in_progress", arguments="", name="")
            item.call_id = delta.id or f"call_{item.id.removeprefix('fc_')}"
            call = self._calls[delta.index] = self._open_call = _Call(item, index)
        elif delta.id and not call.added:
            call.item.call_id = delta.id
        function = delta.function
        if function.name and not call.added:
            call.item.name = function.name
        arguments = function.arguments
        if call.done:
            # An upstream interleaving parallel calls: too late for events, kept for the Response.
            call.item.arguments += arguments
            return
        if arguments:
            call.pieces.append(arguments)
        if not call.added and call.item.name:
            self._add_call(call, events)
        elif call.added and arguments:
            events.append(
                self._event(
                    "response.function_call_arguments.delta",
                    item_id=call.item.id,
                    output_index=call.output_index,
                    delta=arguments,
                )
            )

    def _add_call(self, call: _Call, events: list[Event]) -> None:
        # Deferred until the name is known: the added event must name the function.
        call.added = True
        events.append(
            self._event("response.output_item.added", output_index=call.output_index, item=call.item)
        )
        buffered = "".join(call.pieces)
        if buffered:
            events.append(
                self._event(
                    "response.function_call_arguments.delta",
                    item_id=call.item.id,
                    output_index=call.output_index,
                    delta=buffered,
                )
            )

    def _close_call(self, events: list[Event], status: str) -> None:
        call = self._open_call
        if call is None:
            return
        self._open_call = None
        if not call.added:
            self._add_call(call, events)
        call.done = True
        item = call.item
        item.arguments = "".join(call.pieces)
        item.status = status
        events.append(
            self._event(
                "response.function_call_arguments.done",
                item_id=item.id,
                output_index=call.output_index,
                name=item.name,
                arguments=item.arguments,
            )
        )
        events.append(self._event("response.output_item.done", output_index=call.output_index, item=item))
