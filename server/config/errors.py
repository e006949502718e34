"""ConfigError, and pydantic's validation errors turned into one readable line per problem.

Each line is `<path>: <what is wrong>`, the path written as in the file (`providers.vllm.base_url`,
`models[2].deployments[0].weight`). An unknown key gets a did-you-mean from the fields of the section
it is in, found by walking the models along the error's location.
"""

from __future__ import annotations

import difflib
import types
from collections.abc import Iterator, Sequence
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, Tag, ValidationError
from pydantic_core import ErrorDetails

from server.config.base import PROBLEM_TYPE, bare_type

__all__ = ["ConfigError", "describe"]


class ConfigError(ValueError):
    """The configuration is invalid. `problems` holds one `<path>: <message>` line per problem."""

    def __init__(self, problems: str | Sequence[str]) -> None:
        self.problems = (problems,) if isinstance(problems, str) else tuple(problems)
        super().__init__("\n".join(self.problems))


# pydantic error type -> our message; `{...}` fields come from the error's ctx.
_MESSAGES = {
    "missing": "required",
    "string_type": "expected a string",
    "int_type": "expected an integer",
    "int_parsing": "expected an integer",
    "int_from_float": "expected an integer",
    "float_type": "expected a number",
    "float_parsing": "expected a number",
    "bool_type": "expected true or false",
    "bool_parsing": "expected true or false",
    "dict_type": "expected a mapping",
    "model_type": "expected a mapping",
    "model_attributes_type": "expected a mapping",
    "union_tag_not_found": "expected a mapping",
    "list_type": "expected a list",
    "tuple_type": "expected a list",
    "greater_than_equal": "must be >= {ge}",
    "greater_than": "must be > {gt}",
    "less_than_equal": "must be <= {le}",
    "less_than": "must be < {lt}",
    "string_too_short": "must not be empty",
    "too_short": "must not be empty",
}


def describe(error: ValidationError, root: type[BaseModel]) -> list[str]:
    """One line per problem in `error`, raised while validating `root`."""
    lines: list[str] = []
    for detail in error.errors(include_url=False):
        path, section = _locate(root, detail["loc"])
        lines.extend(_lines(detail, path, section))
    return lines


def _lines(detail: ErrorDetails, path: str, section: type[BaseModel] | None) -> Iterator[str]:
    kind, ctx = detail["type"], detail.get("ctx") or {}
    if kind == PROBLEM_TYPE:
        for suffix, message in ctx["problems"]:
            yield f"{_join(path, suffix)}: {message}"
    elif kind == "extra_forbidden":
        yield f"{path}: unknown field{_hint(str(detail['loc'][-1]), section)}"
    elif kind == "union_tag_invalid":
        known = _unquoted(ctx["expected_tags"])
        yield f"{path}.type: unknown type '{ctx['tag']}' (known: {known})"
    elif kind == "literal_error":
        yield f"{path}: must be one of {_unquoted(ctx['expected'])}"
    elif kind in _MESSAGES:
        yield f"{path}: {_MESSAGES[kind].format(**{k: _number(v) for k, v in ctx.items()})}"
    else:
        yield f"{path}: {detail['msg']}"


def _number(value: Any) -> Any:
    """A bound as the file would write it: 0, not 0.0."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _join(path: str, suffix: str) -> str:
    if not path:
        return suffix.lstrip(".")
    return path + suffix


def _unquoted(expected: str) -> str:
    """pydantic's `'a', 'b' or 'c'` as `a, b, c`."""
    return expected.replace("'", "").replace(" or ", ", ")


def _hint(key: str, section: type[BaseModel] | None) -> str:
    if section is None:
        return ""
    fields = [name for name in section.model_fields if name not in getattr(section, "not_in_file", ())]
    close = difflib.get_close_matches(key, fields, n=1)
    if close:
        return f"; did you mean `{close[0]}`?"
    return f" (known: {', '.join(fields)})"


def _locate(root: type[BaseModel], loc: tuple[int | str, ...]) -> tuple[str, type[BaseModel] | None]:
    """The file path of `loc`, and the model whose field its last step names (None if not a model).

    pydantic's location also names the member it chose in a tagged union (`providers.x.openai.key`);
    that step is not part of the path in the file.
    """
    path, node, section = "", bare_type(root), None
    for step in loc:
        if isinstance(node, type) and issubclass(node, BaseModel):
            section = node
            field = node.model_fields.get(str(step))
            node = bare_type(field.annotation) if field is not None else None
            path = f"{path}.{step}" if path else str(step)
            continue
        tagged = _tagged_members(node)
        if tagged is not None and step in tagged:
            node = tagged[step]
            continue
        section = None
        origin = get_origin(node)
        if origin is dict:
            node = bare_type(get_args(node)[1])
        elif origin in (tuple, list):
            node = bare_type(get_args(node)[0])
        else:
            node = None
        path += f"[{step}]" if isinstance(step, int) else f".{step}"
    return path, section


def _tagged_members(node: Any) -> dict[int | str, Any] | None:
    """A tagged union's members by tag."""
    if get_origin(node) not in (Union, types.UnionType):
        return None
    members: dict[int | str, Any] = {}
    for member in get_args(node):
        tags = [m for m in getattr(member, "__metadata__", ()) if isinstance(m, Tag)]
        if tags:
            members[tags[0].tag] = bare_type(member)
    return members or None
