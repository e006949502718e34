"""What a chat completion and a stream chunk share, JSON <-> protobuf: the checks of a reply's
shape, and its logprobs and usage, read and written.

Upstream replies are decoded tolerantly (missing or null optional fields are simply unset) but
strictly about the essentials. Scalars are passed straight to the proto constructors, which
type-check them in C; a wrong type raises TypeError or ValueError (`BAD_SHAPE`), which the reply
decoders turn into a `CodecError` naming the field (the caller answers 502).
"""

from __future__ import annotations

from typing import Any

from siraya.router.codec.errors import CodecError
from siraya.router.codec.fields import JsonObject
from siraya.router.v1 import chat_pb2, common_pb2

__all__ = [
    "BAD_SHAPE",
    "as_object",
    "choices_of",
    "decode_logprobs",
    "decode_usage",
    "logprobs_dict",
    "timestamp",
    "usage_dict",
    "usage_object",
    "wrong_type",
]

BAD_SHAPE = (TypeError, ValueError)


def timestamp(value: Any) -> Any:
    # A few servers write `created` as a float; the proto (and OpenAI) use whole seconds.
    return int(value) if type(value) is float else value


def choices_of(body: Any, what: str) -> list[Any]:
    if not isinstance(body, dict):
        raise CodecError(f"Invalid {what}: expected a JSON object.", None, "invalid_type")
    choices = body.get("choices")
    if not isinstance(choices, list):
        raise CodecError(f"Invalid {what}: 'choices' must be an array.", "choices", "invalid_type")
    return choices


def as_object(value: Any) -> JsonObject:
    # TypeError is the internal signal for "wrong shape"; the decoders turn it into a CodecError.
    if not isinstance(value, dict):
        raise TypeError("expected an object")
    return value


def wrong_type(what: str, param: str) -> CodecError:
    return CodecError(f"Invalid {what}: a field of '{param}' has the wrong type.", param, "invalid_type")


# --- decode -----------------------------------------------------------------------------------


def decode_logprobs(raw: Any, target: chat_pb2.ChoiceLogprobs) -> None:
    raw = as_object(raw)
    target.SetInParent()
    content = raw.get("content")
    if content:
        _decode_token_logprobs(content, target.content)
    refusal = raw.get("refusal")
    if refusal:
        _decode_token_logprobs(refusal, target.refusal)


def _decode_token_logprobs(items: list[Any], target: Any) -> None:
    for item in items:
        item = as_object(item)
        raw_bytes = item.get("bytes")
        entry = target.add(
            token=item.get("token"),
            logprob=item.get("logprob"),
            bytes=raw_bytes,
            has_bytes=raw_bytes is not None,
        )
        top_logprobs = item.get("top_logprobs")
        if top_logprobs:
            add_top = entry.top_logprobs.add
            for top in top_logprobs:
                top = as_object(top)
                top_bytes = top.get("bytes")
                add_top(
                    token=top.get("token"),
                    logprob=top.get("logprob"),
                    bytes=top_bytes,
                    has_bytes=top_bytes is not None,
                )


# (JSON key, proto field) of the usage details; the proto fields are optional, so absent stays absent.
_PROMPT_DETAILS = (
    ("cached_tokens", "cached_tokens"),
    ("audio_tokens", "audio_tokens"),
    ("cache_write_tokens", "cache_creation_tokens"),
)
_COMPLETION_DETAILS = (
    ("reasoning_tokens", "reasoning_tokens"),
    ("audio_tokens", "audio_tokens"),
    ("accepted_prediction_tokens", "accepted_prediction_tokens"),
    ("rejected_prediction_tokens", "rejected_prediction_tokens"),
)


def _copy_counts(raw: dict[str, Any], target: Any, fields: tuple[tuple[str, str], ...]) -> None:
    target.SetInParent()
    for key, field in fields:
        value = raw.get(key)
        if value is not None:
            setattr(target, field, value)


def decode_usage(raw: Any, target: common_pb2.Usage, what: str) -> None:
    if not isinstance(raw, dict):
        raise CodecError(f"Invalid {what}: 'usage' must be an object.", "usage", "invalid_type")
    try:
        target.prompt_tokens = raw.get("prompt_tokens") or 0
        target.completion_tokens = raw.get("completion_tokens") or 0
        target.total_tokens = raw.get("total_tokens") or 0
        prompt = raw.get("prompt_tokens_details")
        if prompt is not None:
            _copy_counts(as_object(prompt), target.prompt_tokens_details, _PROMPT_DETAILS)
        completion = raw.get("completion_tokens_details")
        if completion is not None:
            _copy_counts(as_object(completion), target.completion_tokens_details, _COMPLETION_DETAILS)
    except BAD_SHAPE:
        raise wrong_type(what, "usage") from None


# --- encode -----------------------------------------------------------------------------------


def usage_object(usage: common_pb2.Usage) -> JsonObject:
    """OpenAI's CompletionUsage object, as a chat completion carries it (legacy completions share it)."""
    return usage_dict(usage)


def logprobs_dict(logprobs: chat_pb2.ChoiceLogprobs) -> JsonObject:
    # The proto cannot tell an empty list from null; OpenAI writes null for the side not taken.
    return {
        "content": _token_logprob_dicts(logprobs.content) if logprobs.content else None,
        "refusal": _token_logprob_dicts(logprobs.refusal) if logprobs.refusal else None,
    }


def _token_logprob_dicts(tokens: Any) -> list[JsonObject]:
    return [
        {
            "token": token.token,
            "logprob": token.logprob,
            "bytes": list(token.bytes) if token.has_bytes else None,
            "top_logprobs": [
                {
                    "token": top.token,
                    "logprob": top.logprob,
                    "bytes": list(top.bytes) if top.has_bytes else None,
                }
                for top in token.top_logprobs
            ],
        }
        for token in tokens
    ]


def usage_dict(usage: common_pb2.Usage) -> JsonObject:
    out: JsonObject = {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
    }
    if usage.HasField("prompt_tokens_details"):
        prompt = usage.prompt_tokens_details
        prompt_details: JsonObject = {
            "cached_tokens": prompt.cached_tokens,
            "audio_tokens": prompt.audio_tokens,
        }
        if prompt.HasField("cache_creation_tokens"):
            prompt_details["cache_write_tokens"] = prompt.cache_creation_tokens
        out["prompt_tokens_details"] = prompt_details
    if usage.HasField("completion_tokens_details"):
        completion = usage.completion_tokens_details
        out["completion_tokens_details"] = {
            "reasoning_tokens": completion.reasoning_tokens,
            "audio_tokens": completion.audio_tokens,
            "accepted_prediction_tokens": completion.accepted_prediction_tokens,
            "rejected_prediction_tokens": completion.rejected_prediction_tokens,
        }
    if usage.HasField("cost"):
        out["cost"] = usage.cost
    return out
