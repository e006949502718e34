"""`${VAR}` references in config values, resolved against the environment when the file is loaded.

`${NAME}` is the variable's value and an error when it is unset; `${NAME:-default}` falls back to
`default` (which may be empty) when it is unset; a set but empty variable stays empty. `$${` is a
literal `${`. Anything else that starts with `${` (unclosed, empty or invalid name, another operator)
is an error, so a typo never reaches an upstream as a literal header or key.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

__all__ = ["Environment", "EnvReferenceError", "interpolate_env"]

Environment = Mapping[str, str]

# Tried left to right at each `$`: the escape, a well-formed reference, then any other `${`.
_TOKEN = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$\{")
_SHOWN_CHARS = 40


class EnvReferenceError(ValueError):
    """A `${...}` that cannot be resolved; the message never quotes the rest of the value."""


def interpolate_env(value: str, environ: Environment) -> str:
    """`value` with its references replaced; raises EnvReferenceError on a malformed or unset one."""
    if "${" not in value:
        return value

    def substitute(match: re.Match[str]) -> str:
        token = match.group(0)
        if token == "$${":
            return "${"
        name, default = match.group(1), match.group(2)
        if name is None:
            raise EnvReferenceError(_malformed(value, match.start()))
        if name in environ:
            return environ[name]
        if default is not None:
            return default
        raise EnvReferenceError(f"environment variable {name} is not set")

    return _TOKEN.sub(substitute, value)


def _malformed(value: str, start: int) -> str:
    end = value.find("}", start)
    if end == -1:
        return "unclosed '${' (expected ${NAME} or ${NAME:-default}; write $${ for a literal ${)"
    inner = value[start + 2 : end]
    if not inner:
        return "empty variable name in '${}'"
    shown = inner if len(inner) <= _SHOWN_CHARS else inner[:_SHOWN_CHARS] + "..."
    return f"invalid reference '${{{shown}}}' (expected ${{NAME}} or ${{NAME:-default}})"
