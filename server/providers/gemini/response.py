"""A Gemini `GenerateContentResponse` -> a chat completion (pure), plus the pieces streams reuse.

- text parts are the content, `thought: true` parts the `reasoning`; functionCall parts become tool
  calls with synthesized stable ids (see `tool_ids`), arguments re-encoded as compact JSON.
- finishReason: STOP -> stop, MAX_TOKENS -> length, the safety family -> content_filter; a
  candidate with function calls -> tool_calls; anything else -> stop. A prompt blocked before any
  candidate (`promptFeedback.blockReason`) is one empty choice with finish_reason content_filter.
- usageMetadata: prompt = promptTokenCount + toolUsePromptTokenCount; completion =
  candidatesTokenCount + thoughtsTokenCount (reasoning_tokens); cachedContentTokenCount -> cached_tokens;
  the AUDIO modality of promptTokensDetails / candidatesTokensDetails -> the audio_tokens details.
- logprobsResult (requested with `logprobs`) maps token for token onto OpenAI's logprobs.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

from server.providers.gemini.tool_ids import make_tool_call_id
from siraya.router.v1 import chat_pb2, common_pb2

__all__ = [
    "CONTENT_FILTER_REASONS",
    "CandidateParts",
    "MalformedResponse",
    "ToolCallPart",
    "blocked_prompt",
    "chat_completion",
    "completion_id",
    "finish_reason",
    "logprobs_from",
    "read_parts",
    "usage_from",
]

CONTENT_FILTER_REASONS = frozenset(
    {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY"}
)

JsonObject = dict[str, Any]


class MalformedResponse(Exception):
    """The upstream answered 200 with a body that is not a GenerateContentResponse."""


@dataclass(frozen=True, slots=True)
class ToolCallPart:
    id: str
    name: str
    arguments: str


@dataclass(slots=True)
class CandidateParts:
    """What one candidate (or one streamed slice of it) carries."""

    texts: list[str] = field(default_factory=list)
    thoughts: list[str] = field(default_factory=list)
    calls: list[ToolCallPart] = field(default_factory=list)


def completion_id(body: JsonObject) -> str:
    response_id = body.get("responseId")
    if isinstance(response_id, str) and response_id:
        return "chatcmpl-" + response_id
    return "chatcmpl-" + secrets.token_hex(12)


def _object(value: Any, what: str) -> JsonObject:
    if not isinstance(value, dict):
        raise MalformedResponse(f"{what} is not an object")
    return value


def _list(value: Any, what: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise MalformedResponse(f"{what} is not an array")
    return value


def read_parts(
    candidate: JsonObject, response_id: str, candidate_index: int, first_call: int = 0
) -> CandidateParts:
    """The text, thoughts and calls of a candidate; calls are numbered from `first_call`."""
    content = candidate.get("content")
    out = CandidateParts()
    if content is None:
        return out
    for raw in _list(_object(content, "candidate.content").get("parts"), "content.parts"):
        part = _object(raw, "a content part")
        text = part.get("text")
        if isinstance(text, str):
            (out.thoughts if part.get("thought") is True else out.texts).append(text)
            continue
        call = part.get("functionCall")
        if call is None:
            continue  # inline media, code execution: nothing a chat message carries
        call = _object(call, "functionCall")
        name = call.get("name")
        if not isinstance(name, str) or not name:
            raise MalformedResponse("functionCall has no name")
        arguments = orjson.dumps(call.get("args") or {}).decode()
        signature = part.get("thoughtSignature")
        signature = signature if isinstance(signature, str) and signature else None
        upstream_id = call.get("id")
        if isinstance(upstream_id, str) and upstream_id and signature is None:
            call_id = upstream_id
        else:
            position = first_call + len(out.calls)
            call_id = make_tool_call_id(response_id, candidate_index, position, name, arguments, signature)
        out.calls.append(ToolCallPart(call_id, name, arguments))
    return out


def finish_reason(reason: Any, has_calls: bool) -> str:
    if reason in CONTENT_FILTER_REASONS:
        return "content_filter"
    if has_calls:
        return "tool_calls"
    if reason == "MAX_TOKENS":
        return "length"
    return "stop"


def _count(metadata: JsonObject, key: str) -> int:
    value = metadata.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def usage_from(metadata: Any) -> common_pb2.Usage:
    usage = common_pb2.Usage()
    if not isinstance(metadata, dict):
        return usage
    prompt = _count(metadata, "promptTokenCount") + _count(metadata, "toolUsePromptTokenCount")
    thoughts = _count(metadata, "thoughtsTokenCount")
    completion = _count(metadata, "candidatesTokenCount") + thoughts
    usage.prompt_tokens = prompt
    usage.completion_tokens = completion
    usage.total_tokens = _count(metadata, "totalTokenCount") or prompt + completion
    if "cachedContentTokenCount" in metadata:
        usage.prompt_tokens_details.cached_tokens = _count(metadata, "cachedContentTokenCount")
    if "thoughtsTokenCount" in metadata:
        usage.completion_tokens_details.reasoning_tokens = thoughts
    audio_in = _modality_count(metadata.get("promptTokensDetails"), "AUDIO")
    if audio_in is not None:
        usage.prompt_tokens_details.audio_tokens = audio_in
    audio_out = _modality_count(metadata.get("candidatesTokensDetails"), "AUDIO")
    if audio_out is not None:
        usage.completion_tokens_details.audio_tokens = audio_out
    return usage


def _modality_count(details: Any, modality: str) -> int | None:
    """The tokens of one modality in a ModalityTokenCount list; None when it lists none of it."""
    if not isinstance(details, list):
        return None
    counts = [
        _count(item, "tokenCount")
        for item in details
        if isinstance(item, dict) and item.get("modality") == modality
    ]
    return sum(counts) if counts else None


def _token_logprob(raw: Any, target: chat_pb2.TokenLogprob | chat_pb2.TopLogprob) -> None:
    entry: JsonObject = raw if isinstance(raw, dict) else {}
    token = entry.get("token")
    token = token if isinstance(token, str) else ""
    logprob = entry.get("logProbability")
    target.token = token
    target.logprob = float(logprob) if isinstance(logprob, (int, float)) else 0.0
    target.bytes.extend(token.encode())
    target.has_bytes = True


def logprobs_from(result: Any) -> chat_pb2.ChoiceLogprobs | None:
    """OpenAI logprobs from a candidate's `logprobsResult`, or None when there is none."""
    if not isinstance(result, dict):
        return None
    chosen = _list(result.get("chosenCandidates"), "logprobsResult.chosenCandidates")
    top = _list(result.get("topCandidates"), "logprobsResult.topCandidates")
    logprobs = chat_pb2.ChoiceLogprobs()
    for position, raw in enumerate(chosen):
        token = logprobs.content.add()
        _token_logprob(raw, token)
        alternatives = (
            top[position].get("candidates") if position < len(top) and isinstance(top[position], dict) else []
        )
        for alternative in _list(alternatives, "topCandidates.candidates"):
            _token_logprob(alternative, token.top_logprobs.add())
    return logprobs


def blocked_prompt(body: JsonObject) -> bool:
    feedback = body.get("promptFeedback")
    return isinstance(feedback, dict) and bool(feedback.get("blockReason"))


def chat_completion(body: Any, upstream_model: str) -> chat_pb2.ChatCompletion:
    """The ChatCompletion for a whole `generateContent` answer."""
    body = _object(body, "the response")
    completion = chat_pb2.ChatCompletion(
        id=completion_id(body), object="chat.completion", created=int(time.time()), model=upstream_model
    )
    response_id = completion.id.removeprefix("chatcmpl-")
    candidates = _list(body.get("candidates"), "candidates")
    if not candidates:
        if not blocked_prompt(body):
            raise MalformedResponse("the response has neither candidates nor a prompt block reason")
        choice = completion.choices.add(index=0, finish_reason="content_filter")
        choice.message.role = "assistant"
        choice.message.content = ""
    for position, raw in enumerate(candidates):
        candidate = _object(raw, "a candidate")
        index = candidate.get("index", position)
        index = index if isinstance(index, int) else position
        parts = read_parts(candidate, response_id, index)
        choice = completion.choices.add(index=index)
        choice.finish_reason = finish_reason(candidate.get("finishReason"), bool(parts.calls))
        message = choice.message
        message.role = "assistant"
        if parts.texts or not parts.calls:
            message.content = "".join(parts.texts)
        if parts.thoughts:
            message.reasoning = "".join(parts.thoughts)
        for call in parts.calls:
            message.tool_calls.add(id=call.id, type="function").function.MergeFrom(
                chat_pb2.FunctionCall(name=call.name, arguments=call.arguments)
            )
        logprobs = logprobs_from(candidate.get("logprobsResult"))
        if logprobs is not None:
            choice.logprobs.CopyFrom(logprobs)
    completion.usage.CopyFrom(usage_from(body.get("usageMetadata")))
    return completion
