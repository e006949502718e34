"""Build a small, deterministic JSON instance that satisfies a JSON Schema."""

from __future__ import annotations

from typing import Any

__all__ = ["schema_instance"]

# Deep enough for real tool schemas, shallow enough that a recursive $ref terminates.
_MAX_DEPTH = 8

_STRING_FORMATS = {
    "date-time": "2024-01-01T00:00:00Z",
    "date": "2024-01-01",
    "time": "00:00:00",
    "email": "user@example.com",
    "uri": "https://example.com",
    "uuid": "00000000-0000-4000-8000-000000000000",
}


def schema_instance(schema: Any) -> Any:
    """Return an instance of `schema`: every object property filled, one item per array.

    string -> "text", integer -> 1, number -> 1.5, boolean -> true, enum/const -> first value.
    Local "$ref"s ("#/$defs/X", "#/definitions/X") resolve against the root schema.
    """
    return _instance(schema, schema, 0)


def _instance(schema: Any, root: Any, depth: int) -> Any:
    if not isinstance(schema, dict):
        return None
    if "$ref" in schema:
        return _instance(_resolve(schema["$ref"], root), root, depth + 1)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf"):
        if schema.get(key):
            options = [opt for opt in schema[key] if not _is_null(opt)] or schema[key]
            return _instance(options[0], root, depth + 1)
    if schema.get("allOf"):
        merged: dict[str, Any] = {}
        for part in schema["allOf"]:
            merged.update(_resolve(part["$ref"], root) if "$ref" in part else part)
        return _instance(merged, root, depth + 1)
    kind = _type_of(schema)
    if kind == "object":
        if depth >= _MAX_DEPTH:
            return {}
        props = schema.get("properties") or {}
        return {name: _instance(sub, root, depth + 1) for name, sub in props.items()}
    if kind == "array":
        if depth >= _MAX_DEPTH:
            return []
        item = _instance(schema.get("items", {"type": "string"}), root, depth + 1)
        return [item] * max(1, int(schema.get("minItems", 1)))
    return _scalar(kind, schema)


def _scalar(kind: str | None, schema: dict[str, Any]) -> Any:
    if kind == "string":
        return _STRING_FORMATS.get(schema.get("format", ""), "text")
    if kind == "integer":
        return max(1, int(schema.get("minimum", 1)))
    if kind == "number":
        return max(1.5, float(schema.get("minimum", 1.5)))
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return "text"


def _type_of(schema: dict[str, Any]) -> str | None:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind is None:
        if "properties" in schema:
            return "object"
        if "items" in schema:
            return "array"
    return kind


def _is_null(schema: Any) -> bool:
    return isinstance(schema, dict) and schema.get("type") == "null"


def _resolve(ref: str, root: Any) -> Any:
    if not ref.startswith("#"):
        return {}
    node = root
    for part in ref.lstrip("#").strip("/").split("/"):
        if not part:
            continue
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or part not in node:
            return {}
        node = node[part]
    return node
