"""The OpenAPI document the bridge serves at /openapi.json, made from its own router."""

from http_bridge.openapi.document import OPENAPI_PATH, add_openapi_route, openapi_document, served_routes

__all__ = ["OPENAPI_PATH", "add_openapi_route", "openapi_document", "served_routes"]
