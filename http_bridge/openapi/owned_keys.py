"""Key and team administration (`/v1/keys*`, `/v1/teams*`, the admin key's routes): their
operations and schemas, written from http_bridge/accounts_routes.py and teams_routes.py.
"""

from __future__ import annotations

from http_bridge.openapi.owned_parts import (
    INT32,
    INT64,
    USD,
    JsonObject,
    json_body,
    json_reply,
    list_of,
    nullable,
    operation,
    path_parameter,
    ref,
)

__all__ = ["KEY_OPERATIONS", "KEY_PROPERTIES", "KEY_REQUIRED", "KEY_SCHEMAS"]

_KEY_SETTINGS: JsonObject = {
    "name": {"type": "string", "minLength": 1, "description": "A label for the key."},
    "expires_at": nullable({**INT64, "minimum": 1, "description": "Unix seconds; null: never."}),
    "allowed_models": nullable(
        {"type": "array", "items": {"type": "string"}, "description": "Model ids; empty or null: all."}
    ),
    "credit_limit": nullable(USD),
    "rpm_limit": nullable(INT32),
    "tpm_limit": nullable(INT64),
    "cache_namespace": nullable(
        {
            "type": "string",
            "pattern": "^[!-~]{1,128}$",
            "description": "Keys that share it share cached answers.",
        }
    ),
    "team_id": nullable({"type": "string", "description": "The team that owns the key; null: none."}),
    "budget": nullable(ref("SirayaBudgetSetting")),
}

_BUDGET_SETTING: JsonObject = {
    "type": "object",
    "required": ["limit", "period"],
    "properties": {
        "limit": USD,
        "period": {"type": "string", "enum": ["day", "week", "month"]},
        "reset": {"type": "string", "enum": ["calendar", "rolling"]},
    },
    "additionalProperties": False,
}

_TEAM_SETTINGS: JsonObject = {
    "name": {"type": "string", "minLength": 1, "description": "A label for the team."},
    "credit_limit": nullable(USD),
    "budget": nullable(ref("SirayaBudgetSetting")),
    "rpm_limit": nullable(INT32),
    "tpm_limit": nullable(INT64),
}

_TEAM_PROPERTIES: JsonObject = {
    "object": {"type": "string", "enum": ["team"]},
    "id": {"type": "string"},
    "name": {"type": "string"},
    "created_at": {"type": "integer"},
    "credit_limit": nullable({"type": "number"}),
    "credit_used": {"type": "number"},
    "credit_reserved": {"type": "number"},
    "budget": nullable({"type": "object"}),
    "rpm_limit": nullable({"type": "integer"}),
    "tpm_limit": nullable({"type": "integer"}),
}

KEY_PROPERTIES: JsonObject = {
    "object": {"type": "string", "enum": ["key"]},
    "id": {"type": "string"},
    "name": {"type": "string"},
    "prefix": {"type": "string", "description": "The first characters of the secret, to recognise it."},
    "created_at": {"type": "integer"},
    "expires_at": nullable({"type": "integer"}),
    "revoked_at": nullable({"type": "integer"}),
    "allowed_models": {"type": "array", "items": {"type": "string"}},
    "credit_limit": nullable({"type": "number"}),
    "credit_used": {"type": "number"},
    "rpm_limit": nullable({"type": "integer"}),
    "tpm_limit": nullable({"type": "integer"}),
}
KEY_REQUIRED = list(KEY_PROPERTIES)

KEY_SCHEMAS: dict[str, JsonObject] = {
    "SirayaBudgetSetting": _BUDGET_SETTING,
    "SirayaTeamSettings": {
        "type": "object",
        "description": "A team's settings. On create `name` is required; on update a null clears one.",
        "properties": _TEAM_SETTINGS,
        "additionalProperties": False,
    },
    "SirayaNewTeam": {"allOf": [ref("SirayaTeamSettings"), {"type": "object", "required": ["name"]}]},
    "SirayaTeamUpdate": {"allOf": [ref("SirayaTeamSettings"), {"type": "object", "minProperties": 1}]},
    "SirayaTeam": {"type": "object", "required": list(_TEAM_PROPERTIES), "properties": _TEAM_PROPERTIES},
    "SirayaTeamList": list_of(ref("SirayaTeam")),
    "SirayaKeySettings": {
        "type": "object",
        "description": "A key's settings. On create `name` is required; on update a null clears a setting.",
        "properties": _KEY_SETTINGS,
        "additionalProperties": False,
    },
    "SirayaNewKey": {
        "allOf": [ref("SirayaKeySettings"), {"type": "object", "required": ["name"]}],
    },
    "SirayaKeyUpdate": {
        "allOf": [ref("SirayaKeySettings"), {"type": "object", "minProperties": 1}],
    },
    "SirayaKey": {"type": "object", "required": KEY_REQUIRED, "properties": KEY_PROPERTIES},
    "SirayaKeyWithSecret": {
        "type": "object",
        "required": [*KEY_REQUIRED, "secret"],
        "properties": {**KEY_PROPERTIES, "secret": {"type": "string", "description": "Shown only here."}},
    },
    "SirayaKeyList": list_of(ref("SirayaKey")),
}

_KEY_ID = path_parameter("key_id", "The key's id.")
_TEAM_ID = path_parameter("team_id", "The team's id.")

KEY_OPERATIONS: dict[tuple[str, str], JsonObject] = {
    ("POST", "/v1/keys"): operation(
        "createKey",
        "Create a key; its secret is in this reply only.",
        "Keys",
        {"200": json_reply(ref("SirayaKeyWithSecret"))},
        request_body=json_body(ref("SirayaNewKey")),
    ),
    ("GET", "/v1/keys"): operation(
        "listKeys", "List every key.", "Keys", {"200": json_reply(ref("SirayaKeyList"))}
    ),
    ("GET", "/v1/keys/{key_id}"): operation(
        "getKey", "Get a key.", "Keys", {"200": json_reply(ref("SirayaKey"))}, parameters=[_KEY_ID]
    ),
    ("PATCH", "/v1/keys/{key_id}"): operation(
        "updateKey",
        "Change a key's settings; a null clears one (no expiry, no limit).",
        "Keys",
        {"200": json_reply(ref("SirayaKey"))},
        parameters=[_KEY_ID],
        request_body=json_body(ref("SirayaKeyUpdate")),
    ),
    ("DELETE", "/v1/keys/{key_id}"): operation(
        "revokeKey", "Revoke a key.", "Keys", {"200": json_reply(ref("SirayaKey"))}, parameters=[_KEY_ID]
    ),
    ("POST", "/v1/keys/{key_id}/rotate"): operation(
        "rotateKey",
        "Give a key a new secret, shown in this reply only.",
        "Keys",
        {"200": json_reply(ref("SirayaKeyWithSecret"))},
        parameters=[_KEY_ID],
    ),
    ("POST", "/v1/teams"): operation(
        "createTeam",
        "Create a team: a budget and rate limits over the keys it owns.",
        "Teams",
        {"200": json_reply(ref("SirayaTeam"))},
        request_body=json_body(ref("SirayaNewTeam")),
    ),
    ("GET", "/v1/teams"): operation(
        "listTeams", "List every team.", "Teams", {"200": json_reply(ref("SirayaTeamList"))}
    ),
    ("GET", "/v1/teams/{team_id}"): operation(
        "getTeam", "Get a team.", "Teams", {"200": json_reply(ref("SirayaTeam"))}, parameters=[_TEAM_ID]
    ),
    ("PATCH", "/v1/teams/{team_id}"): operation(
        "updateTeam",
        "Change a team's settings; a null clears one.",
        "Teams",
        {"200": json_reply(ref("SirayaTeam"))},
        parameters=[_TEAM_ID],
        request_body=json_body(ref("SirayaTeamUpdate")),
    ),
    ("DELETE", "/v1/teams/{team_id}"): operation(
        "deleteTeam",
        "Delete a team (its keys stay, without a team).",
        "Teams",
        {
            "200": json_reply(
                {
                    "type": "object",
                    "required": ["object", "id", "deleted"],
                    "properties": {
                        "object": {"type": "string", "enum": ["team.deleted"]},
                        "id": {"type": "string"},
                        "deleted": {"type": "boolean"},
                    },
                }
            )
        },
        parameters=[_TEAM_ID],
    ),
}
