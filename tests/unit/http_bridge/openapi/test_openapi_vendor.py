"""The vendored part of OpenAI's spec (http_bridge/openapi/openai_subset.json) is what vendor.py makes
from the reference copy of the spec for the bridge's routes today, and it keeps OpenAI's schemas."""

from __future__ import annotations

from pathlib import Path

import pytest

from http_bridge.openapi import document
from http_bridge.openapi.owned import OWNED_OPERATIONS
from http_bridge.openapi.vendor import bridge_routes, load_spec, vendor, vendored_bytes
from tests.openapi_schema import SPEC_PATH

VENDORED = Path(document.__file__).with_name(document.VENDORED_FILE)


@pytest.fixture(scope="module")
def spec() -> dict:
    return load_spec(SPEC_PATH)


def test_the_committed_subset_is_what_vendoring_makes_today(spec: dict) -> None:
    made = vendored_bytes(vendor(spec, bridge_routes()))
    assert made == VENDORED.read_bytes(), (
        "http_bridge/openapi/openai_subset.json is stale: run"
        " `python -m http_bridge.openapi.vendor tests/reference/openai-openapi.yaml` and commit it"
    )


def test_each_openai_path_the_bridge_serves_has_openais_operation(spec: dict) -> None:
    subset = vendor(spec, bridge_routes())
    expected = {
        (method, path)
        for method, path in bridge_routes()
        if (method, path) not in OWNED_OPERATIONS and method.lower() in spec["paths"].get(path[3:], {})
    }
    vendored = {(method.upper(), path) for path, ops in subset["paths"].items() for method in ops}
    assert vendored == expected
    assert ("POST", "/v1/chat/completions") in vendored and ("GET", "/v1/models/{model}") in vendored
    chat = subset["paths"]["/v1/chat/completions"]["post"]
    assert chat["requestBody"] == spec["paths"]["/chat/completions"]["post"]["requestBody"]


def test_every_reference_resolves_inside_the_subset(spec: dict) -> None:
    subset = vendor(spec, bridge_routes())
    found: set[str] = set()

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                found.add(node["$ref"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(subset)
    components = subset["components"]
    missing = [ref for ref in found if ref.split("/")[3] not in components.get(ref.split("/")[2], {})]
    assert not missing


def test_nullable_becomes_a_null_type_and_extensions_are_dropped(spec: dict) -> None:
    text = vendored_bytes(vendor(spec, bridge_routes()))
    assert b'"nullable"' not in text
    assert b'"x-oaiMeta"' not in text
    assert b'"null"' in text
