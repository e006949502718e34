"""The one decoder of OpenAI's "text or tokens" inputs: a string, an array of strings, an array of
token ids or an array of token id arrays (embeddings' `input`, legacy completions' `prompt`).

Both protos hold it as the same oneof (`text`, `texts`, `tokens`, `token_lists`). Empty arrays and
ids no tokenizer knows are each endpoint's check to refuse; here only a shape the proto cannot hold.
"""

from __future__ import annotations

from typing import Any, Protocol

from siraya.router.codec.errors import CodecError
from siraya.router.codec.sampling_fields import INT64_MAX, INT64_MIN
from siraya.router.codec.validate import invalid_token_id

__all__ = ["decode_text_or_tokens"]

_SHAPES = "a string or an array of strings, token ids or token id arrays"


class _Values(Protocol):
    values: Any


class _TextOrTokens(Protocol):
    text: str

    @property
    def texts(self) -> Any: ...
    @property
    def tokens(self) -> Any: ...
    @property
    def token_lists(self) -> Any: ...


def decode_text_or_tokens(value: Any, target: _TextOrTokens, param: str) -> None:
    if isinstance(value, str):
        target.text = value
        return
    if value is None:
        raise CodecError(f"Missing required parameter: '{param}'.", param, "missing_required_parameter")
    if not isinstance(value, list):
        raise CodecError(f"Invalid type for '{param}': expected {_SHAPES}.", param, "invalid_type")
    if not value:
        target.texts.SetInParent()  # set to an empty list, which the endpoint's check refuses
        return
    first = value[0]
    if isinstance(first, str):
        for index, item in enumerate(value):
            if not isinstance(item, str):
                raise CodecError(
                    f"Invalid value for '{param}[{index}]': every item of a string array must be a "
                    "non-empty string.",
                    f"{param}[{index}]",
                )
        target.texts.values.extend(value)
    elif isinstance(first, list):
        token_lists = target.token_lists.values
        for index, ids in enumerate(value):
            if not isinstance(ids, list):
                raise CodecError(
                    f"Invalid value for '{param}[{index}]': every item of an array of token arrays must "
                    "be a non-empty array of token ids.",
                    f"{param}[{index}]",
                )
            token_lists.add().values.extend(_token_ids(ids, f"{param}[{index}]"))
    elif type(first) is int:
        target.tokens.values.extend(_token_ids(value, param))
    else:
        raise CodecError(
            f"Invalid value for '{param}[0]': expected a string, a token id or an array of token ids.",
            f"{param}[0]",
        )


def _token_ids(ids: list[Any], param: str) -> list[int]:
    """Integers an int64 holds; that they are token ids (>= 0) is the endpoint's check."""
    for index, token in enumerate(ids):
        # `type(...) is int` also refuses bools, which are ints to Python.
        if type(token) is not int or not INT64_MIN <= token <= INT64_MAX:
            raise invalid_token_id(param, index)
    return ids
