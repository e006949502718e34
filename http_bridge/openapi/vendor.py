"""Vendor the part of OpenAI's OpenAPI spec that the bridge serves, into openai_subset.json.

    python -m http_bridge.openapi.vendor tests/reference/openai-openapi.yaml     (make openapi-subset)

For every route of the bridge (its router, as /openapi.json lists it) whose path OpenAI documents
(without /v1, same method) and that owned.py does not describe, OpenAI's operation is copied: its
parameters, request body and responses. Then every component those operations and owned.py's
schemas reference is copied too, transitively. Vendor extensions (`x-oaiMeta`, with its pages of
code samples, and the like) are dropped, and OpenAPI 3.0's `nullable: true`, which parts of OpenAI's
3.1 spec still use, becomes 3.1's null type, so validators read the schemas as OpenAI means them.

The running gateway reads only the result: the full spec (3 MB of YAML) stays out of the package.
A unit test (tests/unit/http_bridge/openapi/test_openapi_vendor.py) regenerates the file from the
reference copy of the spec and fails if the committed one differs, so a route added on an OpenAI
path needs this run again.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any

import orjson
import yaml

from http_bridge.openapi.document import VENDORED_FILE
from http_bridge.openapi.owned import OWNED_OPERATIONS, OWNED_SCHEMAS

__all__ = ["bridge_routes", "load_spec", "null_spelled_out", "vendor", "vendored_bytes"]

JsonObject = dict[str, Any]
_API_PREFIX = "/v1"
_COMPONENTS = "#/components/"


def load_spec(path: Path) -> JsonObject:
    with path.open("rb") as handle:
        spec: JsonObject = yaml.load(handle, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    return spec


def bridge_routes() -> list[tuple[str, str]]:
    """(method, path) of every route the bridge serves (a bridge with no gateway behind it)."""
    from http_bridge.app import build_app
    from http_bridge.openapi.document import served_routes
    from http_bridge.stubs import GatewayStubs

    absent: dict[str, Any] = {field.name: None for field in fields(GatewayStubs) if field.default is MISSING}
    stubs = GatewayStubs(**absent)
    return served_routes(build_app(stubs, max_body_bytes=1))


def _without_extensions(node: Any) -> Any:
    """`node` without vendor extensions, and with integers past 64 bits as floats (JSON has no
    limit, orjson does: the spec's `seed` minimum is -9223372036854776000)."""
    if isinstance(node, dict):
        return {key: _without_extensions(value) for key, value in node.items() if not key.startswith("x-")}
    if isinstance(node, list):
        return [_without_extensions(item) for item in node]
    if isinstance(node, int) and not isinstance(node, bool) and not -(2**63) <= node < 2**64:
        return float(node)
    return node


def null_spelled_out(node: Any) -> Any:
    """OpenAPI 3.0's `nullable: true` as JSON Schema's (3.1's) null type."""
    if isinstance(node, list):
        return [null_spelled_out(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: null_spelled_out(value) for key, value in node.items()}
    if node.pop("nullable", False) is True:
        if isinstance(node.get("type"), str):
            node["type"] = [node["type"], "null"]
            if "enum" in node:
                node["enum"] = [*node["enum"], None]
        else:
            node = {"anyOf": [node, {"type": "null"}]}
    return node


def _references(node: Any, found: set[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            found.add(ref)
        for value in node.values():
            _references(value, found)
    elif isinstance(node, list):
        for item in node:
            _references(item, found)


def _components(spec: JsonObject, roots: Iterable[Any]) -> JsonObject:
    """Every component of `spec` that `roots` reference, transitively, by kind (schemas, responses)."""
    pending: set[str] = set()
    for root in roots:
        _references(root, pending)
    copied: dict[str, JsonObject] = {}
    seen: set[str] = set()
    while pending:
        ref = pending.pop()
        if ref in seen:
            continue
        seen.add(ref)
        if not ref.startswith(_COMPONENTS):
            raise ValueError(f"a reference outside the components: {ref}")
        kind, _, name = ref[len(_COMPONENTS) :].partition("/")
        if kind == "schemas" and name in OWNED_SCHEMAS:
            continue
        try:
            component = spec["components"][kind][name]
        except KeyError:
            raise ValueError(f"{ref} is neither in OpenAI's spec nor in owned.py") from None
        copied.setdefault(kind, {})[name] = component
        _references(component, pending)
    return {kind: dict(sorted(named.items())) for kind, named in sorted(copied.items())}


def vendor(spec: JsonObject, routes: Iterable[tuple[str, str]]) -> JsonObject:
    """The subset of `spec` that documents `routes` (see the module's docstring)."""
    paths: dict[str, JsonObject] = {}
    for method, path in routes:
        if (method, path) in OWNED_OPERATIONS or not path.startswith(_API_PREFIX + "/"):
            continue
        operation = spec["paths"].get(path[len(_API_PREFIX) :], {}).get(method.lower())
        if operation is not None:
            paths.setdefault(path, {})[method.lower()] = operation
    roots = [paths, list(OWNED_OPERATIONS.values()), list(OWNED_SCHEMAS.values())]
    subset = {
        "info": {
            "source": "https://github.com/openai/openai-openapi",
            "version": spec["info"]["version"],
            "license": "MIT (openai-openapi.LICENSE beside this file)",
        },
        "paths": paths,
        "components": _components(spec, roots),
    }
    return null_spelled_out(_without_extensions(subset))  # type: ignore[no-any-return]


def vendored_bytes(subset: JsonObject) -> bytes:
    return orjson.dumps(subset, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m http_bridge.openapi.vendor PATH/TO/openai-openapi.yaml", file=sys.stderr)
        return 2
    target = Path(__file__).with_name(VENDORED_FILE)
    target.write_bytes(vendored_bytes(vendor(load_spec(Path(argv[0])), bridge_routes())))
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
