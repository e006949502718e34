"""A key's own view and the ledger (`/v1/key`, `/v1/generation(s)`, `/v1/usage`, `/v1/providers`,
`/v1/audit`): their operations and schemas, written from http_bridge/accounts_routes.py and
usage_routes.py.
"""

from __future__ import annotations

from http_bridge.openapi.owned_keys import KEY_PROPERTIES, KEY_REQUIRED
from http_bridge.openapi.owned_parts import (
    JsonObject,
    json_reply,
    list_of,
    nullable,
    operation,
    query,
    ref,
)

__all__ = ["LEDGER_OPERATIONS", "LEDGER_SCHEMAS"]

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
        "error_code": nullable({"type": "string"}),
        "http_status": nullable({"type": "integer"}),
    },
}

_GENERATION_PROPERTIES: JsonObject = {
    "id": {"type": "string"},
    "key_id": {"type": "string"},
    "created_at": {"type": "number"},
    "model": {"type": "string"},
    "model_served": nullable({"type": "string"}),
    "provider_name": nullable({"type": "string"}),
    "status": {"type": "string"},
    "http_status": {"type": "integer"},
    "error_code": nullable({"type": "string"}),
    "tokens_prompt": {"type": "integer"},
    "tokens_completion": {"type": "integer"},
    "native_tokens_cached": {"type": "integer"},
    "native_tokens_cache_write": {"type": "integer"},
    "native_tokens_reasoning": {"type": "integer"},
    "total_cost": {"type": "number"},
    "latency": {"type": "number"},
    "ttft": nullable({"type": "number"}),
    "streamed": {"type": "boolean"},
    "cancelled": {"type": "boolean"},
    "cache_hit": {"type": "boolean"},
    "cache_saved": {"type": "number"},
    "attempts": {"type": "array", "items": ref("SirayaGenerationAttempt")},
}

LEDGER_SCHEMAS: dict[str, JsonObject] = {
    "SirayaCurrentKey": {
        "type": "object",
        "required": ["data"],
        "properties": {
            "data": {
                "type": "object",
                "required": [*KEY_REQUIRED, "label", "limit", "usage", "reserved", "limit_remaining"],
                "properties": {
                    **KEY_PROPERTIES,
                    "label": {"type": "string"},
                    "limit": nullable({"type": "number"}),
                    "usage": {"type": "number"},
                    "reserved": {"type": "number"},
                    "limit_remaining": nullable({"type": "number"}),
                    "rate_limit": {
                        "type": "object",
                        "properties": {
                            "requests_per_minute": nullable({"type": "integer"}),
                            "tokens_per_minute": nullable({"type": "integer"}),
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
            "data": {"type": "array", "items": ref("SirayaGeneration")},
            "has_more": {"type": "boolean"},
            "next_cursor": nullable({"type": "string"}),
        },
    },
    "SirayaUsage": {
        "type": "object",
        "required": ["object", "since", "until", "group_by", "bucket", "data"],
        "properties": {
            "object": {"type": "string", "enum": ["list"]},
            "since": {"type": "number"},
            "until": {"type": "number"},
            "group_by": nullable({"type": "string"}),
            "bucket": nullable({"type": "string"}),
            "data": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["requests", "prompt_tokens", "completion_tokens", "total_tokens", "cost"],
                    "properties": {
                        "bucket_start": nullable({"type": "number"}),
                        "group": nullable({"type": "string"}),
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
    "SirayaDeploymentList": list_of(
        {
            "type": "object",
            "required": ["model", "provider", "deployment", "breaker_state"],
            "properties": {
                "model": {"type": "string"},
                "provider": {"type": "string"},
                "upstream_model": {"type": "string"},
                "deployment": {"type": "string"},
                "breaker_state": {"type": "string"},
                "latency_ms": nullable({"type": "number"}),
                "throughput": nullable({"type": "number"}),
                "error_rate": nullable({"type": "number"}),
                "attempts": {"type": "integer"},
                "failures": {"type": "integer"},
            },
        }
    ),
    "SirayaAuditEventList": list_of(
        {
            "type": "object",
            "required": ["id", "at", "actor", "action", "target", "source", "via", "detail"],
            "properties": {
                "id": {"type": "integer"},
                "at": {"type": "number"},
                "actor": {"type": "string"},
                "action": {"type": "string"},
                "target": nullable({"type": "string"}),
                "source": nullable({"type": "string"}),
                "via": nullable({"type": "string"}),
                "detail": {"type": "object"},
            },
        }
    ),
}

_FILTERS = [
    query("key", {"type": "string"}, "Only this key's records (the admin key may name any key)."),
    query("model", {"type": "string"}, "Only this model's records."),
    query("provider", {"type": "string"}, "Only this provider's records."),
    query("status", {"type": "string"}, "success, error, cancelled, cache_hit, 4xx, 5xx, or a status."),
    query("since", {"type": "string"}, "Unix seconds, or a duration back from now: 15m, 24h, 7d."),
    query("until", {"type": "string"}, "Unix seconds, or a duration back from now."),
    query("min_cost", {"type": "number", "minimum": 0}, "US dollars."),
    query("max_cost", {"type": "number", "minimum": 0}, "US dollars."),
]

LEDGER_OPERATIONS: dict[tuple[str, str], JsonObject] = {
    ("GET", "/v1/key"): operation(
        "getCurrentKey",
        "The calling key: its limits, usage and remaining credit.",
        "Account",
        {"200": json_reply(ref("SirayaCurrentKey"))},
    ),
    ("GET", "/v1/generation"): operation(
        "getGeneration",
        "The ledger record of one of the calling key's requests.",
        "Account",
        {
            "200": json_reply(
                {"type": "object", "required": ["data"], "properties": {"data": ref("SirayaGeneration")}}
            )
        },
        parameters=[query("id", {"type": "string"}, "The request's id (its X-Request-Id).", required=True)],
    ),
    ("GET", "/v1/generations"): operation(
        "listGenerations",
        "Ledger records, newest first, each with its attempts.",
        "Usage",
        {"200": json_reply(ref("SirayaGenerationList"))},
        parameters=[
            *_FILTERS,
            query("limit", {"type": "integer", "minimum": 1, "maximum": 500}, "Records per page (50)."),
            query("cursor", {"type": "string"}, "The previous page's next_cursor."),
        ],
    ),
    ("GET", "/v1/usage"): operation(
        "getUsage",
        "Requests, tokens, cost, errors and latency, grouped and bucketed.",
        "Usage",
        {"200": json_reply(ref("SirayaUsage"))},
        parameters=[
            *_FILTERS,
            query("group_by", {"type": "string", "enum": ["key", "model", "provider"]}, "One row per group."),
            query("bucket", {"type": "string", "enum": ["minute", "hour", "day"]}, "One row per bucket."),
        ],
    ),
    ("GET", "/v1/providers"): operation(
        "listProviders",
        "Every deployment: breaker state, latency, throughput and error rate.",
        "Usage",
        {"200": json_reply(ref("SirayaDeploymentList"))},
    ),
    ("GET", "/v1/audit"): operation(
        "listAuditEvents",
        "Key administration as it happened (admin key only).",
        "Usage",
        {"200": json_reply(ref("SirayaAuditEventList"))},
        parameters=[
            query("limit", {"type": "integer", "minimum": 0, "maximum": 2**31 - 1}, "Events per page."),
            query("before_id", {"type": "integer", "minimum": 0, "maximum": 2**63 - 1}, "Events before it."),
        ],
    ),
}
