"""GET /openapi.json lists exactly the routes the bridge serves, each with its schemas (issue #20).

The document is made from the router; these tests read the router on their own and hold the
document to it, so a route added without an operation (OpenAI's or ours) fails here by name.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import schemathesis
from aiohttp import web

from http_bridge.app import build_app
from http_bridge.openapi import openapi_document
from http_bridge.stubs import GatewayStubs
from tests.e2e.harness import GatewayHarness

BODY_METHODS = {"post", "patch", "put"}
# POSTs that take no body: the id in the path is the whole request.
NO_BODY = {("post", "/v1/keys/{key_id}/rotate"), ("post", "/v1/responses/{response_id}/cancel")}


def _document(harness: GatewayHarness) -> dict[str, Any]:
    response = httpx.get(f"{harness.root_url}/openapi.json", timeout=20)
    assert response.status_code == 200, response.text[:300]
    assert response.headers["content-type"].startswith("application/json")
    document: dict[str, Any] = response.json()
    return document


def _router_routes(app: web.Application) -> set[tuple[str, str]]:
    """Every (method, path) the router serves, bar HEAD (aiohttp's twin of each GET)."""
    routes = set()
    for route in app.router.routes():
        assert route.resource is not None
        if route.method != "HEAD":
            routes.add((route.method, route.resource.canonical))
    return routes


def _documented(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, operations in document["paths"].items() for method in operations}


def _is_console(path: str) -> bool:
    return path == "/" or path == "/console" or path.startswith("/console/")


def test_the_document_lists_exactly_the_routes_the_router_serves(harness: GatewayHarness) -> None:
    assert harness.running is not None
    served = {route for route in _router_routes(harness.running._app) if not _is_console(route[1])}
    documented = _documented(_document(harness))
    assert served - documented == set(), "routes served without an operation in /openapi.json"
    assert documented - served == set(), "operations in /openapi.json for routes nobody serves"
    assert {
        ("POST", "/v1/chat/completions"),
        ("POST", "/v1/messages"),
        ("PATCH", "/v1/keys/{key_id}"),
    } <= served


def test_the_console_is_the_only_part_left_out() -> None:
    """With the console on, its pages are served and undocumented; every other route is documented."""
    from http_bridge.console import console_options

    stubs = GatewayStubs(**{name: None for name in GatewayStubs.__dataclass_fields__})
    app = build_app(stubs, 1024, console=console_options("s" * 32, __import__("pathlib").Path("/tmp"), 1))
    documented = _documented(openapi_document(app))
    left_out = _router_routes(app) - documented
    assert left_out and all(_is_console(path) for _, path in left_out), left_out


def test_a_route_without_an_operation_is_not_documented_so_the_equality_fails() -> None:
    stubs = GatewayStubs(**{name: None for name in GatewayStubs.__dataclass_fields__})
    app = build_app(stubs, 1024)

    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response()

    app.router.add_post("/v1/brand-new", handler)
    assert ("POST", "/v1/brand-new") in _router_routes(app)
    assert ("POST", "/v1/brand-new") not in _documented(openapi_document(app))


def test_each_operation_has_a_reply_an_error_shape_and_a_body_where_it_takes_one(
    harness: GatewayHarness,
) -> None:
    document = _document(harness)
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            where = f"{method.upper()} {path}"
            assert "200" in operation["responses"], where
            error = operation["responses"]["default"]["content"]["application/json"]["schema"]["$ref"]
            expected = "AnthropicErrorResponse" if path.startswith("/v1/messages") else "ErrorResponse"
            assert error.endswith("/" + expected), where
            if method in BODY_METHODS and (method, path) not in NO_BODY:
                assert operation.get("requestBody", {}).get("content"), where
            for name in [part[1:-1] for part in path.split("/") if part.startswith("{")]:
                declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
                assert name in declared, where


def test_openai_paths_carry_openais_schemas(harness: GatewayHarness) -> None:
    document = _document(harness)
    chat = document["paths"]["/v1/chat/completions"]["post"]
    assert chat["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/CreateChatCompletionRequest"
    }
    reply = chat["responses"]["200"]["content"]["application/json"]["schema"]
    assert reply == {"$ref": "#/components/schemas/CreateChatCompletionResponse"}
    assert "CreateChatCompletionRequest" in document["components"]["schemas"]


@pytest.mark.parametrize(
    ("method", "path", "schemes"),
    [
        ("post", "/v1/chat/completions", {"GatewayKey", "AdminKey"}),
        ("post", "/v1/keys", {"AdminKey"}),
        ("post", "/v1/messages", {"GatewayKey", "AnthropicApiKey"}),
        ("get", "/health/live", set()),
    ],
)
def test_each_operation_names_the_key_it_needs(
    harness: GatewayHarness, method: str, path: str, schemes: set[str]
) -> None:
    operation = _document(harness)["paths"][path][method]
    assert {name for requirement in operation["security"] for name in requirement} == schemes


def test_schemathesis_reads_every_operation(harness: GatewayHarness) -> None:
    schema = schemathesis.openapi.from_url(f"{harness.root_url}/openapi.json")
    read = {result.ok().label for result in schema.get_all_operations()}
    # Loaded from its URL, schemathesis leaves out the operation serving the document itself.
    documented = {f"{method} {path}" for method, path in _documented(_document(harness))}
    assert read == documented - {"GET /openapi.json"}
