"""REST for accounts: key administration under /v1/keys (admin key), and a key's own view.

POST   /v1/keys                 create {name, expires_at?, allowed_models?, credit_limit?, rpm_limit?,
                                tpm_limit?, cache_namespace?, team_id?, budget?}; the secret is in this
                                response only (a budget: http_bridge/budget_fields.py)
GET    /v1/keys                 list
GET    /v1/keys/{id}            get
PATCH  /v1/keys/{id}            any of the create fields; null clears one (no expiry, no limit)
DELETE /v1/keys/{id}            revoke
POST   /v1/keys/{id}/rotate     new secret, shown once
GET    /v1/key                  the calling key: limit, usage, remaining credit
GET    /v1/generation?id=...    the ledger record of one of the calling key's requests

and /v1/teams (teams_routes.py).
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from http_bridge.admin_bodies import new_settings, optional_name, optional_number, settings_mask
from http_bridge.budget_fields import budget_json, budget_spec
from http_bridge.teams_routes import add_team_routes, team_json
from server.errors import InvalidRequest
from siraya.router.codec.generations import generation_json
from siraya.router.v1 import admin_pb2

_JSON = "application/json"
# Key administration lives under this path, and only there: route_auth.py asks for the admin key by it.
KEYS_PATH = "/v1/keys"
# A key's settings, as POST and PATCH take them (and as the admin API's KeySpec holds them).
KEY_FIELDS = (
    "name",
    "expires_at",
    "allowed_models",
    "credit_limit",
    "rpm_limit",
    "tpm_limit",
    "cache_namespace",
    "team_id",
    "budget",
)
# (field, the bit width of its integer in KeySpec, or 0 for a number) of the numeric settings.
_NUMBERS = (("expires_at", 64), ("credit_limit", 0), ("rpm_limit", 32), ("tpm_limit", 64))


def _key_json(key: admin_pb2.KeyInfo) -> dict[str, Any]:
    return {
        "object": "key",
        "id": key.id,
        "name": key.name,
        "prefix": key.prefix,
        "created_at": key.created_at,
        "expires_at": key.expires_at if key.HasField("expires_at") else None,
        "revoked_at": key.revoked_at if key.HasField("revoked_at") else None,
        "allowed_models": list(key.allowed_models),
        "credit_limit": key.credit_limit if key.HasField("credit_limit") else None,
        "credit_used": key.credit_used,
        "rpm_limit": key.rpm_limit if key.HasField("rpm_limit") else None,
        "tpm_limit": key.tpm_limit if key.HasField("tpm_limit") else None,
        "cache_namespace": key.cache_namespace,
        "team_id": key.team_id if key.HasField("team_id") else None,
        "budget": (
            budget_json(key.budget, key.budget_status if key.HasField("budget_status") else None)
            if key.HasField("budget")
            else None
        ),
    }


def _respond(request: web.Request, body: dict[str, Any], request_id: str) -> web.Response:
    return web.Response(body=orjson.dumps(body), content_type=_JSON, headers={"X-Request-Id": request_id})


def _spec_fields(body: dict[str, Any]) -> admin_pb2.KeySpec:
    """The KeySpec of the fields `body` holds (type-checked; a null leaves its field unset)."""
    spec = admin_pb2.KeySpec()
    name = optional_name(body)
    if name is not None:
        spec.name = name
    namespace = body.get("cache_namespace")
    if namespace is not None:
        if not isinstance(namespace, str):
            raise InvalidRequest(
                "'cache_namespace' must be a string.", param="cache_namespace", code="invalid_type"
            )
        spec.cache_namespace = namespace
    team_id = body.get("team_id")
    if team_id is not None:
        if not isinstance(team_id, str) or not team_id:
            raise InvalidRequest(
                "'team_id' must be a team's id, or null for none.", param="team_id", code="invalid_type"
            )
        spec.team_id = team_id
    if body.get("budget") is not None:
        spec.budget.CopyFrom(budget_spec(body["budget"]))
    models = body.get("allowed_models") or []
    if not isinstance(models, list) or not all(isinstance(model, str) for model in models):
        raise InvalidRequest(
            "'allowed_models' must be a list of model ids.", param="allowed_models", code="invalid_type"
        )
    spec.allowed_models.extend(models)
    for field, bits in _NUMBERS:
        value = optional_number(body, field, bits=bits)
        if value is not None:
            setattr(spec, field, value)
    return spec


def key_spec(body: dict[str, Any]) -> admin_pb2.KeySpec:
    """The body of POST /v1/keys: unknown fields are refused by name, a name is required."""
    new_settings(body, KEY_FIELDS, "key")
    return _spec_fields(body)


def key_update(key_id: str, body: dict[str, Any]) -> admin_pb2.UpdateKeyRequest:
    """The body of PATCH /v1/keys/{id}: the fields it holds change, a null clears one."""
    mask = settings_mask(body, KEY_FIELDS, "key")
    return admin_pb2.UpdateKeyRequest(id=key_id, key=_spec_fields(body), update_mask=mask)


def add_account_routes(
    app: web.Application, stubs_key: Any, read_json: Any, call_metadata: Any, request_id_of: Any
) -> None:
    """Register the routes; the bridge passes its own helpers so both share one request path."""

    def stubs(request: web.Request) -> Any:
        return request.app[stubs_key]

    def admin_metadata(request: web.Request) -> list[tuple[str, str]]:
        """`call_metadata`, plus where the call came from, for the audit log of key administration."""
        return [
            *call_metadata(request),
            ("x-siraya-client-address", request.remote or ""),
            ("x-siraya-via", "rest"),
        ]

    async def create_key(request: web.Request) -> web.StreamResponse:
        spec = key_spec(await read_json(request))
        reply = await stubs(request).keys.CreateKey(
            admin_pb2.CreateKeyRequest(spec=spec), metadata=admin_metadata(request)
        )
        return _respond(request, {**_key_json(reply.key), "secret": reply.secret}, request_id_of(request))

    async def list_keys(request: web.Request) -> web.StreamResponse:
        reply = await stubs(request).keys.ListKeys(
            admin_pb2.ListKeysRequest(), metadata=call_metadata(request)
        )
        return _respond(
            request,
            {"object": "list", "data": [_key_json(key) for key in reply.keys]},
            request_id_of(request),
        )

    async def get_key(request: web.Request) -> web.StreamResponse:
        reply = await stubs(request).keys.GetKey(
            admin_pb2.GetKeyRequest(id=request.match_info["key_id"]), metadata=call_metadata(request)
        )
        return _respond(request, _key_json(reply.key), request_id_of(request))

    async def update_key(request: web.Request) -> web.StreamResponse:
        update = key_update(request.match_info["key_id"], await read_json(request))
        reply = await stubs(request).keys.UpdateKey(update, metadata=admin_metadata(request))
        return _respond(request, _key_json(reply.key), request_id_of(request))

    async def revoke_key(request: web.Request) -> web.StreamResponse:
        reply = await stubs(request).keys.RevokeKey(
            admin_pb2.RevokeKeyRequest(id=request.match_info["key_id"]), metadata=admin_metadata(request)
        )
        return _respond(request, _key_json(reply.key), request_id_of(request))

    async def rotate_key(request: web.Request) -> web.StreamResponse:
        reply = await stubs(request).keys.RotateKey(
            admin_pb2.RotateKeyRequest(id=request.match_info["key_id"]), metadata=admin_metadata(request)
        )
        return _respond(request, {**_key_json(reply.key), "secret": reply.secret}, request_id_of(request))

    async def current_key(request: web.Request) -> web.StreamResponse:
        reply = await stubs(request).account.GetCurrentKey(
            admin_pb2.GetCurrentKeyRequest(), metadata=call_metadata(request)
        )
        key = reply.key
        data = {
            **_key_json(key),
            "label": key.prefix + "…",
            "limit": key.credit_limit if key.HasField("credit_limit") else None,
            "usage": reply.usage,
            "reserved": reply.reserved,
            "limit_remaining": reply.limit_remaining if reply.HasField("limit_remaining") else None,
            "rate_limit": {
                "requests_per_minute": key.rpm_limit if key.HasField("rpm_limit") else None,
                "tokens_per_minute": key.tpm_limit if key.HasField("tpm_limit") else None,
            },
            "team": team_json(reply.team) if reply.HasField("team") else None,
        }
        return _respond(request, {"data": data}, request_id_of(request))

    async def get_generation(request: web.Request) -> web.StreamResponse:
        reply = await stubs(request).account.GetGeneration(
            admin_pb2.GetGenerationRequest(id=request.query.get("id", "")), metadata=call_metadata(request)
        )
        return _respond(request, {"data": generation_json(reply.generation)}, request_id_of(request))

    app.router.add_post(KEYS_PATH, create_key)
    app.router.add_get(KEYS_PATH, list_keys)
    app.router.add_get(KEYS_PATH + "/{key_id}", get_key)
    app.router.add_patch(KEYS_PATH + "/{key_id}", update_key)
    app.router.add_delete(KEYS_PATH + "/{key_id}", revoke_key)
    app.router.add_post(KEYS_PATH + "/{key_id}/rotate", rotate_key)
    app.router.add_get("/v1/key", current_key)
    app.router.add_get("/v1/generation", get_generation)
    add_team_routes(app, stubs, read_json, call_metadata, admin_metadata, request_id_of)
