"""KeysService (key administration, guarded by the admin key) and AccountService (a key's own view).

The admin guard, the audit log and the budget checks here are shared with TeamsService (teams.py).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import grpc
import orjson

from server.accounts.accounting import AccountMetering
from server.accounts.budget_status import BudgetStatus, key_budget_statuses, team_spend
from server.accounts.budgets import Budget, BudgetPeriod, BudgetReset
from server.accounts.key_views import PERIOD_NAMES, RESET_NAMES, generation, key_info, team_info
from server.accounts.keys import CACHE_NAMESPACE, CHANGEABLE_KEY_FIELDS, KeyChanges, KeyRecord, NewKey
from server.accounts.money import MAX_USD, micros_to_usd, usd_to_micros
from server.accounts.store import AuditEvent
from server.errors import AuthenticationFailed, GatewayError, InvalidRequest, NotFound, PermissionDenied
from server.gateway import Gateway
from server.observability.ids import BRIDGE_TOKEN
from server.services.base import BRIDGE_TOKEN_METADATA, call_context, unary_rpc
from server.services.usage import admin_token, is_admin
from siraya.router.v1 import admin_pb2, admin_pb2_grpc

logger = logging.getLogger("siraya.audit")

# Set by the bridge (trusted only beside its token): the client's address and which door it used.
CLIENT_ADDRESS_METADATA = "x-siraya-client-address"
VIA_METADATA = "x-siraya-via"

# Every KeySpec field an UpdateKey mask may name.
_UPDATABLE = (*CHANGEABLE_KEY_FIELDS, "credit_limit")
_LIMITS = ("credit_limit", "rpm_limit", "tpm_limit")
_INT64_MAX = 2**63 - 1


def budget_of(spec: Any, field: str = "budget") -> Budget | None:
    """The budget a spec sets (KeySpec or TeamSpec), checked; None when it sets none."""
    if not spec.HasField(field):
        return None
    found = getattr(spec, field)
    if not 0 <= found.limit <= MAX_USD:  # NaN fails both comparisons
        raise InvalidRequest(
            f"'{field}.limit' must be a number from 0 to {MAX_USD:.0f} (USD per period).",
            param=f"{field}.limit",
            code="invalid_value",
        )
    period = PERIOD_NAMES.get(found.period, BudgetPeriod.MONTH.value)
    reset = RESET_NAMES.get(found.reset, BudgetReset.CALENDAR.value)
    return Budget(usd_to_micros(found.limit), BudgetPeriod(period), BudgetReset(reset))


async def check_team(gateway: Gateway, team_id: str) -> None:
    """A 400 naming `team_id` when no team has it."""
    if await metering_of(gateway).teams.get(team_id) is None:
        raise InvalidRequest(
            f"No team found with id '{team_id}': create it first (POST /v1/teams).",
            param="team_id",
            code="team_not_found",
        )


async def key_statuses(gateway: Gateway, records: list[KeyRecord]) -> dict[str, BudgetStatus]:
    metering = gateway.metering
    if not isinstance(metering, AccountMetering):
        return {}
    return await key_budget_statuses(metering.accounts, records, metering.clock())


async def key_info_now(gateway: Gateway, record: KeyRecord) -> admin_pb2.KeyInfo:
    """A key as the admin API shows it, with its budget's window now."""
    return key_info(record, (await key_statuses(gateway, [record])).get(record.id))


def metering_of(gateway: Gateway) -> AccountMetering:
    if not isinstance(gateway.metering, AccountMetering):
        raise PermissionDenied("This gateway runs without accounts.")
    return gateway.metering


def _key_not_found(key_id: str) -> NotFound:
    return NotFound(f"No key found with id '{key_id}'.", param="id", code="key_not_found")


def _limit_message(field: str) -> str:
    highest = MAX_USD if field == "credit_limit" else _INT64_MAX
    return f"'{field}' must be a number from 0 to {highest}."


def _check_spec(spec: admin_pb2.KeySpec, fields: tuple[str, ...] | set[str]) -> None:
    """The checks every key setting passes, on create and on update, for the fields given."""
    if "name" in fields and not spec.name:
        raise InvalidRequest("A key needs a name.", param="name", code="missing_required_parameter")
    for field in _LIMITS:
        # The range test also refuses NaN and the infinities, which a gRPC double can hold.
        if field in fields and spec.HasField(field):
            value = getattr(spec, field)
            if not 0 <= value <= (MAX_USD if field == "credit_limit" else _INT64_MAX):
                raise InvalidRequest(_limit_message(field), param=field, code="invalid_value")
    if (
        "cache_namespace" in fields
        and spec.HasField("cache_namespace")
        and not CACHE_NAMESPACE.fullmatch(spec.cache_namespace)
    ):
        raise InvalidRequest(
            "'cache_namespace' must be 1 to 128 visible ASCII characters (no spaces); leave it unset"
            " for the key's own namespace.",
            param="cache_namespace",
            code="invalid_value",
        )
    if "expires_at" in fields and spec.HasField("expires_at") and spec.expires_at <= 0:
        raise InvalidRequest(
            "'expires_at' must be a unix time in seconds.", param="expires_at", code="invalid_value"
        )


def _catalogue_models(gateway: Gateway, models: list[str]) -> tuple[str, ...]:
    """`models` as catalogue ids (an alias becomes its model's id), or a 400 naming the unknown ones.

    A key allowed a model that does not exist would fail every request for it with a 403 that
    names no typo, so the typo is refused here instead.
    """
    ids: list[str] = []
    unknown: list[str] = []
    for model in models:
        try:
            entry = gateway.catalogue.get(model)
        except GatewayError:
            unknown.append(model)
            continue
        if entry.id not in ids:
            ids.append(entry.id)
    if unknown:
        known = ", ".join(entry.id for entry in gateway.catalogue.entries())
        names = ", ".join(f"'{model}'" for model in unknown)
        raise InvalidRequest(
            f"'allowed_models' names {'a model' if len(unknown) == 1 else 'models'} this gateway does not"
            f" serve: {names}. Models served: {known}.",
            param="allowed_models",
            code="model_not_found",
        )
    return tuple(ids)


def check_admin(admin: bytes | None, context: grpc.aio.ServicerContext) -> None:
    """Refuse a call without the admin key (or when administration is off)."""
    authorization, _ = call_context(context)
    refuse_unless_admin(admin, authorization)


def refuse_unless_admin(admin: bytes | None, authorization: str | None) -> None:
    if admin is None:
        raise PermissionDenied("Key administration is disabled: set server.admin_key to enable it.")
    if not is_admin(authorization, admin):
        raise AuthenticationFailed("Key administration needs the admin key as a Bearer token.")


async def audit(
    gateway: Gateway, context: grpc.aio.ServicerContext, action: str, target: str, detail: dict[str, Any]
) -> None:
    """Write who did what to which key or team, when and from where. A failed write is logged, not
    raised: the action itself already happened."""
    metering = gateway.metering
    if not isinstance(metering, AccountMetering):
        return
    source, via = _origin(context)
    event = AuditEvent(time.time(), "admin", action, target, source, via, orjson.dumps(detail).decode())
    try:
        await metering.accounts.append_audit(event)
    except Exception:
        logger.exception("could not write the audit event of %s on %s", action, target)


def spec_detail(spec: Any, fields: tuple[str, ...] | set[str]) -> dict[str, Any]:
    """The settings an action set, for the audit log (a KeySpec's or a TeamSpec's)."""
    detail: dict[str, Any] = {}
    for field in sorted(fields):
        if field == "allowed_models":
            detail[field] = list(spec.allowed_models)
        elif field == "budget":
            budget = budget_of(spec)
            detail[field] = (
                None
                if budget is None
                else {
                    "limit": spec.budget.limit,
                    "period": budget.period.value,
                    "reset": budget.reset.value,
                }
            )
        elif field == "name" or spec.HasField(field):
            detail[field] = getattr(spec, field)
        else:
            detail[field] = None
    return detail


def _origin(context: grpc.aio.ServicerContext) -> tuple[str | None, str]:
    """(the client's address, "rest" | "console" | "grpc") of an admin call, for the audit log."""
    from_bridge = False
    address = via = None
    for key, value in context.invocation_metadata() or ():
        if key == BRIDGE_TOKEN_METADATA:
            from_bridge = value == BRIDGE_TOKEN
        elif key == CLIENT_ADDRESS_METADATA and isinstance(value, str):
            address = value
        elif key == VIA_METADATA and isinstance(value, str):
            via = value
    if from_bridge:
        return address, via if via in ("rest", "console") else "rest"
    peer = getattr(context, "peer", None)
    return (peer() if callable(peer) else None), "grpc"


class KeysServicer(admin_pb2_grpc.KeysServiceServicer):
    def __init__(self, gateway: Gateway, admin_key: str | None) -> None:
        self._gateway = gateway
        self._admin = admin_token(admin_key)

    def _check_admin(self, context: grpc.aio.ServicerContext) -> None:
        check_admin(self._admin, context)

    def check_admin(self, authorization: str | None) -> None:
        """Raise unless `authorization` (an Authorization header's value) is the admin key's. The
        bridge asks this too, so that nobody without the admin key hears about a body's errors."""
        refuse_unless_admin(self._admin, authorization)

    async def _audit(
        self, context: grpc.aio.ServicerContext, action: str, target: str, detail: dict[str, Any]
    ) -> None:
        await audit(self._gateway, context, action, target, detail)

    @unary_rpc
    async def CreateKey(
        self, request: admin_pb2.CreateKeyRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.CreateKeyResponse:
        self._check_admin(context)
        spec = request.spec
        _check_spec(spec, _UPDATABLE)
        budget = budget_of(spec)
        if spec.HasField("team_id"):
            await check_team(self._gateway, spec.team_id)
        record, secret = await self._gateway.keys.create(
            NewKey(
                name=spec.name,
                expires_at=spec.expires_at if spec.HasField("expires_at") else None,
                allowed_models=_catalogue_models(self._gateway, list(spec.allowed_models)),
                credit_limit=spec.credit_limit if spec.HasField("credit_limit") else None,
                rpm_limit=spec.rpm_limit if spec.HasField("rpm_limit") else None,
                tpm_limit=spec.tpm_limit if spec.HasField("tpm_limit") else None,
                cache_namespace=spec.cache_namespace if spec.HasField("cache_namespace") else None,
                team_id=spec.team_id if spec.HasField("team_id") else None,
                budget=budget,
            )
        )
        await self._audit(context, "key.create", record.id, spec_detail(spec, _UPDATABLE))
        return admin_pb2.CreateKeyResponse(key=await key_info_now(self._gateway, record), secret=secret)

    @unary_rpc
    async def ListKeys(
        self, request: admin_pb2.ListKeysRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.ListKeysResponse:
        self._check_admin(context)
        records = await self._gateway.keys.list()
        statuses = await key_statuses(self._gateway, records)
        return admin_pb2.ListKeysResponse(
            keys=[key_info(record, statuses.get(record.id)) for record in records]
        )

    @unary_rpc
    async def GetKey(
        self, request: admin_pb2.GetKeyRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.GetKeyResponse:
        self._check_admin(context)
        record = await self._gateway.keys.get(request.id)
        if record is None:
            raise _key_not_found(request.id)
        return admin_pb2.GetKeyResponse(key=await key_info_now(self._gateway, record))

    @unary_rpc
    async def RevokeKey(
        self, request: admin_pb2.RevokeKeyRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.RevokeKeyResponse:
        self._check_admin(context)
        record = await self._gateway.keys.revoke(request.id)
        if record is None:
            raise _key_not_found(request.id)
        await self._audit(context, "key.revoke", record.id, {})
        return admin_pb2.RevokeKeyResponse(key=key_info(record))

    @unary_rpc
    async def RotateKey(
        self, request: admin_pb2.RotateKeyRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.RotateKeyResponse:
        self._check_admin(context)
        rotated = await self._gateway.keys.rotate(request.id)
        if rotated is None:
            raise _key_not_found(request.id)
        await self._audit(context, "key.rotate", request.id, {})
        return admin_pb2.RotateKeyResponse(key=key_info(rotated[0]), secret=rotated[1])

    @unary_rpc
    async def SetCreditLimit(
        self, request: admin_pb2.SetCreditLimitRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.SetCreditLimitResponse:
        self._check_admin(context)
        if request.HasField("credit_limit") and not 0 <= request.credit_limit <= MAX_USD:
            raise InvalidRequest(_limit_message("credit_limit"), param="credit_limit", code="invalid_value")
        limit = usd_to_micros(request.credit_limit) if request.HasField("credit_limit") else None
        if await metering_of(self._gateway).accounts.set_credit_limit(request.id, limit) is None:
            raise _key_not_found(request.id)
        record = await self._gateway.keys.get(request.id)
        assert record is not None
        self._gateway.keys.forget()
        usd = request.credit_limit if request.HasField("credit_limit") else None
        await self._audit(context, "key.credit_limit", request.id, {"credit_limit": usd})
        return admin_pb2.SetCreditLimitResponse(key=key_info(record))

    @unary_rpc
    async def UpdateKey(
        self, request: admin_pb2.UpdateKeyRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.UpdateKeyResponse:
        self._check_admin(context)
        fields = set(request.update_mask.paths)
        unknown = sorted(fields - set(_UPDATABLE))
        if unknown:
            raise InvalidRequest(
                f"'update_mask' names {', '.join(repr(path) for path in unknown)}, which cannot be"
                f" changed; it may name: {', '.join(_UPDATABLE)}.",
                param="update_mask",
                code="unknown_parameter",
            )
        spec = request.key
        _check_spec(spec, fields)
        budget = budget_of(spec) if "budget" in fields else None
        if "team_id" in fields and spec.HasField("team_id"):
            await check_team(self._gateway, spec.team_id)
        changes = KeyChanges(
            frozenset(fields & set(CHANGEABLE_KEY_FIELDS)),
            name=spec.name,
            expires_at=spec.expires_at if spec.HasField("expires_at") else None,
            allowed_models=(
                _catalogue_models(self._gateway, list(spec.allowed_models))
                if "allowed_models" in fields
                else ()
            ),
            rpm_limit=spec.rpm_limit if spec.HasField("rpm_limit") else None,
            tpm_limit=spec.tpm_limit if spec.HasField("tpm_limit") else None,
            cache_namespace=spec.cache_namespace if spec.HasField("cache_namespace") else None,
            team_id=spec.team_id if spec.HasField("team_id") else None,
            budget=budget,
        )
        keys = self._gateway.keys
        if await keys.get(request.id) is None:
            raise _key_not_found(request.id)
        if "credit_limit" in fields:
            limit = usd_to_micros(spec.credit_limit) if spec.HasField("credit_limit") else None
            if await metering_of(self._gateway).accounts.set_credit_limit(request.id, limit) is None:
                raise _key_not_found(request.id)
        record = await keys.update(request.id, changes)
        if record is None:
            raise _key_not_found(request.id)
        await self._audit(context, "key.update", request.id, spec_detail(spec, fields))
        return admin_pb2.UpdateKeyResponse(key=await key_info_now(self._gateway, record))


class AccountServicer(admin_pb2_grpc.AccountServiceServicer):
    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway

    async def _key(self, context: grpc.aio.ServicerContext) -> KeyRecord:
        authorization, ctx = call_context(context)
        return await self._gateway.authenticate(authorization, ctx)

    @unary_rpc
    async def GetCurrentKey(
        self, request: admin_pb2.GetCurrentKeyRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.GetCurrentKeyResponse:
        key = await self._key(context)
        balance = await metering_of(self._gateway).accounts.balance(key.id)
        if balance is None:
            raise AuthenticationFailed("This API key no longer exists.")
        record = await self._gateway.keys.get(key.id) or key
        reply = admin_pb2.GetCurrentKeyResponse(
            key=await key_info_now(self._gateway, record),
            usage=micros_to_usd(balance.used),
            reserved=micros_to_usd(balance.reserved),
        )
        if balance.available is not None:
            # Negative when an upstream billed beyond its reservation: the overrun is shown, not hidden.
            reply.limit_remaining = micros_to_usd(balance.available)
        if record.team_id is not None:
            metering = metering_of(self._gateway)
            team = await metering.teams.get(record.team_id)
            if team is not None:
                lifetime, status = await team_spend(metering.accounts, team, metering.clock())
                reply.team.CopyFrom(team_info(team, lifetime, status))
        return reply

    @unary_rpc
    async def GetGeneration(
        self, request: admin_pb2.GetGenerationRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.GetGenerationResponse:
        key = await self._key(context)
        if not request.id:
            raise InvalidRequest(
                "The 'id' query parameter is required.", param="id", code="missing_required_parameter"
            )
        metering = metering_of(self._gateway)
        record = metering.ledger.pending_record(request.id, key.id) or await metering.accounts.ledger_record(
            request.id, key.id
        )
        if record is None:
            raise NotFound(
                f"No generation found with id '{request.id}'.", param="id", code="generation_not_found"
            )
        return admin_pb2.GetGenerationResponse(generation=generation(record))
