"""The operations and schemas of the routes OpenAI's spec does not have: ours to describe.

Key administration, a key's own view and the ledger (`/v1/keys`, `/v1/key`, `/v1/generation(s)`,
`/v1/usage`, `/v1/providers`, `/v1/audit`), Anthropic's Messages door (`/v1/messages`), the video
alias `/v1/videos/generations`, and operations (`/health/*`, `/metrics`, `/openapi.json`). Each one
is written from its handler (http_bridge/*_routes.py): the request it takes and the reply it gives,
so that schemathesis can hold the running gateway to them (tests/e2e/hardening/test_openapi_fuzz.py). A
schema may reference OpenAI's components; the vendoring (vendor.py) copies what they name.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ANTHROPIC_ERROR", "OWNED_OPERATIONS", "OWNED_SCHEMAS"]

JsonObject = dict[str, Any]

ANTHROPIC_ERROR = "AnthropicErrorResponse"


def _ref(name: str) -> JsonObject:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: JsonObject) -> JsonObject:
    return {"anyOf": [schema, {"type": "null"}]}


def _json(schema: JsonObject, description: str = "OK") -> JsonObject:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _body(schema: JsonObject) -> JsonObject:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _query(name: str, schema: JsonObject, description: str, *, required: bool = False) -> JsonObject:
    return {"name": name, "in": "query", "required": required, "schema": schema, "description": description}


def _path(name: str, description: str) -> JsonObject:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
        "description": description,
    }


def _operation(
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


# --- schemas ---------------------------------------------------------------------------------

_INT32 = {"type": "integer", "minimum": 0, "maximum": 2**31 - 1}
_INT64 = {"type": "integer", "minimum": 0, "maximum": 2**63 - 1}
_USD = {"type": "number", "minimum": 0, "description": "US dollars."}

_KEY_SETTINGS: JsonObject = {
    "name": {"type": "string", "minLength": 1, "description": "A label for the key."},
    "expires_at": _nullable({**_INT64, "minimum": 1, "description": "Unix seconds; null: never."}),
    "allowed_models": _nullable(
        {"type": "array", "items": {"type": "string"}, "description": "Model ids; empty or null: all."}
    ),
    "credit_limit": _nullable(_USD),
    "rpm_limit": _nullable(_INT32),
    "tpm_limit": _nullable(_INT64),
    "cache_namespace": _nullable(
        {
            "type": "string",
            "pattern": "^[!-~]{1,128}$",
            "description": "Keys that share it share cached answers.",
        }
    ),
    "team_id": _nullable({"type": "string", "description": "The team that owns the key; null: none."}),
    "budget": _nullable(_ref("SirayaBudgetSetting")),
}

_BUDGET_SETTING: JsonObject = {
    "type": "object",
    "required": ["limit", "period"],
    "properties": {
        "limit": _USD,
        "period": {"type": "string", "enum": ["day", "week", "month"]},
        "reset": {"type": "string", "enum": ["calendar", "rolling"]},
    },
    "additionalProperties": False,
}

_TEAM_SETTINGS: JsonObject = {
    "name": {"type": "string", "minLength": 1, "description": "A label for the team."},
    "credit_limit": _nullable(_USD),
    "budget": _nullable(_ref("SirayaBudgetSetting")),
    "rpm_limit": _nullable(_INT32),
    "tpm_limit": _nullable(_INT64),
}

_TEAM_PROPERTIES: JsonObject = {
    "object": {"type": "string", "enum": ["team"]},
    "id": {"type": "string"},
    "name": {"type": "string"},
    "created_at": {"type": "integer"},
    "credit_limit": _nullable({"type": "number"}),
    "credit_used": {"type": "number"},
    "credit_reserved": {"type": "number"},
    "budget": _nullable({"type": "object"}),
    "rpm_limit": _nullable({"type": "integer"}),
    "tpm_limit": _nullable({"type": "integer"}),
}

_KEY_PROPERTIES: JsonObject = {
    "object": {"type": "string", "enum": ["key"]},
    "id": {"type": "string"},
    "name": {"type": "string"},
    "prefix": {"type": "string", "description": "The first characters of the secret, to recognise it."},
    "created_at": {"type": "integer"},
    "expires_at": _nullable({"type": "integer"}),
    "revoked_at": _nullable({"type": "integer"}),
    "allowed_models": {"type": "array", "items": {"type": "string"}},
    "credit_limit": _nullable({"type": "number"}),
    "credit_used": {"type": "number"},
    "rpm_limit": _nullable({"type": "integer"}),
    "tpm_limit": _nullable({"type": "integer"}),
}
_KEY_REQUIRED = list(_KEY_PROPERTIES)

_ATTEMPT: JsonObject = {
    "type": "object",
    "required": ["provider", "model", "upstream_model", "outcome", "start_ms", "latency_ms"],
    "properties": {
        "provider": {"type": "string"},
        "model": {"type": "string"},
        "upstream_model": {"type": "string"},
        "outcome": {"type": "string"},
        "start_ms": {"type": "number"},
        "latency_ms": {"type": "number"},
        "error_code": _nullable({"type": "string"}),
        "http_status": _nullable({"type": "integer"}),
    },
}

_GENERATION_PROPERTIES: JsonObject = {
    "id": {"type": "string"},
    "key_id": {"type": "string"},
    "created_at": {"type": "number"},
    "model": {"type": "string"},
    "model_served": _nullable({"type": "string"}),
    "provider_name": _nullable({"type": "string"}),
    "status": {"type": "string"},
    "http_status": {"type": "integer"},
    "error_code": _nullable({"type": "string"}),
    "tokens_prompt": {"type": "integer"},
    "tokens_completion": {"type": "integer"},
    "native_tokens_cached": {"type": "integer"},
    "native_tokens_cache_write": {"type": "integer"},
    "native_tokens_reasoning": {"type": "integer"},
    "total_cost": {"type": "number"},
    "latency": {"type": "number"},
    "ttft": _nullable({"type": "number"}),
    "streamed": {"type": "boolean"},
    "cancelled": {"type": "boolean"},
    "cache_hit": {"type": "boolean"},
    "cache_saved": {"type": "number"},
    "attempts": {"type": "array", "items": _ref("SirayaGenerationAttempt")},
}

_ANTHROPIC_BLOCK: JsonObject = {
    "type": "object",
    "required": ["type"],
    "properties": {"type": {"type": "string"}},
    "description": "A content block: text, image, document, tool_use, tool_result, thinking, ...",
}

_MESSAGE_PARAMS: JsonObject = {
    "model": {"type": "string", "minLength": 1},
    "messages": {
        "type": "array",
        "items": {
            "type": "object",
            "required": ["role", "content"],
            "properties": {
                "role": {"type": "string", "enum": ["user", "assistant"]},
                "content": {
                    "anyOf": [{"type": "string"}, {"type": "array", "items": _ref("AnthropicContentBlock")}]
                },
            },
        },
    },
    "system": {"anyOf": [{"type": "string"}, {"type": "array", "items": _ref("AnthropicContentBlock")}]},
    "tools": {
        "type": "array",
        "items": {
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": {"type": "string"},
                "description": {"type": "string"},
                "input_schema": {"type": "object"},
                "type": {"type": "string"},
            },
        },
    },
    "tool_choice": {
        "type": "object",
        "required": ["type"],
        "properties": {"type": {"type": "string", "enum": ["auto", "any", "tool", "none"]}},
    },
    "thinking": {
        "type": "object",
        "required": ["type"],
        "properties": {
            "type": {"type": "string", "enum": ["enabled", "disabled", "adaptive"]},
            "budget_tokens": _INT32,
        },
    },
    "metadata": {
        "type": "object",
        "properties": {"user_id": {"type": "string"}},
        "additionalProperties": False,
    },
    "stop_sequences": {"type": "array", "items": {"type": "string"}},
    "temperature": {"type": "number", "minimum": 0, "maximum": 1},
    "top_p": {"type": "number", "minimum": 0, "maximum": 1},
    "top_k": _INT32,
    "stream": {"type": "boolean"},
}

OWNED_SCHEMAS: dict[str, JsonObject] = {
    "SirayaBudgetSetting": _BUDGET_SETTING,
    "SirayaTeamSettings": {
        "type": "object",
        "description": "A team's settings. On create `name` is required; on update a null clears one.",
        "properties": _TEAM_SETTINGS,
        "additionalProperties": False,
    },
    "SirayaNewTeam": {"allOf": [_ref("SirayaTeamSettings"), {"type": "object", "required": ["name"]}]},
    "SirayaTeamUpdate": {"allOf": [_ref("SirayaTeamSettings"), {"type": "object", "minProperties": 1}]},
    "SirayaTeam": {"type": "object", "required": list(_TEAM_PROPERTIES), "properties": _TEAM_PROPERTIES},
    "SirayaTeamList": {
        "type": "object",
        "required": ["object", "data"],
        "properties": {
            "object": {"type": "string", "enum": ["list"]},
            "data": {"type": "array", "items": _ref("SirayaTeam")},
        },
    },
    "SirayaKeySettings": {
        "type": "object",
        "description": "A key's settings. On create `name` is required; on update a null clears a setting.",
        "properties": _KEY_SETTINGS,
        "additionalProperties": False,
    },
    "SirayaNewKey": {
        "allOf": [_ref("SirayaKeySettings"), {"type": "object", "required": ["name"]}],
    },
    "SirayaKeyUpdate": {
        "allOf": [_ref("SirayaKeySettings"), {"type": "object", "minProperties": 1}],
    },
    "SirayaKey": {"type": "object", "required": _KEY_REQUIRED, "properties": _KEY_PROPERTIES},
    "SirayaKeyWithSecret": {
        "type": "object",
        "required": [*_KEY_REQUIRED, "secret"],
        "properties": {**_KEY_PROPERTIES, "secret": {"type": "string", "description": "Shown only here."}},
    },
    "SirayaKeyList": {
        "type": "object",
        "required": ["object", "data"],
        "properties": {
            "object": {"type": "string", "enum": ["list"]},
            "data": {"type": "array", "items": _ref("SirayaKey")},
        },
    },
    "SirayaCurrentKey": {
        "type": "object",
        "required": ["data"],
        "properties": {
            "data": {
                "type": "object",
                "required": [*_KEY_REQUIRED, "label", "limit", "usage", "reserved", "limit_remaining"],
                "properties": {
                    **_KEY_PROPERTIES,
                    "label": {"type": "string"},
                    "limit": _nullable({"type": "number"}),
                    "usage": {"type": "number"},
                    "reserved": {"type": "number"},
                    "limit_remaining": _nullable({"type": "number"}),
                    "rate_limit": {
                        "type": "object",
                        "properties": {
                            "requests_per_minute": _nullable({"type": "integer"}),
                            "tokens_per_minute": _nullable({"type": "integer"}),
                        },
                    },
                },
            }
        },
    },
    "SirayaGenerationAttempt": _ATTEMPT,
    "SirayaGeneration": {
        "type": "object",
        "required": list(_GENERATION_PROPERTIES),
        "properties": _GENERATION_PROPERTIES,
    },
    "SirayaGenerationList": {
        "type": "object",
        "required": ["object", "data", "has_more", "next_cursor"],
        "properties": {
            "object": {"type": "string", "enum": ["list"]},
            "data": {"type": "array", "items": _ref("SirayaGeneration")},
            "has_more": {"type": "boolean"},
            "next_cursor": _nullable({"type": "string"}),
        },
    },
    "SirayaUsage": {
        "type": "object",
        "required": ["object", "since", "until", "group_by", "bucket", "data"],
        "properties": {
            "object": {"type": "string", "enum": ["list"]},
            "since": {"type": "number"},
            "until": {"type": "number"},
            "group_by": _nullable({"type": "string"}),
            "bucket": _nullable({"type": "string"}),
            "data": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["requests", "prompt_tokens", "completion_tokens", "total_tokens", "cost"],
                    "properties": {
                        "bucket_start": _nullable({"type": "number"}),
                        "group": _nullable({"type": "string"}),
                        "requests": {"type": "integer"},
                        "prompt_tokens": {"type": "integer"},
                        "completion_tokens": {"type": "integer"},
                        "total_tokens": {"type": "integer"},
                        "cost": {"type": "number"},
                        "errors": {"type": "integer"},
                        "p50_latency_ms": {"type": "number"},
                        "p95_latency_ms": {"type": "number"},
                    },
                },
            },
        },
    },
    "SirayaDeploymentList": {
        "type": "object",
        "required": ["object", "data"],
        "properties": {
            "object": {"type": "string", "enum": ["list"]},
            "data": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["model", "provider", "deployment", "breaker_state"],
                    "properties": {
                        "model": {"type": "string"},
                        "provider": {"type": "string"},
                        "upstream_model": {"type": "string"},
                        "deployment": {"type": "string"},
                        "breaker_state": {"type": "string"},
                        "latency_ms": _nullable({"type": "number"}),
                        "throughput": _nullable({"type": "number"}),
                        "error_rate": _nullable({"type": "number"}),
                        "attempts": {"type": "integer"},
                        "failures": {"type": "integer"},
                    },
                },
            },
        },
    },
    "SirayaAuditEventList": {
        "type": "object",
        "required": ["object", "data"],
        "properties": {
            "object": {"type": "string", "enum": ["list"]},
            "data": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["id", "at", "actor", "action", "target", "source", "via", "detail"],
                    "properties": {
                        "id": {"type": "integer"},
                        "at": {"type": "number"},
                        "actor": {"type": "string"},
                        "action": {"type": "string"},
                        "target": _nullable({"type": "string"}),
                        "source": _nullable({"type": "string"}),
                        "via": _nullable({"type": "string"}),
                        "detail": {"type": "object"},
                    },
                },
            },
        },
    },
    "SirayaHealth": {
        "type": "object",
        "required": ["status"],
        "properties": {"status": {"type": "string", "enum": ["ok", "ready", "not ready"]}},
    },
    "AnthropicContentBlock": _ANTHROPIC_BLOCK,
    "AnthropicCreateMessageRequest": {
        "type": "object",
        "required": ["model", "max_tokens", "messages"],
        "properties": {"max_tokens": {**_INT32, "minimum": 1}, **_MESSAGE_PARAMS},
        "description": "Anthropic's Messages request (2023-06-01); unlisted fields go to the upstream.",
    },
    "AnthropicCountTokensRequest": {
        "type": "object",
        "required": ["model", "messages"],
        "properties": _MESSAGE_PARAMS,
    },
    "AnthropicMessage": {
        "type": "object",
        "required": ["id", "type", "role", "content", "model", "stop_reason", "usage"],
        "properties": {
            "id": {"type": "string"},
            "type": {"type": "string", "enum": ["message"]},
            "role": {"type": "string", "enum": ["assistant"]},
            "content": {"type": "array", "items": _ref("AnthropicContentBlock")},
            "model": {"type": "string"},
            "stop_reason": _nullable({"type": "string"}),
            "stop_sequence": _nullable({"type": "string"}),
            "usage": {
                "type": "object",
                "required": ["input_tokens", "output_tokens"],
                "properties": {"input_tokens": {"type": "integer"}, "output_tokens": {"type": "integer"}},
            },
        },
    },
    "AnthropicMessageStreamEvent": {
        "type": "object",
        "required": ["type"],
        "properties": {"type": {"type": "string"}},
    },
    "AnthropicTokenCount": {
        "type": "object",
        "required": ["input_tokens"],
        "properties": {"input_tokens": {"type": "integer", "minimum": 0}},
    },
    ANTHROPIC_ERROR: {
        "type": "object",
        "required": ["type", "error"],
        "properties": {
            "type": {"type": "string", "enum": ["error"]},
            "error": {
                "type": "object",
                "required": ["type", "message"],
                "properties": {"type": {"type": "string"}, "message": {"type": "string"}},
            },
            "request_id": _nullable({"type": "string"}),
        },
    },
}


# --- operations ------------------------------------------------------------------------------

_KEY_ID = _path("key_id", "The key's id.")
_TEAM_ID = _path("team_id", "The team's id.")
_FILTERS = [
    _query("key", {"type": "string"}, "Only this key's records (the admin key may name any key)."),
    _query("model", {"type": "string"}, "Only this model's records."),
    _query("provider", {"type": "string"}, "Only this provider's records."),
    _query("status", {"type": "string"}, "success, error, cancelled, cache_hit, 4xx, 5xx, or a status."),
    _query("since", {"type": "string"}, "Unix seconds, or a duration back from now: 15m, 24h, 7d."),
    _query("until", {"type": "string"}, "Unix seconds, or a duration back from now."),
    _query("min_cost", {"type": "number", "minimum": 0}, "US dollars."),
    _query("max_cost", {"type": "number", "minimum": 0}, "US dollars."),
]

OWNED_OPERATIONS: dict[tuple[str, str], JsonObject] = {
    ("POST", "/v1/keys"): _operation(
        "createKey",
        "Create a key; its secret is in this reply only.",
        "Keys",
        {"200": _json(_ref("SirayaKeyWithSecret"))},
        request_body=_body(_ref("SirayaNewKey")),
    ),
    ("GET", "/v1/keys"): _operation(
        "listKeys", "List every key.", "Keys", {"200": _json(_ref("SirayaKeyList"))}
    ),
    ("GET", "/v1/keys/{key_id}"): _operation(
        "getKey", "Get a key.", "Keys", {"200": _json(_ref("SirayaKey"))}, parameters=[_KEY_ID]
    ),
    ("PATCH", "/v1/keys/{key_id}"): _operation(
        "updateKey",
        "Change a key's settings; a null clears one (no expiry, no limit).",
        "Keys",
        {"200": _json(_ref("SirayaKey"))},
        parameters=[_KEY_ID],
        request_body=_body(_ref("SirayaKeyUpdate")),
    ),
    ("DELETE", "/v1/keys/{key_id}"): _operation(
        "revokeKey", "Revoke a key.", "Keys", {"200": _json(_ref("SirayaKey"))}, parameters=[_KEY_ID]
    ),
    ("POST", "/v1/keys/{key_id}/rotate"): _operation(
        "rotateKey",
        "Give a key a new secret, shown in this reply only.",
        "Keys",
        {"200": _json(_ref("SirayaKeyWithSecret"))},
        parameters=[_KEY_ID],
    ),
    ("POST", "/v1/teams"): _operation(
        "createTeam",
        "Create a team: a budget and rate limits over the keys it owns.",
        "Teams",
        {"200": _json(_ref("SirayaTeam"))},
        request_body=_body(_ref("SirayaNewTeam")),
    ),
    ("GET", "/v1/teams"): _operation(
        "listTeams", "List every team.", "Teams", {"200": _json(_ref("SirayaTeamList"))}
    ),
    ("GET", "/v1/teams/{team_id}"): _operation(
        "getTeam", "Get a team.", "Teams", {"200": _json(_ref("SirayaTeam"))}, parameters=[_TEAM_ID]
    ),
    ("PATCH", "/v1/teams/{team_id}"): _operation(
        "updateTeam",
        "Change a team's settings; a null clears one.",
        "Teams",
        {"200": _json(_ref("SirayaTeam"))},
        parameters=[_TEAM_ID],
        request_body=_body(_ref("SirayaTeamUpdate")),
    ),
    ("DELETE", "/v1/teams/{team_id}"): _operation(
        "deleteTeam",
        "Delete a team (its keys stay, without a team).",
        "Teams",
        {
            "200": _json(
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
    ("GET", "/v1/key"): _operation(
        "getCurrentKey",
        "The calling key: its limits, usage and remaining credit.",
        "Account",
        {"200": _json(_ref("SirayaCurrentKey"))},
    ),
    ("GET", "/v1/generation"): _operation(
        "getGeneration",
        "The ledger record of one of the calling key's requests.",
        "Account",
        {
            "200": _json(
                {"type": "object", "required": ["data"], "properties": {"data": _ref("SirayaGeneration")}}
            )
        },
        parameters=[_query("id", {"type": "string"}, "The request's id (its X-Request-Id).", required=True)],
    ),
    ("GET", "/v1/generations"): _operation(
        "listGenerations",
        "Ledger records, newest first, each with its attempts.",
        "Usage",
        {"200": _json(_ref("SirayaGenerationList"))},
        parameters=[
            *_FILTERS,
            _query("limit", {"type": "integer", "minimum": 1, "maximum": 500}, "Records per page (50)."),
            _query("cursor", {"type": "string"}, "The previous page's next_cursor."),
        ],
    ),
    ("GET", "/v1/usage"): _operation(
        "getUsage",
        "Requests, tokens, cost, errors and latency, grouped and bucketed.",
        "Usage",
        {"200": _json(_ref("SirayaUsage"))},
        parameters=[
            *_FILTERS,
            _query(
                "group_by", {"type": "string", "enum": ["key", "model", "provider"]}, "One row per group."
            ),
            _query("bucket", {"type": "string", "enum": ["minute", "hour", "day"]}, "One row per bucket."),
        ],
    ),
    ("GET", "/v1/providers"): _operation(
        "listProviders",
        "Every deployment: breaker state, latency, throughput and error rate.",
        "Usage",
        {"200": _json(_ref("SirayaDeploymentList"))},
    ),
    ("GET", "/v1/audit"): _operation(
        "listAuditEvents",
        "Key administration as it happened (admin key only).",
        "Usage",
        {"200": _json(_ref("SirayaAuditEventList"))},
        parameters=[
            _query("limit", {"type": "integer", "minimum": 0, "maximum": 2**31 - 1}, "Events per page."),
            _query("before_id", {"type": "integer", "minimum": 0, "maximum": 2**63 - 1}, "Events before it."),
        ],
    ),
    ("POST", "/v1/messages"): _operation(
        "createMessage",
        "Anthropic's Messages API: a message, or with `stream: true` Anthropic's event stream.",
        "Messages",
        {
            "200": {
                "description": "OK",
                "content": {
                    "application/json": {"schema": _ref("AnthropicMessage")},
                    "text/event-stream": {"schema": _ref("AnthropicMessageStreamEvent")},
                },
            }
        },
        request_body=_body(_ref("AnthropicCreateMessageRequest")),
    ),
    ("POST", "/v1/messages/count_tokens"): _operation(
        "countMessageTokens",
        "An estimate of the input tokens a Messages request would use.",
        "Messages",
        {"200": _json(_ref("AnthropicTokenCount"))},
        request_body=_body(_ref("AnthropicCountTokensRequest")),
    ),
    ("POST", "/v1/videos/generations"): _operation(
        "createVideoGeneration",
        "The same as POST /v1/videos.",
        "Videos",
        {"200": _json(_ref("VideoResource"))},
        request_body={
            "required": True,
            "content": {
                "application/json": {"schema": _ref("CreateVideoJsonBody")},
                "multipart/form-data": {"schema": _ref("CreateVideoMultipartBody")},
            },
        },
    ),
    ("GET", "/health/live"): _operation(
        "live", "Whether the process is up.", "Operations", {"200": _json(_ref("SirayaHealth"))}
    ),
    ("GET", "/health/ready"): _operation(
        "ready",
        "Whether the gateway takes requests.",
        "Operations",
        {"200": _json(_ref("SirayaHealth")), "503": _json(_ref("SirayaHealth"), "Not ready")},
    ),
    ("GET", "/metrics"): _operation(
        "metrics",
        "Prometheus metrics.",
        "Operations",
        {"200": {"description": "OK", "content": {"text/plain": {"schema": {"type": "string"}}}}},
    ),
    ("GET", "/openapi.json"): _operation(
        "openapi", "This document.", "Operations", {"200": _json({"type": "object"})}
    ),
}
