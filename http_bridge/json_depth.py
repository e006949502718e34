"""How deep a request body nests its arrays and objects (issue #20: 200 or 1,000 levels gave a 500).

Deep nesting is refused before any codec sees the body: a Struct parses only about 33 levels in
protobuf, Python code that recurses over JSON stops near 1,000, and orjson's own encoder at 255.
`read_json` calls `too_deep` only when the body has more opening brackets than the limit, since
nesting needs one per level: most bodies never pay for the walk (counting the brackets of a 3 KB
body took 3.5 us of CPU, its parse 7 us; the walk of a 2.5 KB body with four tools, 16 us).
"""

from __future__ import annotations

from typing import Any

__all__ = ["too_deep"]


def too_deep(body: dict[str, Any], limit: int) -> str | None:
    """The top-level key under which `body` nests deeper than `limit` levels (the body itself is
    level 1), or None. It stops at the first path past the limit, so it recurses at most `limit`."""
    for key, value in body.items():
        kind = type(value)
        if (kind is dict or kind is list) and (limit < 2 or _deeper(value, limit - 2)):
            return key
    return None


def _deeper(value: Any, room: int) -> bool:
    """Whether `value` holds containers more than `room` levels below itself."""
    # Recursion measured a third faster than an explicit stack here; `room` bounds it.
    for child in value.values() if type(value) is dict else value:
        kind = type(child)
        if (kind is dict or kind is list) and (room == 0 or _deeper(child, room - 1)):
            return True
    return False
