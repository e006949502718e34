"""Where OpenAI's spec and OpenAI's API disagree, /openapi.json says what the API (and so the gateway)
sends.

The gateway answers as OpenAI's API does, since OpenAI's SDKs are its clients; a schema the API
itself does not keep to would fail every faithful reply. Each correction names the component, the
place in it, and the reason; the vendored copy of the spec stays OpenAI's word for word.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["CORRECTIONS", "SSE", "Correction", "corrected", "with_sse_events"]

JsonObject = dict[str, Any]
SSE = "text/event-stream"
# The last frame of an OpenAI chat stream, which is no JSON.
_DONE = "[DONE]"


@dataclass(frozen=True, slots=True)
class Correction:
    schema: str
    # Keys from the schema down to the node replaced.
    path: tuple[str, ...]
    replace: Callable[[JsonObject], JsonObject]
    reason: str


def _or_base64(node: JsonObject) -> JsonObject:
    base64 = {"type": "string", "description": "With `encoding_format: base64`: little-endian float32s."}
    return {"anyOf": [node, base64]}


CORRECTIONS: tuple[Correction, ...] = (
    Correction(
        "Embedding",
        ("properties", "embedding"),
        _or_base64,
        "The spec has only the list of floats; with encoding_format=base64 the API sends a string.",
    ),
)


def corrected(schemas: dict[str, JsonObject]) -> dict[str, JsonObject]:
    """`schemas` with every correction applied (the corrected schemas copied, the rest shared)."""
    result = with_discriminator_mappings(schemas)
    for correction in CORRECTIONS:
        schema = result[correction.schema] = copy.deepcopy(result[correction.schema])
        parent = schema
        for key in correction.path[:-1]:
            parent = parent[key]
        parent[correction.path[-1]] = correction.replace(parent[correction.path[-1]])
    return result


_REF = "#/components/schemas/"


def _tag_values(schemas: dict[str, JsonObject], ref: str, name: str, depth: int = 0) -> list[str] | None:
    """The values the `name` property of the schema `ref` names may hold (its enum or const)."""
    if not ref.startswith(_REF) or depth > 3:
        return None
    schema = schemas.get(ref[len(_REF) :])
    if schema is None:
        return None
    tag = schema.get("properties", {}).get(name)
    if isinstance(tag, dict):
        if "const" in tag:
            return [tag["const"]]
        if isinstance(tag.get("enum"), list):
            return [value for value in tag["enum"] if isinstance(value, str)]
    for part in schema.get("allOf", ()):
        if isinstance(part, dict) and isinstance(part.get("$ref"), str):
            found = _tag_values(schemas, part["$ref"], name, depth + 1)
            if found:
                return found
    return None


def _mapped(node: Any, schemas: dict[str, JsonObject]) -> Any:
    if isinstance(node, list):
        return [_mapped(item, schemas) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _mapped(value, schemas) for key, value in node.items()}
    discriminator = node.get("discriminator")
    if isinstance(discriminator, dict) and "mapping" not in discriminator:
        name = discriminator.get("propertyName", "")
        mapping: dict[str, str] = {}
        for alternative in node.get("oneOf") or node.get("anyOf") or ():
            ref = alternative.get("$ref") if isinstance(alternative, dict) else None
            values = _tag_values(schemas, ref, name) if isinstance(ref, str) else None
            if not isinstance(ref, str) or not values:
                mapping = {}
                break
            mapping.update({value: ref for value in values if value not in mapping})
        if mapping:
            node["discriminator"] = {**discriminator, "mapping": mapping}
        else:
            del node["discriminator"]
    return node


def with_discriminator_mappings(schemas: dict[str, JsonObject]) -> dict[str, JsonObject]:
    """`schemas` with each discriminator mapping the tag values the API sends to their schemas.

    OpenAI's discriminators name only the property (`type`). Without a mapping, OpenAPI maps each
    alternative by its schema's name, so a tool call of `"type": "function"` would match none; the
    mapping is read from each alternative's `enum`/`const` of that property, and a discriminator
    whose alternatives do not all say their value is dropped (it only ever was a hint).
    """
    return {name: _mapped(schema, schemas) for name, schema in schemas.items()}


def with_sse_events(responses: JsonObject, error: JsonObject) -> JsonObject:
    """`responses` with each event stream's schema describing one event, as OpenAPI reads it.

    OpenAI's spec puts a chunk's schema straight on `text/event-stream`; OpenAPI (and so every tool
    that checks a reply against the document) reads a stream's schema as one event: an object of
    the SSE fields `event`, `data`, `id`. So the chunk's schema moves into `data`, whose text is JSON
    matching it, or the error a stream ends with after its first event (`error`), or `[DONE]`.
    """
    result = dict(responses)
    for status, reply in responses.items():
        content = reply.get("content") if isinstance(reply, dict) else None
        if not content or SSE not in content:
            continue
        data = {"anyOf": [content[SSE]["schema"], error]}
        event = {
            "type": "object",
            "required": ["data"],
            "properties": {
                "event": {"type": "string"},
                "id": {"type": "string"},
                "data": {
                    "anyOf": [
                        {"const": _DONE},
                        {"type": "string", "contentMediaType": "application/json", "contentSchema": data},
                    ]
                },
            },
        }
        result[status] = {**reply, "content": {**content, SSE: {"schema": event}}}
    return result
