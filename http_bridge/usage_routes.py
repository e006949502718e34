"""REST for the ledger read back (UsageService): what the console draws and scripts can call too.

GET /v1/generations   ledger records, newest first, each with its attempts. Query: key, model,
                      provider, status (success|error|cancelled|4xx|5xx|429...), since, until
                      (unix seconds or a duration back from now: 15m, 24h, 7d), min_cost, max_cost
                      (USD), limit (1-500, default 50), cursor (the previous page's next_cursor)
GET /v1/usage         requests, tokens, cost (what keys were charged), upstream_cost (what the
                      providers were paid, every attempt included), errors, p50/p95 latency: the
                      same filters, plus group_by (key|model|provider) and bucket (minute|hour|day);
                      the last 24 hours unless `since` says otherwise
GET /v1/providers     every deployment: breaker state, latency, throughput and error rate
GET /v1/audit         key administration as it happened (admin key only); limit, before_id

The admin key reads every key's records; a user key only its own (naming another key is a 403).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from typing import Any

import orjson
from aiohttp import web

from http_bridge.body_fields import reject_unknown_fields
from server.accounts.ledger_queries import parse_time
from server.errors import InvalidRequest
from siraya.router.codec.generations import generation_json
from siraya.router.v1 import admin_pb2

__all__ = [
    "add_usage_routes",
    "audit_event_json",
    "deployment_json",
    "generations_request",
    "usage_request",
    "usage_row_json",
]

_JSON = "application/json"
FILTER_FIELDS = ("key", "model", "provider", "status", "since", "until", "min_cost", "max_cost")
LIST_FIELDS = (*FILTER_FIELDS, "limit", "cursor")
USAGE_FIELDS = (*FILTER_FIELDS, "group_by", "bucket")
GROUPS = {
    "key": admin_pb2.USAGE_GROUP_KEY,
    "model": admin_pb2.USAGE_GROUP_MODEL,
    "provider": admin_pb2.USAGE_GROUP_PROVIDER,
}
BUCKETS = {
    "minute": admin_pb2.USAGE_BUCKET_MINUTE,
    "hour": admin_pb2.USAGE_BUCKET_HOUR,
    "day": admin_pb2.USAGE_BUCKET_DAY,
}


def _number(query: Mapping[str, str], name: str) -> float | None:
    text = query.get(name)
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        raise InvalidRequest(f"'{name}' must be a number.", param=name, code="invalid_type") from None
    if not 0 <= value < math.inf:  # also NaN
        raise InvalidRequest(f"'{name}' must be a finite number >= 0.", param=name, code="invalid_value")
    return value


def _whole_number(query: Mapping[str, str], name: str, bits: int) -> int | None:
    """A query parameter holding a whole number (ASCII digits) that fits an unsigned field of `bits`."""
    text = query.get(name)
    if text is None:
        return None
    if not (text.isascii() and text.isdigit()):
        raise InvalidRequest(f"'{name}' must be a whole number.", param=name, code="invalid_type")
    value = int(text)
    if value >= 2 ** (bits - 1):
        raise InvalidRequest(f"'{name}' is out of range.", param=name, code="invalid_value")
    return value


def _time(query: Mapping[str, str], name: str, now: float) -> float | None:
    text = query.get(name)
    if text is None:
        return None
    value = parse_time(text, now)
    if value is None:
        raise InvalidRequest(
            f"'{name}' must be unix seconds or a duration such as 15m, 24h or 7d.",
            param=name,
            code="invalid_value",
        )
    return value


def generation_filter(query: Mapping[str, str], now: float) -> admin_pb2.GenerationFilter:
    spec = admin_pb2.GenerationFilter()
    for param, field in (
        ("key", "key_id"),
        ("model", "model"),
        ("provider", "provider"),
        ("status", "status"),
    ):
        value = query.get(param)
        if value:
            setattr(spec, field, value)
    for name in ("since", "until"):
        moment = _time(query, name, now)
        if moment is not None:
            setattr(spec, name, moment)
    for name in ("min_cost", "max_cost"):
        cost = _number(query, name)
        if cost is not None:
            setattr(spec, name, cost)
    return spec


def generations_request(
    query: Mapping[str, str], now: float | None = None
) -> admin_pb2.ListGenerationsRequest:
    """The RPC request of GET /v1/generations' query string (unknown parameters are refused)."""
    reject_unknown_fields(query, LIST_FIELDS, "the query of /v1/generations")
    return admin_pb2.ListGenerationsRequest(
        filter=generation_filter(query, time.time() if now is None else now),
        limit=_whole_number(query, "limit", 32) or 0,
        cursor=query.get("cursor", ""),
    )


def usage_request(query: Mapping[str, str], now: float | None = None) -> admin_pb2.GetUsageRequest:
    reject_unknown_fields(query, USAGE_FIELDS, "the query of /v1/usage")
    group = query.get("group_by")
    bucket = query.get("bucket")
    if group is not None and group not in GROUPS:
        raise InvalidRequest(
            f"'group_by' must be one of {', '.join(GROUPS)}.", param="group_by", code="invalid_value"
        )
    if bucket is not None and bucket not in BUCKETS:
        raise InvalidRequest(
            f"'bucket' must be one of {', '.join(BUCKETS)}.", param="bucket", code="invalid_value"
        )
    return admin_pb2.GetUsageRequest(
        filter=generation_filter(query, time.time() if now is None else now),
        group_by=GROUPS[group] if group else admin_pb2.USAGE_GROUP_UNSPECIFIED,
        bucket=BUCKETS[bucket] if bucket else admin_pb2.USAGE_BUCKET_UNSPECIFIED,
    )


def usage_row_json(row: admin_pb2.UsageRow) -> dict[str, Any]:
    return {
        "bucket_start": row.bucket_start if row.HasField("bucket_start") else None,
        "group": row.group if row.HasField("group") else None,
        "requests": row.requests,
        "prompt_tokens": row.prompt_tokens,
        "completion_tokens": row.completion_tokens,
        "total_tokens": row.prompt_tokens + row.completion_tokens,
        "cost": row.cost,
        "upstream_cost": row.upstream_cost,
        "errors": row.errors,
        "p50_latency_ms": row.p50_latency_ms,
        "p95_latency_ms": row.p95_latency_ms,
    }


def deployment_json(status: admin_pb2.DeploymentStatus) -> dict[str, Any]:
    return {
        "model": status.model,
        "provider": status.provider,
        "upstream_model": status.upstream_model,
        "deployment": status.deployment,
        "breaker_state": status.breaker_state,
        "latency_ms": status.latency_ms if status.HasField("latency_ms") else None,
        "throughput": status.throughput if status.HasField("throughput") else None,
        "error_rate": status.error_rate if status.HasField("error_rate") else None,
        "attempts": status.attempts,
        "failures": status.failures,
    }


def audit_event_json(event: admin_pb2.AuditEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "at": event.at,
        "actor": event.actor,
        "action": event.action,
        "target": event.target if event.HasField("target") else None,
        "source": event.source if event.HasField("source") else None,
        "via": event.via if event.HasField("via") else None,
        "detail": orjson.loads(event.detail_json or "{}"),
    }


def add_usage_routes(
    app: web.Application,
    stubs_key: Any,
    call_metadata: Callable[[web.Request], list[tuple[str, str]]],
    request_id_of: Callable[[web.Request], str],
) -> None:
    """Register the routes; the bridge passes its own helpers so both share one request path."""

    def respond(request: web.Request, body: dict[str, Any]) -> web.Response:
        return web.Response(
            body=orjson.dumps(body), content_type=_JSON, headers={"X-Request-Id": request_id_of(request)}
        )

    async def list_generations(request: web.Request) -> web.StreamResponse:
        call = generations_request(request.query)
        reply = await request.app[stubs_key].usage.ListGenerations(call, metadata=call_metadata(request))
        return respond(
            request,
            {
                "object": "list",
                "data": [generation_json(generation) for generation in reply.generations],
                "has_more": reply.has_more,
                "next_cursor": reply.next_cursor or None,
            },
        )

    async def usage(request: web.Request) -> web.StreamResponse:
        call = usage_request(request.query)
        reply = await request.app[stubs_key].usage.GetUsage(call, metadata=call_metadata(request))
        return respond(
            request,
            {
                "object": "list",
                "since": reply.since,
                "until": reply.until,
                "group_by": request.query.get("group_by"),
                "bucket": request.query.get("bucket"),
                "data": [usage_row_json(row) for row in reply.rows],
            },
        )

    async def providers(request: web.Request) -> web.StreamResponse:
        reject_unknown_fields(request.query, (), "the query of /v1/providers")
        reply = await request.app[stubs_key].usage.ListProviders(
            admin_pb2.ListProvidersRequest(), metadata=call_metadata(request)
        )
        return respond(request, {"object": "list", "data": [deployment_json(d) for d in reply.deployments]})

    async def audit(request: web.Request) -> web.StreamResponse:
        query = request.query
        reject_unknown_fields(query, ("limit", "before_id"), "the query of /v1/audit")
        call = admin_pb2.ListAuditEventsRequest()
        for name, bits in (("limit", 32), ("before_id", 64)):
            value = _whole_number(query, name, bits)
            if value is not None:
                setattr(call, name, value)
        reply = await request.app[stubs_key].usage.ListAuditEvents(call, metadata=call_metadata(request))
        return respond(request, {"object": "list", "data": [audit_event_json(e) for e in reply.events]})

    app.router.add_get("/v1/generations", list_generations)
    app.router.add_get("/v1/usage", usage)
    app.router.add_get("/v1/providers", providers)
    app.router.add_get("/v1/audit", audit)
