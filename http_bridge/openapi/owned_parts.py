"""The builders every operation and schema of ours is written with (owned.py and its groups):
references, nullable values, JSON bodies and replies, parameters, and the bounded numbers the
handlers accept.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "INT32",
    "INT64",
    "USD",
    "JsonObject",
    "json_body",
    "json_reply",
    "nullable",
    "operation",
    "path_parameter",
    "query",
    "ref",
]

JsonObject = dict[str, Any]

INT32 = {"type": "integer", "minimum": 0, "maximum": 2**31 - 1}
INT64 = {"type": "integer", "minimum": 0, "maximum": 2**63 - 1}
USD = {"type": "number", "minimum": 0, "description": "US dollars."}


def ref(name: str) -> JsonObject:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: JsonObject) -> JsonObject:
    return {"anyOf": [schema, {"type": "null"}]}


def list_of(items: JsonObject) -> JsonObject:
    """A list reply: `{"object": "list", "data": [items...]}`."""
    return {
        "type": "object",
        "required": ["object", "data"],
        "properties": {
            "object": {"type": "string", "enum": ["list"]},
            "data": {"type": "array", "items": items},
        },
    }


def json_reply(schema: JsonObject, description: str = "OK") -> JsonObject:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def json_body(schema: JsonObject) -> JsonObject:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def query(name: str, schema: JsonObject, description: str, *, required: bool = False) -> JsonObject:
    return {"name": name, "in": "query", "required": required, "schema": schema, "description": description}


def path_parameter(name: str, description: str) -> JsonObject:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
        "description": description,
    }


def operation(
    operation_id: str,
    summary: str,
    tag: str,
    responses: JsonObject,
    *,
    parameters: list[JsonObject] | None = None,
    request_body: JsonObject | None = None,
) -> JsonObject:
    operation: JsonObject = {"operationId": operation_id, "summary": summary, "tags": [tag]}
    if parameters:
        operation["parameters"] = parameters
    if request_body is not None:
        operation["requestBody"] = request_body
    operation["responses"] = responses
    return operation
