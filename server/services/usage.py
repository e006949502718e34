"""UsageService: the ledger, usage aggregates, deployment health and the audit log, read back.

Scoping is decided here, once, for every client (REST, the console, the CLI over gRPC): the admin
key reads every key's records; any other key is authenticated as a user key and reads only its own
(a filter naming another key is refused, not silently narrowed, so a script learns its mistake).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hmac
import math
import time

import grpc

from server.accounts.accounting import AccountMetering
from server.accounts.key_views import generation
from server.accounts.keys import KeyRecord
from server.accounts.ledger_queries import (
    MAX_BUCKETS,
    MAX_PAGE,
    Cursor,
    GenerationFilter,
    UsageQuery,
    valid_status,
)
from server.accounts.money import MAX_USD, micros_to_usd, usd_to_micros
from server.errors import AuthenticationFailed, InvalidRequest, PermissionDenied
from server.gateway import Gateway
from server.model_access import may_use
from server.services.base import call_context, unary_rpc
from siraya.router.v1 import admin_pb2, admin_pb2_grpc

__all__ = ["UsageServicer", "is_admin"]

DEFAULT_PAGE = 50
DEFAULT_AUDIT_PAGE = 100
DEFAULT_USAGE_SECONDS = 24 * 3600.0
_GROUPS = {
    admin_pb2.USAGE_GROUP_UNSPECIFIED: None,
    admin_pb2.USAGE_GROUP_KEY: "key",
    admin_pb2.USAGE_GROUP_MODEL: "model",
    admin_pb2.USAGE_GROUP_PROVIDER: "provider",
}
_BUCKETS = {
    admin_pb2.USAGE_BUCKET_UNSPECIFIED: None,
    admin_pb2.USAGE_BUCKET_MINUTE: 60,
    admin_pb2.USAGE_BUCKET_HOUR: 3600,
    admin_pb2.USAGE_BUCKET_DAY: 86400,
}


def is_admin(authorization: str | None, admin: bytes | None) -> bool:
    """Whether the Authorization value is the admin key's Bearer token (constant time). A value that
    is not ASCII (a header's odd bytes arrive surrogate-escaped, which would not encode) is not."""
    if not admin or not authorization or not authorization.isascii():
        return False
    return hmac.compare_digest(authorization.encode(), admin)


def admin_token(admin_key: str | None) -> bytes | None:
    return None if not admin_key else f"Bearer {admin_key}".encode()


def _metering(gateway: Gateway) -> AccountMetering:
    if not isinstance(gateway.metering, AccountMetering):
        raise PermissionDenied("This gateway runs without accounts: it keeps no usage ledger.")
    return gateway.metering


def _limit(value: int, default: int) -> int:
    if value < 0 or value > MAX_PAGE:
        raise InvalidRequest(
            f"'limit' must be between 1 and {MAX_PAGE}.", param="limit", code="invalid_value"
        )
    return value or default


def ledger_filter(spec: admin_pb2.GenerationFilter, key: KeyRecord | None) -> GenerationFilter:
    """The store's filter from the request's, scoped to `key` (None: the admin, every key)."""
    key_id = spec.key_id if spec.HasField("key_id") else None
    if key is not None:
        if key_id is not None and key_id != key.id:
            raise PermissionDenied(
                "A key can read only its own usage; use the admin key to read another key's.",
                param="key",
                code="key_scope",
            )
        key_id = key.id
    status = spec.status if spec.HasField("status") else None
    if status is not None and not valid_status(status):
        raise InvalidRequest(
            "'status' must be success, error, cancelled, a class such as 5xx, or an HTTP status;"
            f" got '{status}'.",
            param="status",
            code="invalid_value",
        )
    since = _finite(spec, "since")
    until = _finite(spec, "until")
    if since is not None and until is not None and since >= until:
        raise InvalidRequest("'since' must be before 'until'.", param="since", code="invalid_value")
    return GenerationFilter(
        key_id=key_id,
        model=spec.model if spec.HasField("model") else None,
        provider=spec.provider if spec.HasField("provider") else None,
        status=status,
        since=since,
        until=until,
        min_cost_micros=_cost_micros(spec, "min_cost"),
        max_cost_micros=_cost_micros(spec, "max_cost"),
    )


def _finite(spec: admin_pb2.GenerationFilter, name: str) -> float | None:
    """A time bound of the filter, refused unless it is a finite number (a gRPC double can be NaN)."""
    if not spec.HasField(name):  # type: ignore[arg-type]
        return None
    value: float = getattr(spec, name)
    if not math.isfinite(value):
        raise InvalidRequest(f"'{name}' must be a finite unix time.", param=name, code="invalid_value")
    return value


def _cost_micros(spec: admin_pb2.GenerationFilter, name: str) -> int | None:
    """A cost bound of the filter in micro-dollars, refused unless 0 <= it <= what a store can hold."""
    if not spec.HasField(name):  # type: ignore[arg-type]
        return None
    value: float = getattr(spec, name)
    if not 0 <= value <= MAX_USD:  # also refuses NaN
        raise InvalidRequest(
            f"'{name}' must be a number of US dollars from 0 to {MAX_USD}.", param=name, code="invalid_value"
        )
    return usd_to_micros(value)


class UsageServicer(admin_pb2_grpc.UsageServiceServicer):
    def __init__(self, gateway: Gateway, admin_key: str | None) -> None:
        self._gateway = gateway
        self._admin = admin_token(admin_key)

    async def _caller(self, context: grpc.aio.ServicerContext) -> KeyRecord | None:
        """None for the admin key; the user key otherwise (or AuthenticationFailed)."""
        authorization, ctx = call_context(context)
        if is_admin(authorization, self._admin):
            return None
        return await self._gateway.authenticate(authorization, ctx)

    async def _flushed(self) -> AccountMetering:
        """The metering, with this process's pending ledger records written: a read sees them."""
        metering = _metering(self._gateway)
        with contextlib.suppress(Exception):  # a store that is down fails the query itself, clearly
            await metering.ledger.flush()
        return metering

    @unary_rpc
    async def ListGenerations(
        self, request: admin_pb2.ListGenerationsRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.ListGenerationsResponse:
        key = await self._caller(context)
        where = ledger_filter(request.filter, key)
        limit = _limit(request.limit, DEFAULT_PAGE)
        cursor = None
        if request.cursor:
            cursor = Cursor.decode(request.cursor)
            if cursor is None:
                raise InvalidRequest(
                    "'cursor' is not a cursor this API returned.", param="cursor", code="invalid_value"
                )
        page = await (await self._flushed()).accounts.list_generations(where, limit, cursor)
        return admin_pb2.ListGenerationsResponse(
            generations=[generation(record) for record in page.records],
            has_more=page.next_cursor is not None,
            next_cursor="" if page.next_cursor is None else page.next_cursor.encode(),
        )

    @unary_rpc
    async def GetUsage(
        self, request: admin_pb2.GetUsageRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.GetUsageResponse:
        key = await self._caller(context)
        where = ledger_filter(request.filter, key)
        until = where.until if where.until is not None else time.time()
        since = where.since if where.since is not None else until - DEFAULT_USAGE_SECONDS
        if since >= until:
            raise InvalidRequest("'since' must be before 'until'.", param="since", code="invalid_value")
        bucket = _BUCKETS.get(request.bucket)
        group = _GROUPS.get(request.group_by)
        if request.bucket not in _BUCKETS or request.group_by not in _GROUPS:
            raise InvalidRequest("Unknown 'bucket' or 'group_by'.", code="invalid_value")
        if bucket is not None and (until - since) / bucket > MAX_BUCKETS:
            raise InvalidRequest(
                f"That range holds more than {MAX_BUCKETS} buckets; use a wider bucket or a shorter range.",
                param="bucket",
                code="invalid_value",
            )
        scoped = dataclasses.replace(where, since=since, until=until)
        rows = await (await self._flushed()).accounts.usage(UsageQuery(scoped, group, bucket))
        reply = admin_pb2.GetUsageResponse(since=since, until=until)
        for row in rows:
            out = reply.rows.add(
                requests=row.requests,
                prompt_tokens=row.prompt_tokens,
                completion_tokens=row.completion_tokens,
                cost=micros_to_usd(row.cost_micros),
                upstream_cost=micros_to_usd(row.upstream_cost_micros),
                errors=row.errors,
                p50_latency_ms=row.p50_latency_ms,
                p95_latency_ms=row.p95_latency_ms,
            )
            if row.bucket_start is not None:
                out.bucket_start = row.bucket_start
            if row.group is not None:
                out.group = row.group
        return reply

    @unary_rpc
    async def ListProviders(
        self, request: admin_pb2.ListProvidersRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.ListProvidersResponse:
        key = await self._caller(context)
        dispatcher = self._gateway.dispatcher
        stats = dispatcher.stats
        reply = admin_pb2.ListProvidersResponse()
        for entry in self._gateway.catalogue.entries():
            if key is not None and not may_use(key, entry):
                continue
            for deployment in entry.deployments:
                name = deployment.key
                attempts, failures = stats.counts(name)
                status = reply.deployments.add(
                    model=entry.id,
                    provider=deployment.provider,
                    upstream_model=deployment.upstream_model,
                    deployment=name,
                    breaker_state=await dispatcher.breakers.state(name, entry.resilience.breaker),
                    attempts=attempts,
                    failures=failures,
                )
                latency, throughput, errors = (
                    stats.latency(name),
                    stats.throughput(name),
                    stats.error_rate(name),
                )
                if latency is not None:
                    status.latency_ms = latency * 1000
                if throughput is not None:
                    status.throughput = throughput
                if errors is not None:
                    status.error_rate = errors
        return reply

    @unary_rpc
    async def ListAuditEvents(
        self, request: admin_pb2.ListAuditEventsRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.ListAuditEventsResponse:
        authorization, _ = call_context(context)
        if self._admin is None:
            raise PermissionDenied("The audit log needs the admin key: set server.admin_key to enable it.")
        if not is_admin(authorization, self._admin):
            raise AuthenticationFailed("The audit log needs the admin key as a Bearer token.")
        limit = _limit(request.limit, DEFAULT_AUDIT_PAGE)
        before = request.before_id if request.HasField("before_id") else None
        events = await _metering(self._gateway).accounts.list_audit(limit, before)
        reply = admin_pb2.ListAuditEventsResponse()
        for event in events:
            out = reply.events.add(
                id=event.id or 0,
                at=event.at,
                actor=event.actor,
                action=event.action,
                detail_json=event.detail,
            )
            for name in ("target", "source", "via"):
                value = getattr(event, name)
                if value is not None:
                    setattr(out, name, value)
        return reply
