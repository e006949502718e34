"""Validate JSON bodies against the component schemas of OpenAI's official OpenAPI spec."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from http_bridge.openapi.vendor import null_spelled_out

# A vendored copy (MIT, licence beside it) of OpenAI's spec, so a clean clone can run the suite.
SPEC_PATH = Path(__file__).resolve().parent / "reference" / "openai-openapi.yaml"
_SPEC_URI = "urn:openai-openapi"


@functools.cache
def _registry() -> Registry:
    with SPEC_PATH.open() as handle:
        spec = yaml.load(handle, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    resource = Resource.from_contents(null_spelled_out(spec), default_specification=DRAFT202012)
    return Registry().with_resource(_SPEC_URI, resource)


@functools.cache
def _validator(schema_name: str) -> Draft202012Validator:
    schema = {"$ref": f"{_SPEC_URI}#/components/schemas/{schema_name}"}
    return Draft202012Validator(schema, registry=_registry())


def schema_violations(body: Any, schema_name: str, limit: int = 10) -> list[str]:
    """Up to `limit` violations of `schema_name` in `body`, each `path: message`; empty if it matches."""
    errors = sorted(_validator(schema_name).iter_errors(body), key=lambda e: list(e.absolute_path))
    return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message[:300]}" for e in errors[:limit]]


def assert_matches_schema(body: Any, schema_name: str) -> None:
    """Raise AssertionError listing every violation of `schema_name` in `body`."""
    lines = schema_violations(body, schema_name)
    if lines:
        raise AssertionError(f"body does not match {schema_name}:\n" + "\n".join(lines))
