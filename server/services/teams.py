"""TeamsService: teams that own keys and cap their spend and rates together. Guarded by the admin key."""

from __future__ import annotations

import math

import grpc

from server.accounts.budget_status import team_spend
from server.accounts.key_views import team_info
from server.accounts.money import usd_to_micros
from server.accounts.teams import CHANGEABLE_TEAM_FIELDS, NewTeam, TeamChanges, TeamRecord
from server.errors import InvalidRequest, NotFound
from server.gateway import Gateway
from server.services.admin import audit, budget_of, check_admin, metering_of, spec_detail
from server.services.base import unary_rpc
from server.services.usage import admin_token
from siraya.router.v1 import admin_pb2, admin_pb2_grpc

_LIMITS = ("rpm_limit", "tpm_limit")


def _team_not_found(team_id: str) -> NotFound:
    return NotFound(f"No team found with id '{team_id}'.", param="id", code="team_not_found")


def _check_spec(spec: admin_pb2.TeamSpec, fields: tuple[str, ...] | set[str]) -> None:
    if "name" in fields and not spec.name:
        raise InvalidRequest("A team needs a name.", param="name", code="missing_required_parameter")
    if "credit_limit" in fields and spec.HasField("credit_limit"):
        if not (spec.credit_limit >= 0 and math.isfinite(spec.credit_limit)):
            raise InvalidRequest(
                "'credit_limit' must be a finite number >= 0.", param="credit_limit", code="invalid_value"
            )
    for field in _LIMITS:
        if field in fields and spec.HasField(field) and getattr(spec, field) < 0:
            raise InvalidRequest(f"'{field}' must be >= 0.", param=field, code="invalid_value")
    if "budget" in fields:
        budget_of(spec)


def _credit_limit(spec: admin_pb2.TeamSpec) -> int | None:
    return usd_to_micros(spec.credit_limit) if spec.HasField("credit_limit") else None


class TeamsServicer(admin_pb2_grpc.TeamsServiceServicer):
    def __init__(self, gateway: Gateway, admin_key: str | None) -> None:
        self._gateway = gateway
        self._admin = admin_token(admin_key)

    async def _info(self, record: TeamRecord) -> admin_pb2.TeamInfo:
        metering = metering_of(self._gateway)
        lifetime, status = await team_spend(metering.accounts, record, metering.clock())
        return team_info(record, lifetime, status)

    @unary_rpc
    async def CreateTeam(
        self, request: admin_pb2.CreateTeamRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.CreateTeamResponse:
        check_admin(self._admin, context)
        spec = request.spec
        _check_spec(spec, CHANGEABLE_TEAM_FIELDS)
        record = await metering_of(self._gateway).teams.create(
            NewTeam(
                name=spec.name,
                credit_limit=_credit_limit(spec),
                budget=budget_of(spec),
                rpm_limit=spec.rpm_limit if spec.HasField("rpm_limit") else None,
                tpm_limit=spec.tpm_limit if spec.HasField("tpm_limit") else None,
            )
        )
        await audit(
            self._gateway, context, "team.create", record.id, spec_detail(spec, CHANGEABLE_TEAM_FIELDS)
        )
        return admin_pb2.CreateTeamResponse(team=await self._info(record))

    @unary_rpc
    async def ListTeams(
        self, request: admin_pb2.ListTeamsRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.ListTeamsResponse:
        check_admin(self._admin, context)
        records = await metering_of(self._gateway).teams.list()
        return admin_pb2.ListTeamsResponse(teams=[await self._info(record) for record in records])

    @unary_rpc
    async def GetTeam(
        self, request: admin_pb2.GetTeamRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.GetTeamResponse:
        check_admin(self._admin, context)
        record = await metering_of(self._gateway).teams.get(request.id)
        if record is None:
            raise _team_not_found(request.id)
        return admin_pb2.GetTeamResponse(team=await self._info(record))

    @unary_rpc
    async def UpdateTeam(
        self, request: admin_pb2.UpdateTeamRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.UpdateTeamResponse:
        check_admin(self._admin, context)
        fields = set(request.update_mask.paths)
        unknown = sorted(fields - set(CHANGEABLE_TEAM_FIELDS))
        if unknown:
            raise InvalidRequest(
                f"'update_mask' names {', '.join(repr(path) for path in unknown)}, which cannot be"
                f" changed; it may name: {', '.join(CHANGEABLE_TEAM_FIELDS)}.",
                param="update_mask",
                code="unknown_parameter",
            )
        spec = request.team
        _check_spec(spec, fields)
        changes = TeamChanges(
            frozenset(fields),
            name=spec.name,
            credit_limit=_credit_limit(spec),
            budget=budget_of(spec) if "budget" in fields else None,
            rpm_limit=spec.rpm_limit if spec.HasField("rpm_limit") else None,
            tpm_limit=spec.tpm_limit if spec.HasField("tpm_limit") else None,
        )
        record = await metering_of(self._gateway).teams.update(request.id, changes)
        if record is None:
            raise _team_not_found(request.id)
        await audit(self._gateway, context, "team.update", request.id, spec_detail(spec, fields))
        return admin_pb2.UpdateTeamResponse(team=await self._info(record))

    @unary_rpc
    async def DeleteTeam(
        self, request: admin_pb2.DeleteTeamRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.DeleteTeamResponse:
        check_admin(self._admin, context)
        outcome = await metering_of(self._gateway).teams.delete(request.id)
        if outcome == "not_found":
            raise _team_not_found(request.id)
        if outcome == "has_keys":
            raise InvalidRequest(
                f"Team '{request.id}' still owns keys (revoked ones too): move them to another team or to"
                " none first (PATCH /v1/keys/{id} with team_id).",
                param="id",
                code="team_has_keys",
            )
        await audit(self._gateway, context, "team.delete", request.id, {})
        return admin_pb2.DeleteTeamResponse(id=request.id, deleted=True)
