"""Refuse a JSON body's unknown fields by name, with the field the caller probably meant.

A field the bridge does not know would otherwise be dropped without a word: `{"rpm": 10}` creating a
key with no limit at all is worse than a 400 that says `did you mean 'rpm_limit'?`.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence

from server.errors import InvalidRequest

__all__ = ["reject_unknown_fields", "suggestion"]


def suggestion(name: str, known: Sequence[str]) -> str | None:
    """The known field `name` most likely meant: a close spelling, else one it is a word of
    ("rpm" -> "rpm_limit", "models" -> "allowed_models")."""
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    if close:
        return close[0]
    lowered = name.lower()
    holding = [field for field in known if lowered in field.split("_")]
    return holding[0] if len(holding) == 1 else None


def reject_unknown_fields(body: Iterable[str], known: Sequence[str], what: str) -> None:
    """InvalidRequest naming every field of `body` not in `known` (`what` names the body)."""
    unknown = [name for name in body if name not in known]
    if not unknown:
        return
    described = []
    for name in unknown:
        hint = suggestion(name, known)
        described.append(f"'{name}'" + (f" (did you mean '{hint}'?)" if hint else ""))
    plural = "s" if len(unknown) > 1 else ""
    raise InvalidRequest(
        f"Unknown field{plural} in {what}: {', '.join(described)}. Known fields: {', '.join(known)}.",
        param=unknown[0],
        code="unknown_parameter",
    )
