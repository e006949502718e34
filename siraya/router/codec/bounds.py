"""The bounds OpenAI documents for request fields, in one table, checked on the decoded params.

The checks read the protos (`ChatCompletionParams`, `ResponseParams`, `EmbeddingParams`,
`CompletionParams`), not the JSON, so a request that arrives over REST and one that arrives over
gRPC meet the same bounds. The gateway calls them as a request enters (server/gateway_*.py; the
completions servicer for `CompletionParams`). Ranges are OpenAI's
(openai-openapi.yaml) where it gives one; where it gives none (token counts, `dimensions`, the size
of `logit_bias`) the cap is one no model comes near, so that a single field cannot ask an upstream
for an unbounded answer (issue #20: `dimensions: 19417038` brought back 103 MB).

An out-of-range value raises CodecError naming the field, with OpenAI's codes
(`integer_above_max_value`, `decimal_below_min_value`, ...): a 400 invalid_request_error.
"""

from __future__ import annotations

from siraya.router.codec.errors import CodecError
from siraya.router.v1 import chat_pb2, completions_pb2, embeddings_pb2, responses_pb2

__all__ = [
    "CHAT_BOUNDS",
    "COMPLETION_BOUNDS",
    "EMBEDDING_BOUNDS",
    "LOGIT_BIAS_ENTRIES",
    "LOGIT_BIAS_RANGE",
    "MAX_DIMENSIONS",
    "MAX_OUTPUT_TOKENS",
    "RESPONSE_BOUNDS",
    "check_chat",
    "check_completion",
    "check_embedding",
    "check_response",
]

# Well past any model's output (a few hundred thousand tokens at most) and any embedding width.
MAX_OUTPUT_TOKENS = 1 << 20
MAX_DIMENSIONS = 1 << 16
LOGIT_BIAS_RANGE = (-100, 100)
LOGIT_BIAS_ENTRIES = 1024

Bound = tuple[str, float, float]

CHAT_BOUNDS: tuple[Bound, ...] = (
    ("temperature", 0, 2),
    ("top_p", 0, 1),
    ("presence_penalty", -2, 2),
    ("frequency_penalty", -2, 2),
    ("n", 1, 128),
    ("max_tokens", 1, MAX_OUTPUT_TOKENS),
    ("max_completion_tokens", 1, MAX_OUTPUT_TOKENS),
    ("top_logprobs", 0, 20),
)
RESPONSE_BOUNDS: tuple[Bound, ...] = (
    ("temperature", 0, 2),
    ("top_p", 0, 1),
    ("max_output_tokens", 1, MAX_OUTPUT_TOKENS),
    ("top_logprobs", 0, 20),
)
EMBEDDING_BOUNDS: tuple[Bound, ...] = (("dimensions", 1, MAX_DIMENSIONS),)
# OpenAI allows `max_tokens: 0` (with `echo`, to score a prompt); a chat model generates at least one.
COMPLETION_BOUNDS: tuple[Bound, ...] = (
    ("temperature", 0, 2),
    ("top_p", 0, 1),
    ("presence_penalty", -2, 2),
    ("frequency_penalty", -2, 2),
    ("n", 1, 128),
    ("max_tokens", 1, MAX_OUTPUT_TOKENS),
    ("logprobs", 0, 5),
    ("best_of", 0, 20),
)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


def _out_of_range(name: str, value: float, low: float, high: float) -> CodecError:
    kind = "integer" if isinstance(value, int) else "decimal"
    if value < low:
        return CodecError(
            f"Invalid '{name}': {kind} below minimum value. "
            f"Expected a value >= {_number(low)}, but got {_number(value)} instead.",
            name,
            f"{kind}_below_min_value",
        )
    if value > high:
        return CodecError(
            f"Invalid '{name}': {kind} above maximum value. "
            f"Expected a value <= {_number(high)}, but got {_number(value)} instead.",
            name,
            f"{kind}_above_max_value",
        )
    # Only NaN compares neither below nor above.
    expected = f"expected a number between {_number(low)} and {_number(high)}"
    return CodecError(f"Invalid '{name}': {expected}.", name)


def _check(params: object, bounds: tuple[Bound, ...]) -> None:
    for name, low, high in bounds:
        if params.HasField(name):  # type: ignore[attr-defined]
            value = getattr(params, name)
            if not low <= value <= high:
                raise _out_of_range(name, value, low, high)


def check_chat(params: chat_pb2.ChatCompletionParams) -> None:
    # The loop is inlined here: chat is the hot path, and a call per request is counted there.
    for name, low, high in CHAT_BOUNDS:
        if params.HasField(name):
            value = getattr(params, name)
            if not low <= value <= high:
                raise _out_of_range(name, value, low, high)
    if params.logit_bias:
        bias = params.logit_bias
        if len(bias) > LOGIT_BIAS_ENTRIES:
            raise CodecError(
                f"Invalid 'logit_bias': at most {LOGIT_BIAS_ENTRIES} tokens may be biased, not {len(bias)}.",
                "logit_bias",
                "array_above_max_length",
            )
        low, high = LOGIT_BIAS_RANGE
        for token, weight in bias.items():
            if not low <= weight <= high:
                raise _out_of_range(f"logit_bias.{token}", weight, low, high)


def check_response(params: responses_pb2.ResponseParams) -> None:
    _check(params, RESPONSE_BOUNDS)


def check_embedding(params: embeddings_pb2.EmbeddingParams) -> None:
    _check(params, EMBEDDING_BOUNDS)


def check_completion(params: completions_pb2.CompletionParams) -> None:
    # `logit_bias` is checked on the chat request it becomes (`check_chat`), with the same names.
    _check(params, COMPLETION_BOUNDS)
