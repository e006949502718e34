"""What the fake answers to generateContent: a deterministic plan, or a scripted one, as Gemini JSON.

The default plan echoes the last user text ("echo: <text>"), answers function results with
"result: <json>", fills a JSON instance of `responseJsonSchema` in JSON mode, calls the first
allowed function when the tool mode is ANY, thinks out loud when `includeThoughts` is on, honours
`maxOutputTokens` (in words, finish MAX_TOKENS) and `stopSequences`, and repeats per candidate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from tests.fakes.openai_upstream.schema_instance import schema_instance

from .control import GeminiReply, ScriptedCall

__all__ = ["Plan", "default_plan", "response_body", "scripted_plan", "stream_events"]

JsonObject = dict[str, Any]


@dataclass
class Plan:
    """The answer to one request: the same candidate repeated `candidates` times."""

    text: str | None = None
    thoughts: str | None = None
    calls: list[ScriptedCall] = field(default_factory=list)
    finish_reason: str = "STOP"
    candidates: int = 1
    prompt_tokens: int = 1
    usage: dict[str, int] | None = None
    block_reason: str | None = None
    logprobs: int | None = None


def _words(text: str) -> int:
    return len(text.split())


def _request_text(body: JsonObject) -> str:
    texts = [p.get("text", "") for c in body.get("contents") or [] for p in c.get("parts") or []]
    texts += [p.get("text", "") for p in (body.get("systemInstruction") or {}).get("parts") or []]
    return " ".join(t for t in texts if isinstance(t, str))


def _declarations(body: JsonObject) -> list[JsonObject]:
    return [d for tool in body.get("tools") or [] for d in tool.get("functionDeclarations") or []]


def default_plan(body: JsonObject) -> Plan:
    config = body.get("generationConfig") or {}
    last = (body.get("contents") or [{}])[-1]
    parts = last.get("parts") or []
    responses = [p["functionResponse"] for p in parts if "functionResponse" in p]
    plan = Plan(candidates=config.get("candidateCount", 1), prompt_tokens=max(1, _words(_request_text(body))))
    if config.get("responseLogprobs"):
        plan.logprobs = config.get("logprobs", 0)
    user_text = " ".join(p["text"] for p in parts if isinstance(p.get("text"), str))
    calling = (body.get("toolConfig") or {}).get("functionCallingConfig") or {}
    declarations = _declarations(body)
    if declarations and calling.get("mode") == "ANY" and not responses:
        allowed = calling.get("allowedFunctionNames") or [d["name"] for d in declarations]
        declaration = next(d for d in declarations if d["name"] == allowed[0])
        args = schema_instance(declaration.get("parametersJsonSchema") or {"type": "object"})
        plan.calls = [
            ScriptedCall(declaration["name"], args if isinstance(args, dict) else {}, "c2lnbmF0dXJl")
        ]
        return plan
    if responses:
        text = "result: " + orjson.dumps([r.get("response") for r in responses]).decode()
    elif config.get("responseMimeType") == "application/json":
        schema = config.get("responseJsonSchema")
        text = orjson.dumps(schema_instance(schema) if schema else {"echo": user_text}).decode()
    else:
        text = "echo: " + user_text
    thinking = config.get("thinkingConfig") or {}
    if thinking.get("includeThoughts"):
        plan.thoughts = f"Thinking about: {user_text}"
    for stop in config.get("stopSequences") or []:
        if stop in text:
            text = text[: text.index(stop)]
    limit = config.get("maxOutputTokens")
    if isinstance(limit, int) and _words(text) > limit:
        text = " ".join(text.split()[:limit])
        plan.finish_reason = "MAX_TOKENS"
    plan.text = text
    return plan


def scripted_plan(reply: GeminiReply, body: JsonObject) -> Plan:
    config = body.get("generationConfig") or {}
    return Plan(
        text=reply.text,
        thoughts=reply.thoughts,
        calls=list(reply.calls),
        finish_reason=reply.finish_reason,
        candidates=config.get("candidateCount", 1),
        prompt_tokens=max(1, _words(_request_text(body))),
        usage=reply.usage,
        block_reason=reply.block_reason,
    )


def _call_part(call: ScriptedCall) -> JsonObject:
    part: JsonObject = {"functionCall": {"name": call.name, "args": call.args}}
    if call.thought_signature:
        part["thoughtSignature"] = call.thought_signature
    return part


def _parts(plan: Plan) -> list[JsonObject]:
    parts: list[JsonObject] = []
    if plan.thoughts:
        parts.append({"text": plan.thoughts, "thought": True})
    if plan.text:
        parts.append({"text": plan.text})
    parts.extend(_call_part(call) for call in plan.calls)
    return parts


def _logprobs(text: str, top: int) -> JsonObject:
    tokens = [word + " " for word in text.split()]
    return {
        "topCandidates": [
            {
                "candidates": [{"token": t, "logProbability": -0.25}, {"token": "x", "logProbability": -2.5}][
                    : top or 1
                ]
            }
            for t in tokens
        ],
        "chosenCandidates": [{"token": t, "logProbability": -0.25} for t in tokens],
    }


def usage_metadata(plan: Plan, complete: bool = True) -> JsonObject:
    candidates = plan.candidates * (_words(plan.text or "") + sum(1 + len(c.args) for c in plan.calls))
    usage: JsonObject = {
        "promptTokenCount": plan.prompt_tokens,
        "candidatesTokenCount": candidates,
        "totalTokenCount": 0,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": plan.prompt_tokens}],
    }
    if plan.thoughts:
        usage["thoughtsTokenCount"] = plan.candidates * _words(plan.thoughts)
    if not complete:
        usage.pop("candidatesTokenCount")
        usage.pop("thoughtsTokenCount", None)
    if plan.usage:
        usage.update(plan.usage)
    if not (plan.usage and "totalTokenCount" in plan.usage):
        counted = (
            "promptTokenCount",
            "candidatesTokenCount",
            "thoughtsTokenCount",
            "toolUsePromptTokenCount",
        )
        usage["totalTokenCount"] = sum(usage.get(key, 0) for key in counted)
    return usage


def _blocked(plan: Plan, model: str, response_id: str) -> JsonObject:
    return {
        "promptFeedback": {
            "blockReason": plan.block_reason,
            "safetyRatings": [{"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH"}],
        },
        "usageMetadata": usage_metadata(Plan(prompt_tokens=plan.prompt_tokens)),
        "modelVersion": model,
        "responseId": response_id,
    }


def response_body(plan: Plan, model: str, response_id: str) -> JsonObject:
    if plan.block_reason:
        return _blocked(plan, model, response_id)
    candidates = []
    for index in range(plan.candidates):
        candidate: JsonObject = {
            "content": {"parts": _parts(plan), "role": "model"},
            "finishReason": plan.finish_reason,
            "index": index,
        }
        if plan.logprobs is not None and plan.text:
            candidate["logprobsResult"] = _logprobs(plan.text, plan.logprobs)
            candidate["avgLogprobs"] = -0.25
        candidates.append(candidate)
    return {
        "candidates": candidates,
        "usageMetadata": usage_metadata(plan),
        "modelVersion": model,
        "responseId": response_id,
    }


def _pieces(text: str) -> list[str]:
    words = text.split(" ")
    return [" ".join(words[i : i + 2]) + (" " if i + 2 < len(words) else "") for i in range(0, len(words), 2)]


def stream_events(plan: Plan, model: str, response_id: str) -> list[JsonObject]:
    """The SSE events of one streamed answer, in order; the last carries finishReason and full usage."""
    if plan.block_reason:
        return [_blocked(plan, model, response_id)]
    slices: list[list[JsonObject]] = []
    if plan.thoughts:
        slices.append([{"text": plan.thoughts, "thought": True}])
    if plan.text:
        slices.extend([{"text": piece}] for piece in _pieces(plan.text))
    if plan.calls:
        slices.append([_call_part(call) for call in plan.calls])
    if not slices:
        slices.append([{"text": ""}])
    events: list[JsonObject] = []
    for index in range(plan.candidates):
        for position, parts in enumerate(slices):
            last = position == len(slices) - 1
            candidate: JsonObject = {"content": {"parts": parts, "role": "model"}, "index": index}
            if last:
                candidate["finishReason"] = plan.finish_reason
            events.append(
                {
                    "candidates": [candidate],
                    "usageMetadata": usage_metadata(plan, complete=last and index == plan.candidates - 1),
                    "modelVersion": model,
                    "responseId": response_id,
                }
            )
    return events
