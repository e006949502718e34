"""A legacy completions request (`CompletionParams`) as the gateway's internal chat request. Pure: no I/O.

The gateway has one pipeline, keyed on `ChatCompletionParams`; /v1/completions joins it by
translating here, for every provider: an OpenAI-compatible upstream is sent chat too, never its own
/v1/completions, so one path serves Anthropic, Gemini, local and OpenAI-compatible models alike and
is metered, routed and cached as chat is. Decisions, where the two protocols differ:

- Each prompt becomes one chat request with the prompt as its only (user) message; several prompts
  are several chat requests (the servicer runs them in order). Chat models answer a prompt rather
  than continue it, which is what clients that still call this endpoint by default (LlamaIndex's
  `OpenAILike`) expect of the chat models behind it.
- `max_tokens` defaults to 16, as OpenAI's does, and travels as chat's `max_tokens` (the name every
  OpenAI-compatible server knows).
- `logprobs: k` is `logprobs: true` with `top_logprobs: k`; a provider that has no log
  probabilities refuses it by name (param_policy.py). With `echo` it would need the prompt's own
  log probabilities, which chat does not return: refused.
- `echo` is honoured by the gateway (the prompt is written before the text); `best_of` only where it
  asks for nothing more than `n` (unset, 0, 1 or equal to `n`); `suffix` (text insertion) has no
  chat counterpart and is refused unless empty.
- `temperature`, `top_p`, `n`, `stop`, `seed`, the penalties, `logit_bias`, `user`, the routing
  fields and `extra_body` are chat's own fields, copied as they are; `stream_options` only on a
  stream.
"""

from __future__ import annotations

from siraya.router.codec.validate import ParamsError
from siraya.router.v1 import chat_pb2, completions_pb2

__all__ = ["DEFAULT_MAX_TOKENS", "check_completion_params", "to_chat_params", "with_prompt"]

DEFAULT_MAX_TOKENS = 16
"""OpenAI's default for `max_tokens` on /v1/completions."""

_UNSUPPORTED = "unsupported_parameter"
_COPIED_OPTIONALS = (
    "temperature",
    "top_p",
    "n",
    "seed",
    "presence_penalty",
    "frequency_penalty",
    "user",
)


def check_completion_params(params: completions_pb2.CompletionParams) -> None:
    """The rules chat cannot carry out; ranges are `bounds.check_completion`'s."""
    if not params.model:
        raise ParamsError("'model' must not be empty.", "model")
    if params.suffix:
        raise ParamsError(
            "The parameter 'suffix' is not supported: completions are served by chat models, which "
            "cannot insert text before a suffix.",
            "suffix",
            _UNSUPPORTED,
        )
    n = params.n if params.HasField("n") else 1
    if params.HasField("best_of") and params.best_of > 1 and params.best_of != n:
        raise ParamsError(
            f"Invalid 'best_of': {params.best_of} is not supported; only 1 or a value equal to 'n' "
            "(the gateway does not rank candidates by log probability).",
            "best_of",
            _UNSUPPORTED,
        )
    if params.HasField("logprobs") and params.echo:
        raise ParamsError(
            "The parameter 'logprobs' is not supported with 'echo': chat models do not return the "
            "log probabilities of the prompt.",
            "logprobs",
            _UNSUPPORTED,
        )


def to_chat_params(
    params: completions_pb2.CompletionParams, streaming: bool
) -> chat_pb2.ChatCompletionParams:
    """Everything of the chat request but its message (`with_prompt` adds one per prompt)."""
    chat = chat_pb2.ChatCompletionParams(model=params.model)
    chat.max_tokens = params.max_tokens if params.HasField("max_tokens") else DEFAULT_MAX_TOKENS
    for name in _COPIED_OPTIONALS:
        if params.HasField(name):
            setattr(chat, name, getattr(params, name))
    chat.stop.extend(params.stop)
    if params.logit_bias:
        chat.logit_bias.update(params.logit_bias)
    if params.HasField("logprobs"):
        chat.logprobs = True
        chat.top_logprobs = params.logprobs
    if streaming and params.HasField("stream_options"):
        chat.stream_options.CopyFrom(params.stream_options)
    if params.HasField("routing"):
        chat.routing.CopyFrom(params.routing)
    if params.HasField("extra_body"):
        chat.extra_body.CopyFrom(params.extra_body)
    return chat


def with_prompt(base: chat_pb2.ChatCompletionParams, prompt: str) -> chat_pb2.ChatCompletionParams:
    """`base` with `prompt` as its one user message."""
    chat = chat_pb2.ChatCompletionParams()
    chat.CopyFrom(base)
    chat.messages.add(role=chat_pb2.CHAT_ROLE_USER, text=prompt)
    return chat
