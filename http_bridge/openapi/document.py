"""GET /openapi.json: an OpenAPI 3.1 document of exactly the routes this bridge serves.

It is made from the aiohttp router, not written by hand: every route the router holds (the
console's pages aside) is one operation. Its request and response schemas are OpenAI's where
OpenAI's spec has the path (`openai_subset.json`, vendored from that spec by vendor.py, with the
few corrections in corrections.py where OpenAI's API sends what its spec does not allow), else ours
(owned.py). Each operation also gets the error reply of its door as `default` (OpenAI's envelope,
or Anthropic's on the Messages paths) and the key it needs (route_auth.key_need). A route with no
operation anywhere is left out, and tests/e2e/hardening/test_openapi_document.py fails naming it: a new route
is documented the day it is added.

The document is built on its first request and kept: the router cannot change once serving.
"""

from __future__ import annotations

import copy
import functools
import importlib.metadata
from importlib import resources
from typing import Any

import orjson
from aiohttp import web

from http_bridge.console.frame import PREFIX as CONSOLE_PREFIX
from http_bridge.messages_errors import is_messages_path
from http_bridge.openapi.corrections import corrected, with_sse_events
from http_bridge.openapi.owned import OWNED_OPERATIONS, OWNED_SCHEMAS
from http_bridge.openapi.owned_messages import ANTHROPIC_ERROR
from http_bridge.route_auth import KeyNeed, key_need

__all__ = ["OPENAPI_PATH", "add_openapi_route", "openapi_document", "served_routes"]

OPENAPI_PATH = "/openapi.json"
VENDORED_FILE = "openai_subset.json"
JsonObject = dict[str, Any]

_SECURITY_SCHEMES = {
    "GatewayKey": {"type": "http", "scheme": "bearer", "description": "A gateway key (sk-sr-...)."},
    "AdminKey": {"type": "http", "scheme": "bearer", "description": "The admin key (server.admin_key)."},
    "AnthropicApiKey": {
        "type": "apiKey",
        "in": "header",
        "name": "x-api-key",
        "description": "A gateway key, sent the way Anthropic's clients send theirs.",
    },
}
_SECURITY: dict[KeyNeed, list[JsonObject]] = {
    KeyNeed.NONE: [],
    KeyNeed.GATEWAY_KEY: [{"GatewayKey": []}, {"AdminKey": []}],
    KeyNeed.ADMIN_KEY: [{"AdminKey": []}],
}
_MESSAGES_SECURITY: list[JsonObject] = [{"GatewayKey": []}, {"AnthropicApiKey": []}]


_OPENAI_ERROR = {"$ref": "#/components/schemas/ErrorResponse"}
_ANTHROPIC_ERROR = {"$ref": f"#/components/schemas/{ANTHROPIC_ERROR}"}


def _error_reply(schema: JsonObject) -> JsonObject:
    return {
        "description": "A refusal or a failure, in this door's error shape.",
        "content": {"application/json": {"schema": schema}},
    }


def _is_console(path: str) -> bool:
    return path == "/" or path == CONSOLE_PREFIX or path.startswith(CONSOLE_PREFIX + "/")


def served_routes(app: web.Application) -> list[tuple[str, str]]:
    """(method, path) of every route `app` serves outside the console, HEAD aside (aiohttp adds one
    to each GET). The path is the route's canonical form: `/v1/models/{model}`."""
    routes = set()
    for route in app.router.routes():
        resource = route.resource
        if resource is None or route.method == "HEAD" or _is_console(resource.canonical):
            continue
        routes.add((route.method, resource.canonical))
    return sorted(routes)


@functools.cache
def vendored_openai() -> JsonObject:
    """The vendored part of OpenAI's spec: `paths` and `components` (see vendor.py)."""
    data: JsonObject = orjson.loads(resources.files(__package__).joinpath(VENDORED_FILE).read_bytes())
    return data


def operation_for(method: str, path: str) -> JsonObject | None:
    """The operation documenting `method path`: ours if we own it, else OpenAI's, else None."""
    owned = OWNED_OPERATIONS.get((method, path))
    if owned is not None:
        return owned
    operation: JsonObject | None = vendored_openai()["paths"].get(path, {}).get(method.lower())
    return operation


def _as_served(operation: JsonObject, path: str) -> JsonObject:
    served = copy.deepcopy(operation)
    messages = is_messages_path(path)
    error = _ANTHROPIC_ERROR if messages else _OPENAI_ERROR
    responses = with_sse_events(served["responses"], error)
    responses.setdefault("default", _error_reply(error))
    served["responses"] = responses
    served["security"] = _MESSAGES_SECURITY if messages else _SECURITY[key_need(path)]
    return served


def _version() -> str:
    try:
        return importlib.metadata.version("siraya-model-router")
    except importlib.metadata.PackageNotFoundError:
        return "0.0.0"


def openapi_document(app: web.Application) -> JsonObject:
    """The document of `app`'s routes (see the module's docstring)."""
    vendored = vendored_openai()
    paths: dict[str, JsonObject] = {}
    for method, path in served_routes(app):
        operation = operation_for(method, path)
        if operation is not None:
            paths.setdefault(path, {})[method.lower()] = _as_served(operation, path)
    components = vendored["components"]
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Siraya Model Router",
            "version": _version(),
            "description": (
                "An OpenAI- and Anthropic-compatible LLM gateway. Schemas of OpenAI's paths are OpenAI's"
                " own (https://github.com/openai/openai-openapi, MIT); the rest are the gateway's."
            ),
        },
        "paths": paths,
        "components": {
            "schemas": {**corrected(components.get("schemas", {})), **OWNED_SCHEMAS},
            "responses": components.get("responses", {}),
            "securitySchemes": _SECURITY_SCHEMES,
        },
    }


def add_openapi_route(app: web.Application) -> None:
    """Serve GET /openapi.json on `app` (built on the first request, then kept)."""
    built: list[bytes] = []

    async def openapi_json(request: web.Request) -> web.StreamResponse:
        if not built:
            built.append(orjson.dumps(openapi_document(request.app)))
        return web.Response(body=built[0], content_type="application/json")

    app.router.add_get(OPENAPI_PATH, openapi_json)
