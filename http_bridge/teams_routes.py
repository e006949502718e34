"""REST for teams, under /v1/teams (admin key). A team owns keys (a key's `team_id`) and caps them
together: a lifetime credit limit, a period budget, and rpm/tpm over all its keys.

POST   /v1/teams          create {name, credit_limit?, budget?, rpm_limit?, tpm_limit?}
GET    /v1/teams          list, each with its spend and its budget's window now
GET    /v1/teams/{id}     get
PATCH  /v1/teams/{id}     any of the create fields; null clears one (no limit, no budget)
DELETE /v1/teams/{id}     delete a team that owns no key
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from http_bridge.admin_bodies import new_settings, optional_name, optional_number, settings_mask
from http_bridge.budget_fields import budget_json, budget_spec
from siraya.router.v1 import admin_pb2

__all__ = ["TEAM_FIELDS", "add_team_routes", "team_json"]

TEAM_FIELDS = ("name", "credit_limit", "budget", "rpm_limit", "tpm_limit")
_JSON = "application/json"


def team_json(team: admin_pb2.TeamInfo) -> dict[str, Any]:
    return {
        "object": "team",
        "id": team.id,
        "name": team.name,
        "created_at": team.created_at,
        "credit_limit": team.credit_limit if team.HasField("credit_limit") else None,
        "credit_used": team.credit_used,
        "credit_reserved": team.credit_reserved,
        "budget": (
            budget_json(team.budget, team.budget_status if team.HasField("budget_status") else None)
            if team.HasField("budget")
            else None
        ),
        "rpm_limit": team.rpm_limit if team.HasField("rpm_limit") else None,
        "tpm_limit": team.tpm_limit if team.HasField("tpm_limit") else None,
    }


def _spec(body: dict[str, Any]) -> admin_pb2.TeamSpec:
    """The TeamSpec of the fields `body` holds (type-checked; a null leaves its field unset)."""
    spec = admin_pb2.TeamSpec()
    name = optional_name(body)
    if name is not None:
        spec.name = name
    for field, bits in (("credit_limit", 0), ("rpm_limit", 32), ("tpm_limit", 64)):
        value = optional_number(body, field, bits=bits)
        if value is not None:
            setattr(spec, field, value)
    if body.get("budget") is not None:
        spec.budget.CopyFrom(budget_spec(body["budget"]))
    return spec


def team_spec(body: dict[str, Any]) -> admin_pb2.TeamSpec:
    """The body of POST /v1/teams: unknown fields are refused by name, a name is required."""
    new_settings(body, TEAM_FIELDS, "team")
    return _spec(body)


def team_update(team_id: str, body: dict[str, Any]) -> admin_pb2.UpdateTeamRequest:
    """The body of PATCH /v1/teams/{id}: the fields it holds change, a null clears one."""
    mask = settings_mask(body, TEAM_FIELDS, "team")
    return admin_pb2.UpdateTeamRequest(id=team_id, team=_spec(body), update_mask=mask)


def add_team_routes(
    app: web.Application,
    stubs: Any,
    read_json: Any,
    call_metadata: Any,
    admin_metadata: Any,
    request_id_of: Any,
) -> None:
    """Register the routes, with the bridge's own helpers (as add_account_routes passes them)."""

    def respond(request: web.Request, body: dict[str, Any]) -> web.Response:
        return web.Response(
            body=orjson.dumps(body), content_type=_JSON, headers={"X-Request-Id": request_id_of(request)}
        )

    async def create_team(request: web.Request) -> web.StreamResponse:
        spec = team_spec(await read_json(request))
        reply = await stubs(request).teams.CreateTeam(
            admin_pb2.CreateTeamRequest(spec=spec), metadata=admin_metadata(request)
        )
        return respond(request, team_json(reply.team))

    async def list_teams(request: web.Request) -> web.StreamResponse:
        reply = await stubs(request).teams.ListTeams(
            admin_pb2.ListTeamsRequest(), metadata=call_metadata(request)
        )
        return respond(request, {"object": "list", "data": [team_json(team) for team in reply.teams]})

    async def get_team(request: web.Request) -> web.StreamResponse:
        reply = await stubs(request).teams.GetTeam(
            admin_pb2.GetTeamRequest(id=request.match_info["team_id"]), metadata=call_metadata(request)
        )
        return respond(request, team_json(reply.team))

    async def update_team(request: web.Request) -> web.StreamResponse:
        update = team_update(request.match_info["team_id"], await read_json(request))
        reply = await stubs(request).teams.UpdateTeam(update, metadata=admin_metadata(request))
        return respond(request, team_json(reply.team))

    async def delete_team(request: web.Request) -> web.StreamResponse:
        reply = await stubs(request).teams.DeleteTeam(
            admin_pb2.DeleteTeamRequest(id=request.match_info["team_id"]), metadata=admin_metadata(request)
        )
        return respond(request, {"object": "team.deleted", "id": reply.id, "deleted": reply.deleted})

    app.router.add_post("/v1/teams", create_team)
    app.router.add_get("/v1/teams", list_teams)
    app.router.add_get("/v1/teams/{team_id}", get_team)
    app.router.add_patch("/v1/teams/{team_id}", update_team)
    app.router.add_delete("/v1/teams/{team_id}", delete_team)
