"""Gemini `streamGenerateContent?alt=sse` events -> chat completion chunks (pure, stateful).

Each SSE `data:` is a whole GenerateContentResponse holding the next slice of every candidate.
Text and thoughts arrive as deltas; a function call arrives whole, so it becomes one tool-call
delta carrying its id, name and full arguments at the next index of that choice. The first chunk
of a choice carries `role: assistant`. usageMetadata is cumulative: the last one seen is the
usage chunk sent at the end, whatever the client asked (the gateway meters it, and shows it only
when `stream_options.include_usage` asked for it). The first chunk carries the prompt's count from
the first usageMetadata as running usage, so a stream the client leaves early is still metered.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

from server.providers.gemini.response import (
    MalformedResponse,
    blocked_prompt,
    finish_reason,
    logprobs_from,
    read_parts,
    usage_from,
)
from siraya.router.v1 import chat_pb2

__all__ = ["ChunkTranslator"]


@dataclass(slots=True)
class _Choice:
    calls: int = 0
    finished: bool = False


class ChunkTranslator:
    """Feed parsed SSE events in order; `finish` once the body ends."""

    def __init__(self, upstream_model: str) -> None:
        self._model = upstream_model
        self._prompt_counted = False
        self._created = int(time.time())
        self._response_id: str | None = None
        self._choices: dict[int, _Choice] = {}
        self._usage: Any = None

    def _chunk(self) -> chat_pb2.ChatCompletionChunk:
        return chat_pb2.ChatCompletionChunk(
            id="chatcmpl-" + (self._response_id or ""),
            object="chat.completion.chunk",
            created=self._created,
            model=self._model,
        )

    def feed(self, event: Any) -> list[chat_pb2.ChatCompletionChunk]:
        if not isinstance(event, dict):
            raise MalformedResponse("a stream event is not an object")
        if self._response_id is None:
            response_id = event.get("responseId")
            self._response_id = (
                response_id if isinstance(response_id, str) and response_id else secrets.token_hex(12)
            )
        if event.get("usageMetadata") is not None:
            self._usage = event["usageMetadata"]
        candidates = event.get("candidates")
        if candidates is None:
            return self._blocked() if blocked_prompt(event) else []
        if not isinstance(candidates, list):
            raise MalformedResponse("candidates is not an array")
        chunks: list[chat_pb2.ChatCompletionChunk] = []
        for position, candidate in enumerate(candidates):
            if not isinstance(candidate, dict):
                raise MalformedResponse("a candidate is not an object")
            chunk = self._candidate_chunk(candidate, position)
            if chunk is not None:
                chunks.append(chunk)
        if (
            not self._prompt_counted
            and chunks
            and isinstance(self._usage, dict)
            and "promptTokenCount" in self._usage
        ):
            self._prompt_counted = True
            self._count_prompt(chunks[0])
        return chunks

    def _count_prompt(self, chunk: chat_pb2.ChatCompletionChunk) -> None:
        # The prompt as Gemini counted it; the output so far is counted from the text relayed.
        usage = usage_from(self._usage)
        chunk.usage.prompt_tokens = usage.prompt_tokens
        chunk.usage.total_tokens = usage.prompt_tokens
        if usage.prompt_tokens_details.HasField("cached_tokens"):
            chunk.usage.prompt_tokens_details.cached_tokens = usage.prompt_tokens_details.cached_tokens

    def _blocked(self) -> list[chat_pb2.ChatCompletionChunk]:
        state = self._choices.setdefault(0, _Choice())
        if state.finished:
            return []
        state.finished = True
        chunk = self._chunk()
        choice = chunk.choices.add(index=0, finish_reason="content_filter")
        choice.delta.role = "assistant"
        choice.delta.content = ""
        return [chunk]

    def _candidate_chunk(
        self, candidate: dict[str, Any], position: int
    ) -> chat_pb2.ChatCompletionChunk | None:
        index = candidate.get("index", position)
        index = index if isinstance(index, int) else position
        state = self._choices.get(index)
        first = state is None
        if state is None:
            state = self._choices[index] = _Choice()
        if state.finished:
            return None
        parts = read_parts(candidate, self._response_id or "", index, first_call=state.calls)
        reason = candidate.get("finishReason")
        logprobs = logprobs_from(candidate.get("logprobsResult"))
        if not (first or parts.texts or parts.thoughts or parts.calls or reason or logprobs):
            return None
        chunk = self._chunk()
        choice = chunk.choices.add(index=index)
        delta = choice.delta
        if first:
            delta.role = "assistant"
        if parts.texts or (first and not parts.calls and not parts.thoughts):
            delta.content = "".join(parts.texts)
        if parts.thoughts:
            delta.reasoning = "".join(parts.thoughts)
        for call in parts.calls:
            tool = delta.tool_calls.add(index=state.calls, id=call.id, type="function")
            tool.function.name = call.name
            tool.function.arguments = call.arguments
            state.calls += 1
        if logprobs is not None:
            choice.logprobs.CopyFrom(logprobs)
        if reason:
            choice.finish_reason = finish_reason(reason, state.calls > 0)
            state.finished = True
        return chunk

    def finish(self) -> list[chat_pb2.ChatCompletionChunk]:
        """The closing chunks; raises MalformedResponse when the stream ended before every finishReason."""
        if not self._choices:
            raise MalformedResponse("the stream ended without any candidate")
        if not all(state.finished for state in self._choices.values()):
            raise MalformedResponse("the stream ended before a finishReason")
        if self._usage is None:
            # No count at all: the gateway falls back to its estimate rather than a zero usage.
            return []
        chunk = self._chunk()
        chunk.usage.CopyFrom(usage_from(self._usage))
        return [chunk]
