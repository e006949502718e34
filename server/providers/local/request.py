"""Chat params -> a `Generation`: what the local model is asked to do. Pure: no model, no I/O.

The model's own chat template renders the turns, so the translation keeps each turn's role and
text and nothing else. Tools are refused: nothing parses tool calls out of a small model's text.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from server.errors import InvalidRequest
from server.providers.param_policy import ParameterSupport, enforce_chat_support
from siraya.router.v1 import chat_pb2

__all__ = ["LOCAL_SUPPORT", "Generation", "Sampling", "Turn", "to_generation"]

LOCAL_SUPPORT = ParameterSupport(
    supported=frozenset(
        {
            "temperature",
            "top_p",
            "stop",
            "max_tokens",
            "max_completion_tokens",
            "seed",
            "presence_penalty",
            "frequency_penalty",
            "response_format",
            "stream_options",
        }
    )
)
"""What the local provider honours; `param_policy` drops or refuses the rest (tools, n > 1, images, ...)."""

# llama-cpp-python's chat defaults (`Llama.create_chat_completion`), used when the client sets none:
# a small model wanders at OpenAI's default temperature of 1.
DEFAULT_TEMPERATURE = 0.2
DEFAULT_TOP_P = 0.95
# llama.cpp server's own sampling fields, accepted through `extra_body`, with llama.cpp's defaults.
EXTRA_SAMPLING_DEFAULTS: dict[str, float] = {"top_k": 40, "min_p": 0.05, "repeat_penalty": 1.0}
# Any JSON object, for `response_format: {"type": "json_object"}`.
_ANY_OBJECT_SCHEMA = '{"type": "object"}'

_ROLES = {
    chat_pb2.CHAT_ROLE_SYSTEM: "system",
    # Chat templates know only system, user and assistant; a developer message is a system message.
    chat_pb2.CHAT_ROLE_DEVELOPER: "system",
    chat_pb2.CHAT_ROLE_USER: "user",
    chat_pb2.CHAT_ROLE_ASSISTANT: "assistant",
}


@dataclass(frozen=True, slots=True)
class Turn:
    role: str
    content: str


@dataclass(frozen=True, slots=True)
class Sampling:
    temperature: float = DEFAULT_TEMPERATURE
    top_p: float = DEFAULT_TOP_P
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    seed: int | None = None
    top_k: int = int(EXTRA_SAMPLING_DEFAULTS["top_k"])
    min_p: float = EXTRA_SAMPLING_DEFAULTS["min_p"]
    repeat_penalty: float = EXTRA_SAMPLING_DEFAULTS["repeat_penalty"]


@dataclass(frozen=True, slots=True)
class Generation:
    turns: tuple[Turn, ...]
    sampling: Sampling
    # None: until end of turn or the context is full (the provider's default_max_tokens applies first).
    max_tokens: int | None = None
    stop: tuple[str, ...] = ()
    # A llama.cpp GBNF grammar constraining the output (from a JSON Schema), or None.
    grammar: str | None = None


def to_generation(
    params: chat_pb2.ChatCompletionParams,
    provider: str,
    *,
    default_max_tokens: int | None = None,
    repeat_penalty: float = EXTRA_SAMPLING_DEFAULTS["repeat_penalty"],
) -> Generation:
    """Translate, or raise `InvalidRequest` for anything the local model cannot honour.

    `default_max_tokens` and `repeat_penalty` are the provider's own, for a request that sets none.
    """
    enforce_chat_support(
        params,
        LOCAL_SUPPORT,
        require_parameters=params.routing.provider.require_parameters,
        provider=provider,
    )
    max_tokens = _max_tokens(params)
    return Generation(
        turns=tuple(_turn(index, message, provider) for index, message in enumerate(params.messages)),
        sampling=_sampling(params, repeat_penalty),
        max_tokens=max_tokens if max_tokens is not None else default_max_tokens,
        stop=tuple(params.stop),
        grammar=_grammar(params.response_format) if params.HasField("response_format") else None,
    )


def _turn(index: int, message: chat_pb2.ChatMessage, provider: str) -> Turn:
    role = _ROLES.get(message.role)
    if role is None or message.tool_calls or message.HasField("function_call"):
        raise InvalidRequest(
            f"messages[{index}] is a tool call or tool result; provider '{provider}' does not support tools.",
            param=f"messages[{index}]",
            code="unsupported_parameter",
        )
    kind = message.WhichOneof("content")
    if kind == "text":
        return Turn(role, message.text)
    if kind == "parts":
        texts = [
            part.text.text if part.HasField("text") else part.refusal.refusal for part in message.parts.parts
        ]
        return Turn(role, "\n".join(texts))
    return Turn(role, message.refusal if message.HasField("refusal") else "")


def _sampling(params: chat_pb2.ChatCompletionParams, repeat_penalty: float) -> Sampling:
    for name in ("temperature", "top_p"):
        if params.HasField(name) and getattr(params, name) < 0:
            raise InvalidRequest(f"'{name}' must be at least 0.", param=name, code="invalid_value")
    extra = _extra_sampling(params, repeat_penalty)
    return Sampling(
        temperature=params.temperature if params.HasField("temperature") else DEFAULT_TEMPERATURE,
        top_p=params.top_p if params.HasField("top_p") else DEFAULT_TOP_P,
        presence_penalty=params.presence_penalty,
        frequency_penalty=params.frequency_penalty,
        seed=params.seed if params.HasField("seed") else None,
        top_k=int(extra["top_k"]),
        min_p=extra["min_p"],
        repeat_penalty=extra["repeat_penalty"],
    )


def _extra_sampling(params: chat_pb2.ChatCompletionParams, repeat_penalty: float) -> dict[str, float]:
    """llama.cpp's extra sampling fields; any other unmodelled field is refused, never ignored."""
    values = {**EXTRA_SAMPLING_DEFAULTS, "repeat_penalty": repeat_penalty}
    for name, value in params.extra_body.fields.items():
        if name not in values:
            raise InvalidRequest(
                f"The parameter '{name}' is not supported by the local provider.",
                param=name,
                code="unsupported_parameter",
            )
        if value.WhichOneof("kind") != "number_value" or value.number_value < 0:
            raise InvalidRequest(
                f"'{name}' must be a number of at least 0.", param=name, code="invalid_value"
            )
        values[name] = value.number_value
    return values


def _max_tokens(params: chat_pb2.ChatCompletionParams) -> int | None:
    for name in ("max_completion_tokens", "max_tokens"):
        if params.HasField(name):
            value: int = getattr(params, name)
            if value < 1:
                raise InvalidRequest(f"'{name}' must be at least 1.", param=name, code="invalid_value")
            return value
    return None


def _grammar(response_format: chat_pb2.ResponseFormat) -> str | None:
    kind = response_format.type
    if kind in ("", "text"):
        return None
    if kind == "json_object":
        return schema_grammar(_ANY_OBJECT_SCHEMA)
    if kind == "json_schema":
        # Key order matters: the grammar writes properties in the schema's order.
        schema = response_format.json_schema.schema_json
        return schema_grammar(schema.decode("utf-8") if schema else _ANY_OBJECT_SCHEMA)
    raise InvalidRequest(
        f"response_format type '{kind}' is not supported.", param="response_format.type", code="invalid_value"
    )


@functools.lru_cache(maxsize=64)
def schema_grammar(schema: str) -> str:
    """The GBNF grammar for a JSON Schema (as JSON text); clients tend to send the same few schemas."""
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    try:
        return json_schema_to_gbnf(schema)
    except (
        Exception
    ) as error:  # the converter raises bare Exception/ValueError/KeyError on what it cannot express
        raise InvalidRequest(
            f"The JSON Schema cannot be turned into a grammar: {error}",
            param="response_format.json_schema.schema",
            code="invalid_json_schema",
        ) from None
