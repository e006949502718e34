"""What every config model shares: unknown keys are errors, `${VAR}` resolves, YAML scalars are read strictly.

`Settings` is the base class. Its one field hook runs on every value the file gives, before the
field's type validates it:
- strings (also the strings of a `list[str]` or `dict[str, str]` field, and numbers written as
  strings) have their `${VAR}` resolved against the environment given to `load_config`;
- `null`, or a string that resolves to empty, leaves an optional field at its default, as if unset;
- a bool field takes only `true` / `false`, and a number field never takes `true` / `false`
  (pydantic's lax mode would read `yes` and `1` as booleans and `true` as 1).
Values built in Python (tests, the embedded defaults) are taken as given: no environment, no checks
beyond the field types.
"""

from __future__ import annotations

import functools
import types
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar, Literal, Union, get_args, get_origin

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from server.config.env import Environment, EnvReferenceError, interpolate_env

__all__ = [
    "HttpUrl",
    "FromLoader",
    "LoadContext",
    "NonEmptyStr",
    "NonNegative",
    "NonNegativeInt",
    "PositiveInt",
    "PostgresUrl",
    "RedisUrl",
    "Settings",
    "bare_type",
    "load_context",
    "problem",
    "problems",
]

# The pydantic error type whose ctx carries our own (path suffix, message) pairs; see errors.py.
PROBLEM_TYPE = "config_problem"


@dataclass
class LoadContext:
    """What validating one file needs beyond the file: the environment, and cross-reference state."""

    env: Environment
    # Names under `providers:`, for models and deployments to be checked against.
    provider_names: frozenset[str] = frozenset()
    # Public model ids and aliases seen so far, to report a duplicate where it occurs.
    model_ids: set[str] = field(default_factory=set)


def load_context(info: ValidationInfo) -> LoadContext | None:
    """The context of a file being loaded, or None for a model built in Python."""
    context = info.context
    return context if isinstance(context, LoadContext) else None


def problems(found: Sequence[tuple[str, str]]) -> PydanticCustomError:
    """One validation error carrying several problems, each as (path suffix such as `.name`, message)."""
    return PydanticCustomError(
        PROBLEM_TYPE, "{summary}", {"summary": "; ".join(m for _, m in found), "problems": tuple(found)}
    )


def problem(message: str, *, at: str = "") -> PydanticCustomError:
    """One problem at the value being validated, or at its field `at` (for a model-level check)."""
    return problems([(f".{at}" if at else "", message)])


NonNegative = Annotated[float, Field(ge=0)]
NonNegativeInt = Annotated[int, Field(ge=0)]
PositiveInt = Annotated[int, Field(ge=1)]
NonEmptyStr = Annotated[str, Field(min_length=1)]


def _url(schemes: tuple[str, ...], kind: str) -> Any:
    def check(value: str) -> str:
        if not value.startswith(schemes):
            raise problem(f"must be {kind} URL")
        return value.rstrip("/") if schemes[0].startswith("http") else value

    return AfterValidator(check)


# An upstream's root URL, without its trailing slash.
HttpUrl = Annotated[str, _url(("http://", "https://"), "an http:// or https://")]
RedisUrl = Annotated[str, _url(("redis://", "rediss://", "unix://"), "a redis://, rediss:// or unix://")]
PostgresUrl = Annotated[str, _url(("postgres://", "postgresql://"), "a postgres:// or postgresql://")]


@dataclass(frozen=True, slots=True)
class FromLoader:
    """A value the loader supplies, taken as it is: for a field the file may not set (a provider's
    name is its key), or a default read from the environment (which is not interpolated again)."""

    value: Any


class Settings(BaseModel):
    """A config section: frozen, with unknown keys reported (with a did-you-mean) instead of ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    # Fields the loader fills in; the file setting one is an unknown key.
    not_in_file: ClassVar[frozenset[str]] = frozenset()

    def __eq__(self, other: object) -> bool:
        # A request compares prices (`pricing != no price`); pydantic's general __eq__ costs five
        # times this, and these models hold only fields (no private or extra attributes).
        return type(other) is type(self) and self.__dict__ == other.__dict__

    @model_validator(mode="before")
    @classmethod
    def _nulls_are_unset(cls, data: Any) -> Any:
        if isinstance(data, dict) and None in data.values():
            return {key: value for key, value in data.items() if value is not None}
        return data

    @field_validator("*", mode="before")
    @classmethod
    def _read_file_value(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, FromLoader):
            return value.value
        context = load_context(info)
        if context is None or info.field_name is None:
            return value
        if info.field_name in cls.not_in_file:
            raise problem("unknown field")
        shape = _shape(cls, info.field_name)
        if shape.interpolate:
            value = _interpolated(value, context.env)
        if value == "":
            if cls.model_fields[info.field_name].is_required():
                raise problem("required")
            return cls.model_fields[info.field_name].get_default(call_default_factory=True)
        if shape.scalar is bool and not isinstance(value, bool):
            raise problem("expected true or false")
        if shape.scalar in (int, float) and isinstance(value, bool):
            raise problem("expected an integer" if shape.scalar is int else "expected a number")
        return value


@dataclass(frozen=True, slots=True)
class _Shape:
    scalar: type | None
    interpolate: bool


@functools.cache
def _shape(model: type[Settings], name: str) -> _Shape:
    """How the field hook treats field `name`: which scalar it is, whether its strings resolve `${VAR}`."""
    info = model.model_fields[name]
    annotation = bare_type(info.annotation)
    origin = get_origin(annotation)
    if origin is dict:
        items: Any = get_args(annotation)[1]
    elif origin in (tuple, list):
        items = get_args(annotation)[0]
    else:
        items = annotation
    items = bare_type(items)
    words = get_origin(items) is Literal and all(isinstance(arg, str) for arg in get_args(items))
    return _Shape(
        scalar=annotation if annotation in (bool, int, float) else None,
        interpolate=items in (str, int, float) or words,
    )


def bare_type(annotation: Any) -> Any:
    """`X` for `Annotated[X, ...]` and for `X | None`; anything else unchanged."""
    if get_origin(annotation) is Annotated:
        return bare_type(get_args(annotation)[0])
    if get_origin(annotation) in (Union, types.UnionType):
        members = [arg for arg in get_args(annotation) if arg is not type(None)]
        if len(members) == 1:
            return bare_type(members[0])
    return annotation


def _interpolated(value: Any, env: Environment) -> Any:
    """`value` with `${VAR}` resolved in it, or in each string of a list or mapping of strings."""
    found: list[tuple[str, str]] = []

    def resolve(text: Any, suffix: str) -> Any:
        if not isinstance(text, str):
            return text
        try:
            return interpolate_env(text, env)
        except EnvReferenceError as error:
            found.append((suffix, str(error)))
            return text

    if isinstance(value, list):
        value = [resolve(item, f"[{index}]") for index, item in enumerate(value)]
    elif isinstance(value, dict):
        value = {key: resolve(item, f".{key}") for key, item in value.items()}
    else:
        value = resolve(value, "")
    if found:
        raise problems(found)
    return value
