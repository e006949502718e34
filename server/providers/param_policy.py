"""What happens to a chat request field that a provider's wire protocol cannot express.

One rule, decided here for every native adapter: a field the adapter does not translate may be
dropped only if ignoring it cannot change the meaning of the output. Everything else is refused
with `InvalidRequest(code="unsupported_parameter")` naming the field, never silently ignored.

A field may be dropped when

- it is bookkeeping or advisory (`DROPPABLE_CHAT_FIELDS`): it affects storage, billing tier,
  caching, abuse tracking or speed, never which output is a correct answer; or
- it is set to its documented no-op value (`n: 1`, `presence_penalty: 0`, `logprobs: false`,
  `parallel_tool_calls: true`, `modalities: ["text"]`, ...): every provider already behaves so; or
- the gateway honours it itself, faithfully, whatever the upstream (`HONOURED_BY_GATEWAY`):

      field                   value   how the gateway honours it
      parallel_tool_calls     false   keeps the first tool call of each choice, unary and streamed
                                      (tool_call_limit.py); with a named `tool_choice` it holds anyway

A 400 is for what the gateway truly cannot honour.

With `require_parameters` (the request's `provider.require_parameters`) the first kind must be
supported too, or the deployment does not suit the request; no-op values never disqualify one.
`unsupported_chat_fields` answers that question without raising, for the router to filter
deployments before calling any; `enforce_chat_support` is what an adapter calls before it
translates: it raises on the first gap and returns the fields to omit.

Content parts are user content, so they are never dropped: an `image_url`, `input_audio` or `file`
part needs that name in `ParameterSupport.supported`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from server.errors import InvalidRequest
from siraya.router.v1 import chat_pb2

__all__ = [
    "CHAT_FIELDS",
    "CONTENT_PART_KINDS",
    "DROPPABLE_CHAT_FIELDS",
    "FULL_CHAT_SUPPORT",
    "HONOURED_BY_GATEWAY",
    "ParameterSupport",
    "enforce_chat_support",
    "present_chat_fields",
    "requires_parameters",
    "unsupported_chat_fields",
]

_CODE = "unsupported_parameter"
# Not client parameters an upstream could lack: the request itself, the gateway's own routing,
# pass-through JSON, and `stream` (the RPC decides whether to stream).
_NOT_PARAMETERS = frozenset({"model", "messages", "routing", "extra_body", "stream"})

CHAT_FIELDS: frozenset[str] = frozenset(
    f.name for f in chat_pb2.ChatCompletionParams.DESCRIPTOR.fields if f.name not in _NOT_PARAMETERS
)
"""Every `ChatCompletionParams` field this policy judges."""

CONTENT_PART_KINDS: frozenset[str] = frozenset({"image_url", "input_audio", "file"})
"""Content part kinds an adapter must opt into (text and refusal parts need no support)."""

DROPPABLE_CHAT_FIELDS: frozenset[str] = frozenset(
    {
        # Bookkeeping: abuse tracking and stored-completion tags.
        "user",
        "safety_identifier",
        "metadata",
        "store",
        # Capacity and price tier: latency and cost, not content.
        "service_tier",
        # Prompt caching: cost and latency only.
        "prompt_cache_key",
        "prompt_cache_retention",
        "cache_control",
        # Best-effort reproducibility across requests, which OpenAI itself does not guarantee;
        # any single answer without it is an equally valid sample.
        "seed",
        # Predicted Outputs is speculative decoding: it speeds up generation, never alters it.
        "prediction",
    }
)
"""Fields whose absence upstream cannot change the meaning of the output.

Deliberately not here, because ignoring them can change the output: sampling and length controls
(`temperature`, `top_p`, `stop`, `max_tokens`, `max_completion_tokens`, penalties, `logit_bias`),
`n`, `logprobs` / `top_logprobs` (the response would lack them), `reasoning_effort` and `verbosity`
(they change the answer),
`tools` / `tool_choice` / `functions` / `function_call` / `response_format`, `modalities` /
`audio`, `web_search_options`, and `stream_options` when it asks for the usage chunk. Each of these
is dropped only at its no-op value (see `_NO_OP`).
"""


HONOURED_BY_GATEWAY: dict[str, str] = {
    "parallel_tool_calls": "false: the adapter keeps the first tool call of each choice",
}
"""Fields the gateway honours itself for any upstream: never a gap, and omitted upstream unless the
adapter translates them (Anthropic's `disable_parallel_tool_use`)."""


def _is_zero(value: float) -> bool:
    return value == 0


# Values that ask for exactly what every provider does anyway: honoured by omission.
_NO_OP: dict[str, Callable[[Any], bool]] = {
    "n": lambda value: value == 1,
    "presence_penalty": _is_zero,
    "frequency_penalty": _is_zero,
    "logit_bias": lambda value: all(bias == 0 for bias in value.values()),
    "logprobs": lambda value: value is False,
    "top_logprobs": _is_zero,
    "parallel_tool_calls": lambda value: value is True,
    "modalities": lambda value: list(value) == ["text"],
    "store": lambda value: value is False,
    # `include_obfuscation` only pads chunks against a side channel; `include_usage` adds a chunk.
    "stream_options": lambda value: not value.include_usage,
}


@dataclass(frozen=True, slots=True)
class ParameterSupport:
    """What one adapter translates: `ChatCompletionParams` field names and content part kinds.

    e.g. `ANTHROPIC = ParameterSupport(supported=frozenset({"temperature", "max_tokens", "image_url", ...}))`
    """

    supported: frozenset[str]

    def __post_init__(self) -> None:
        # A typo would silently turn a supported field into a refused one; fail at import instead.
        unknown = self.supported - CHAT_FIELDS - CONTENT_PART_KINDS
        if unknown:
            raise ValueError(f"Unknown chat parameters in ParameterSupport: {', '.join(sorted(unknown))}")


FULL_CHAT_SUPPORT = ParameterSupport(supported=CHAT_FIELDS | CONTENT_PART_KINDS)
"""Everything: for adapters that pass the OpenAI request through as it is."""


def present_chat_fields(params: chat_pb2.ChatCompletionParams) -> list[str]:
    """The fields the client set (proto3 presence), in field-number order; routing and the like excluded."""
    return [
        descriptor.name for descriptor, _ in params.ListFields() if descriptor.name not in _NOT_PARAMETERS
    ]


def requires_parameters(params: chat_pb2.ChatCompletionParams) -> bool:
    """Whether the request's `provider.require_parameters` asks for deployments that support every field."""
    return params.routing.provider.require_parameters


@dataclass(frozen=True, slots=True)
class _Gap:
    """One thing in the request the provider cannot honour."""

    param: str
    # Completes "... is not supported by <provider>".
    subject: str
    reason: str = ""


def _assess(
    params: chat_pb2.ChatCompletionParams, support: ParameterSupport, require_parameters: bool
) -> tuple[list[str], list[_Gap]]:
    """(fields to drop, gaps), both in request order."""
    dropped: list[str] = []
    gaps: list[_Gap] = []
    supported = support.supported
    for descriptor, value in params.ListFields():
        name = descriptor.name
        if name in supported or name in _NOT_PARAMETERS:
            continue
        if name in HONOURED_BY_GATEWAY:
            dropped.append(name)
            continue
        no_op = _NO_OP.get(name)
        if no_op is not None and no_op(value):
            dropped.append(name)
        elif name in DROPPABLE_CHAT_FIELDS and not require_parameters:
            dropped.append(name)
        elif name in DROPPABLE_CHAT_FIELDS:
            gaps.append(_Gap(name, f"The parameter '{name}'", " (provider.require_parameters is set)"))
        else:
            gaps.append(_Gap(name, f"The parameter '{name}'"))
    if not CONTENT_PART_KINDS <= supported:
        for i, message in enumerate(params.messages):
            if message.WhichOneof("content") != "parts":
                continue
            for j, part in enumerate(message.parts.parts):
                kind = part.WhichOneof("part")
                if kind in CONTENT_PART_KINDS and kind not in supported:
                    gaps.append(_Gap(f"messages[{i}].content[{j}]", f"The content part type '{kind}'"))
    return dropped, gaps


def unsupported_chat_fields(
    params: chat_pb2.ChatCompletionParams, support: ParameterSupport, *, require_parameters: bool = False
) -> list[str]:
    """What makes a deployment unsuitable: field names and `messages[i].content[j]`; [] if it suits."""
    return [gap.param for gap in _assess(params, support, require_parameters)[1]]


def enforce_chat_support(
    params: chat_pb2.ChatCompletionParams,
    support: ParameterSupport,
    *,
    require_parameters: bool = False,
    provider: str | None = None,
) -> list[str]:
    """The fields the adapter must omit upstream; raises `InvalidRequest` for the first it cannot honour.

    `provider` names the deployment in the message ("by provider 'anthropic'").
    """
    dropped, gaps = _assess(params, support, require_parameters)
    if gaps:
        gap = gaps[0]
        by = f"provider '{provider}'" if provider else "this provider"
        raise InvalidRequest(
            f"{gap.subject} is not supported by {by}{gap.reason}.", param=gap.param, code=_CODE
        )
    return dropped
