"""The parts of a Response that a chat-backed reply shares between its whole and streamed forms.

A Response echoes the request's settings (instructions, tools, sampling, ...) around the model's
output; `response_envelope` builds that echo once, and the translators add output and usage.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from google.protobuf import struct_pb2

from siraya.router.codec.fields import struct_to_dict
from siraya.router.v1 import chat_pb2, common_pb2, responses_pb2

__all__ = [
    "RESPONSE_ERROR_CODES",
    "delta_logprobs",
    "fill_usage",
    "incomplete_reason",
    "item_id",
    "output_annotations",
    "output_logprobs",
    "response_envelope",
]

# OpenAI's `ResponseErrorCode`: the only codes a Response's `error.code` may hold.
RESPONSE_ERROR_CODES = frozenset(
    {
        "server_error",
        "rate_limit_exceeded",
        "invalid_prompt",
        "data_residency_mismatch",
        "bio_policy",
        "vector_store_timeout",
        "invalid_image",
        "invalid_image_format",
        "invalid_base64_image",
        "invalid_image_url",
        "image_too_large",
        "image_too_small",
        "image_parse_error",
        "image_content_policy_violation",
        "invalid_image_mode",
        "image_file_too_large",
        "unsupported_image_media_type",
        "empty_image_file",
        "failed_to_download_image",
        "image_file_not_found",
    }
)
_INCOMPLETE_REASONS = {"length": "max_output_tokens", "content_filter": "content_filter"}


def item_id(prefix: str, response_id: str, output_index: int) -> str:
    """A stable id for output item `output_index`, unique because the response id is."""
    return f"{prefix}_{response_id.removeprefix('resp_')}{output_index:02d}"


def incomplete_reason(finish_reason: str) -> str | None:
    """The Response's `incomplete_details.reason` for a chat finish reason, or None if it finished."""
    return _INCOMPLETE_REASONS.get(finish_reason)


def response_envelope(
    params: responses_pb2.ResponseParams, response_id: str, created_at: int, model: str, status: str
) -> responses_pb2.Response:
    """A Response with no output yet, echoing the request's settings with OpenAI's defaults."""
    has = params.HasField
    response = responses_pb2.Response(
        id=response_id,
        object="response",
        created_at=created_at,
        status=status,
        model=model,
        background=False,
        parallel_tool_calls=params.parallel_tool_calls if has("parallel_tool_calls") else True,
        temperature=params.temperature if has("temperature") else 1.0,
        top_p=params.top_p if has("top_p") else 1.0,
        truncation=params.truncation if has("truncation") else "disabled",
        metadata=params.metadata,
        tools=params.tools,
    )
    for name in (
        "instructions",
        "max_output_tokens",
        "store",
        "user",
        "service_tier",
        "top_logprobs",
        "max_tool_calls",
        "safety_identifier",
        "prompt_cache_key",
    ):
        if has(name):
            setattr(response, name, getattr(params, name))
    response.reasoning.CopyFrom(params.reasoning)
    if has("tool_choice"):
        response.tool_choice.CopyFrom(params.tool_choice)
    else:
        response.tool_choice.mode = "auto"
    response.text.CopyFrom(params.text)
    if not response.text.format.type:
        response.text.format.type = "text"
    return response


def fill_usage(usage: common_pb2.Usage, target: responses_pb2.ResponseUsage) -> None:
    target.input_tokens = usage.prompt_tokens
    target.output_tokens = usage.completion_tokens
    target.total_tokens = usage.total_tokens or usage.prompt_tokens + usage.completion_tokens
    target.cached_tokens = usage.prompt_tokens_details.cached_tokens
    target.cache_write_tokens = usage.prompt_tokens_details.cache_creation_tokens
    target.reasoning_tokens = usage.completion_tokens_details.reasoning_tokens
    if usage.HasField("cost"):
        target.cost = usage.cost


# The logprob helpers return `list[Any]`: `ListValue.extend` takes JSON objects, which its stub does not say.


def output_logprobs(tokens: Iterable[chat_pb2.TokenLogprob]) -> list[Any]:
    """Chat token logprobs in the shape of an `output_text` part's `logprobs` (with bytes)."""
    return [
        {
            "token": token.token,
            "bytes": list(token.bytes),
            "logprob": token.logprob,
            "top_logprobs": [
                {"token": top.token, "bytes": list(top.bytes), "logprob": top.logprob}
                for top in token.top_logprobs
            ],
        }
        for token in tokens
    ]


def delta_logprobs(tokens: Iterable[chat_pb2.TokenLogprob]) -> list[Any]:
    """Chat token logprobs in the shape of a text delta event's `logprobs` (no bytes)."""
    return [
        {
            "token": token.token,
            "logprob": token.logprob,
            "top_logprobs": [{"token": top.token, "logprob": top.logprob} for top in token.top_logprobs],
        }
        for token in tokens
    ]


def output_annotations(annotations: Iterable[struct_pb2.Struct]) -> list[dict[str, Any]]:
    """Chat annotations ({"type": "url_citation", "url_citation": {...}}) flattened, as Responses has them."""
    out = []
    for annotation in annotations:
        raw = struct_to_dict(annotation)
        nested = raw.get(raw.get("type") or "")
        if isinstance(nested, dict):
            raw = {"type": raw["type"], **nested}
        out.append(raw)
    return out
