"""The prompts of a legacy completions request, as text: one per completion the client gets.

OpenAI's /v1/completions takes a string, strings, token ids or arrays of token ids. The gateway
answers through chat models, which take text, so token ids are decoded with cl100k_base (the
tokenizer of gpt-3.5-turbo-instruct, the model the endpoint last served; server/tokens.py, offline),
to exactly the text they were made from. An id cl100k_base does not have is a 400 naming `prompt`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from server import tokens
from server.errors import InvalidRequest
from siraya.router.codec.validate import invalid_token_id, missing
from siraya.router.v1 import completions_pb2

__all__ = ["prompt_texts"]

_TOKEN_PROMPTS = ("tokens", "token_lists")


async def prompt_texts(params: completions_pb2.CompletionParams) -> list[str]:
    """One text per prompt, in order; InvalidRequest (or ParamsError) for a prompt that is none."""
    kind = params.WhichOneof("prompt")
    if kind == "text":
        return [params.text]
    if kind == "texts":
        texts = list(params.texts.values)
        if not texts:
            raise _empty("prompt")
        return texts
    if kind not in _TOKEN_PROMPTS:
        raise missing("prompt")
    # The vocabulary's first load takes about a second of CPU: not on the event loop.
    await asyncio.to_thread(tokens.encoding)
    if kind == "tokens":
        return [_decoded(params.tokens.values, "prompt")]
    lists = params.token_lists.values
    if not lists:
        raise _empty("prompt")
    return [_decoded(ids.values, f"prompt[{index}]") for index, ids in enumerate(lists)]


def _empty(param: str) -> InvalidRequest:
    return InvalidRequest(f"'{param}' must not be an empty array.", param=param, code="empty_array")


def _decoded(ids: Iterable[int], param: str) -> str:
    values = list(ids)
    if not values:
        raise _empty(param)
    for index, token in enumerate(values):
        if token < 0:
            raise invalid_token_id(param, index)
    try:
        return tokens.decode(values)
    except tokens.TokenIdError as error:
        raise InvalidRequest(
            f"Invalid value for '{param}[{error.position}]': {error.token} is not a "
            f"{tokens.DEFAULT_ENCODING} token id.",
            param="prompt",
            code="invalid_value",
        ) from None
