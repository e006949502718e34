"""OpenAI legacy completions JSON <-> `CompletionParams` / `Completion`.

`decode_completion_request` checks a client's `POST /v1/completions` body has the shape the proto
needs and names the offending field in every error; the rules on values (ranges, `suffix`, `best_of`,
token ids) are checked on the proto, for REST and gRPC callers alike (`bounds.check_completion`,
`completions_to_chat.check_completion_params`, server/completion_prompts.py). `encode_completion`
writes OpenAI's CreateCompletionResponse, which is also the shape of each streamed chunk.
"""

from __future__ import annotations

import orjson

from siraya.router.codec.chat_reply_parts import usage_object
from siraya.router.codec.fields import (
    JsonObject,
    opt_bool,
    opt_float,
    opt_int,
    opt_str,
)
from siraya.router.codec.routing import collect_extra_body, decode_routing, require_model
from siraya.router.codec.sampling_fields import (
    INT32_MAX,
    INT32_MIN,
    decode_logit_bias,
    decode_seed,
    decode_stop,
    decode_stream_options,
    int_in,
)
from siraya.router.codec.text_or_tokens import decode_text_or_tokens
from siraya.router.v1 import completions_pb2

__all__ = ["completion_object", "decode_completion_request", "encode_completion"]

_FLOAT_PARAMS = ("temperature", "top_p", "presence_penalty", "frequency_penalty")
_INT32_PARAMS = ("max_tokens", "n", "logprobs", "best_of")
_KNOWN_KEYS = frozenset(
    {
        *_FLOAT_PARAMS,
        *_INT32_PARAMS,
        "model",
        "prompt",
        "suffix",
        "stop",
        "seed",
        "echo",
        "logit_bias",
        "user",
        "stream",
        "stream_options",
    }
)


# --- requests ---------------------------------------------------------------------------------


def decode_completion_request(body: JsonObject) -> completions_pb2.CompletionParams:
    """Decode a client's `POST /v1/completions` body (OpenAI's CreateCompletionRequest + routing)."""
    params = completions_pb2.CompletionParams(model=require_model(body))
    decode_text_or_tokens(body.get("prompt"), params, "prompt")
    for key in _FLOAT_PARAMS:
        if key in body and (number := opt_float(body, key)) is not None:
            setattr(params, key, number)
    for key in _INT32_PARAMS:
        if key in body and (integer := int_in(opt_int(body, key), INT32_MIN, INT32_MAX, key)) is not None:
            setattr(params, key, integer)
    for key in ("suffix", "user"):
        if (text := opt_str(body, key)) is not None:
            setattr(params, key, text)
    for key in ("echo", "stream"):
        if (flag := opt_bool(body, key)) is not None:
            setattr(params, key, flag)
    decode_seed(body, params)
    decode_stop(body.get("stop"), params)
    decode_logit_bias(body, params)
    decode_stream_options(body, params)
    decode_routing(body, params.routing)
    collect_extra_body(body, _KNOWN_KEYS, params.extra_body)
    return params


# --- replies ----------------------------------------------------------------------------------


def encode_completion(completion: completions_pb2.Completion) -> bytes:
    """OpenAI's CreateCompletionResponse bytes: a unary completion, or one `data:` chunk of a stream."""
    return orjson.dumps(completion_object(completion))


def completion_object(completion: completions_pb2.Completion) -> JsonObject:
    """The JSON object `encode_completion` serializes, in OpenAI's key order.

    A chunk's unfinished choice has `finish_reason: null`, as OpenAI's stream does; `usage` appears
    only where the completion has it. `usage.cost` and `provider` are the gateway's additions.
    """
    out: JsonObject = {
        "id": completion.id,
        "object": "text_completion",
        "created": completion.created,
        "model": completion.model,
        "choices": [
            {
                "text": choice.text,
                "index": choice.index,
                "logprobs": _logprobs_object(choice.logprobs) if choice.HasField("logprobs") else None,
                "finish_reason": choice.finish_reason if choice.HasField("finish_reason") else None,
            }
            for choice in completion.choices
        ],
    }
    if completion.HasField("system_fingerprint"):
        out["system_fingerprint"] = completion.system_fingerprint
    if completion.HasField("usage"):
        out["usage"] = usage_object(completion.usage)
    if completion.HasField("provider"):
        out["provider"] = completion.provider
    return out


def _logprobs_object(logprobs: completions_pb2.CompletionLogprobs) -> JsonObject:
    return {
        "tokens": list(logprobs.tokens),
        "token_logprobs": list(logprobs.token_logprobs),
        "top_logprobs": [
            {entry.token: entry.logprob for entry in position.entries} for position in logprobs.top_logprobs
        ],
        "text_offset": list(logprobs.text_offset),
    }
