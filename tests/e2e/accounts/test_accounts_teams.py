"""Teams and budgets through the admin REST API (/v1/teams, a key's team_id and budget), through gRPC
(TeamsService), and as a key sees them (/v1/key): a team's budget and rpm cap its keys together."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import httpx
import pytest
from google.protobuf import field_mask_pb2

from siraya.router.v1 import admin_pb2, admin_pb2_grpc
from tests.e2e.accounts_harness import (
    ADMIN_KEY,
    IMAGE_PRICE,
    AccountsHarness,
    admin,
    current_key,
    running_accounts,
)


@pytest.fixture(scope="module", params=["in_process", "grpc_hop"])
def accounts(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AccountsHarness]:
    yield from running_accounts(request, tmp_path_factory)


def image(accounts: AccountsHarness, secret: str) -> httpx.Response:
    return httpx.post(
        f"{accounts.base_url}/images/generations",
        headers={"Authorization": f"Bearer {secret}"},
        json={"model": "image-priced", "prompt": "a cat"},
        timeout=20,
    )


def test_teams_are_created_listed_changed_and_deleted_over_rest(accounts: AccountsHarness) -> None:
    base = accounts.base_url
    created = admin(
        "POST",
        f"{base}/teams",
        json={
            "name": "Research",
            "credit_limit": 10,
            "budget": {"limit": 2, "period": "day"},
            "rpm_limit": 60,
        },
    )
    assert created.status_code == 200, created.text
    team = created.json()
    assert (team["object"], team["name"], team["credit_limit"], team["rpm_limit"]) == (
        "team",
        "Research",
        10,
        60,
    )
    assert team["budget"]["limit"] == 2 and team["budget"]["period"] == "day"
    assert team["budget"]["reset"] == "calendar" and team["budget"]["spent"] == 0
    assert team["budget"]["resets_at"] > team["budget"]["window_start"]
    url = f"{base}/teams/{team['id']}"
    assert admin("GET", url).json() == team
    assert team["id"] in [found["id"] for found in admin("GET", f"{base}/teams").json()["data"]]

    changed = admin("PATCH", url, json={"budget": {"limit": 3, "period": "week", "reset": "rolling"}}).json()
    assert changed["budget"]["period"] == "week" and changed["budget"]["resets_at"] is None
    cleared = admin("PATCH", url, json={"budget": None, "credit_limit": None, "name": "R&D"}).json()
    assert (cleared["budget"], cleared["credit_limit"], cleared["name"], cleared["rpm_limit"]) == (
        None,
        None,
        "R&D",
        60,
    )

    key = admin("POST", f"{base}/keys", json={"name": "member", "team_id": team["id"]}).json()
    assert key["team_id"] == team["id"]
    refused = admin("DELETE", url)
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "team_has_keys"
    assert admin("PATCH", f"{base}/keys/{key['id']}", json={"team_id": None}).json()["team_id"] is None
    deleted = admin("DELETE", url)
    assert deleted.status_code == 200 and deleted.json()["deleted"] is True
    assert admin("GET", url).status_code == 404
    assert admin("DELETE", url).status_code == 404


def test_unknown_fields_and_bad_budgets_are_refused_by_name(accounts: AccountsHarness) -> None:
    base = accounts.base_url
    typo = admin("POST", f"{base}/teams", json={"name": "x", "rpm": 3})
    assert typo.status_code == 400
    assert (
        typo.json()["error"]["param"] == "rpm"
        and "did you mean 'rpm_limit'" in typo.json()["error"]["message"]
    )
    inner = admin(
        "POST", f"{base}/keys", json={"name": "x", "budget": {"limit": 1, "period": "day", "resets": "x"}}
    )
    assert inner.status_code == 400 and inner.json()["error"]["param"] == "resets"
    for budget, param in (
        ({"limit": 1, "period": "fortnight"}, "budget.period"),
        ({"limit": "1", "period": "day"}, "budget.limit"),
        ({"limit": 1, "period": "day", "reset": "sometimes"}, "budget.reset"),
        ({"limit": -1, "period": "day"}, "budget.limit"),
        (5, "budget"),
    ):
        refused = admin("POST", f"{base}/teams", json={"name": "x", "budget": budget})
        assert refused.status_code == 400, budget
        assert refused.json()["error"]["param"] == param, refused.text
    missing = admin("POST", f"{base}/keys", json={"name": "x", "team_id": "team_nope"})
    assert missing.status_code == 400 and missing.json()["error"]["code"] == "team_not_found"
    assert admin("POST", f"{base}/teams", json={"rpm_limit": 3}).status_code == 400  # no name
    for field, value in (
        ("rpm_limit", 2**31),
        ("tpm_limit", 2**63),
        ("budget", {"limit": 1e300, "period": "day"}),
    ):
        too_big = admin("POST", f"{base}/teams", json={"name": "x", field: value})
        assert too_big.status_code == 400, (field, too_big.text)  # a 400 naming it, never the encoder's 500
    assert admin("PATCH", f"{base}/teams/team_nope", json={"name": "y"}).status_code == 404


def test_a_team_budget_caps_its_keys_together_and_shows_its_spend(accounts: AccountsHarness) -> None:
    base = accounts.base_url
    team = admin(
        "POST",
        f"{base}/teams",
        json={"name": "Design", "budget": {"limit": 3 * IMAGE_PRICE, "period": "month"}},
    )
    team_id = team.json()["id"]
    first = admin("POST", f"{base}/keys", json={"name": "a", "team_id": team_id}).json()
    second = admin(
        "POST",
        f"{base}/keys",
        json={"name": "b", "team_id": team_id, "budget": {"limit": IMAGE_PRICE, "period": "day"}},
    ).json()
    assert second["budget"] == {
        **second["budget"],
        "limit": IMAGE_PRICE,
        "period": "day",
        "reset": "calendar",
        "spent": 0,
    }
    assert image(accounts, second["secret"]).status_code == 200
    own = image(accounts, second["secret"])  # the key's own daily budget is spent
    assert own.status_code == 402 and "this key's daily budget" in own.json()["error"]["message"]
    assert [image(accounts, first["secret"]).status_code for _ in range(3)] == [200, 200, 402]

    seen = current_key(accounts, second["secret"])
    assert seen["budget"]["spent"] == pytest.approx(IMAGE_PRICE) and seen["budget"][
        "remaining"
    ] == pytest.approx(0)
    assert seen["team"]["id"] == team_id
    assert seen["team"]["budget"]["spent"] == pytest.approx(3 * IMAGE_PRICE)
    assert seen["team"]["credit_used"] == pytest.approx(3 * IMAGE_PRICE)
    listed = {key["id"]: key for key in admin("GET", f"{base}/keys").json()["data"]}
    assert listed[second["id"]]["budget"]["spent"] == pytest.approx(IMAGE_PRICE)
    assert admin("GET", f"{base}/teams/{team_id}").json()["budget"]["remaining"] == pytest.approx(0)
    # A raised budget applies at once on this replica.
    admin("PATCH", f"{base}/teams/{team_id}", json={"budget": {"limit": 4 * IMAGE_PRICE, "period": "month"}})
    assert image(accounts, first["secret"]).status_code == 200


def test_a_team_rpm_caps_its_keys_together(accounts: AccountsHarness) -> None:
    base = accounts.base_url
    team_id = admin("POST", f"{base}/teams", json={"name": "Ops", "rpm_limit": 3}).json()["id"]
    secrets = [
        admin("POST", f"{base}/keys", json={"name": f"k{i}", "team_id": team_id}).json()["secret"]
        for i in range(2)
    ]
    statuses = []
    for i in range(5):
        response = httpx.post(
            f"{base}/chat/completions",
            headers={"Authorization": f"Bearer {secrets[i % 2]}"},
            json={"model": "gpt-free", "messages": [{"role": "user", "content": "hi"}]},
            timeout=20,
        )
        statuses.append(response.status_code)
        if response.status_code == 429:
            assert "team 'Ops': 3 requests per minute" in response.json()["error"]["message"]
            assert response.headers["x-ratelimit-limit-requests"] == "3"
    assert statuses == [200, 200, 200, 429, 429]


def test_teams_over_grpc(accounts: AccountsHarness) -> None:
    async def call() -> None:
        metadata = [("authorization", f"Bearer {ADMIN_KEY}")]
        async with grpc.aio.insecure_channel(accounts.grpc_target) as channel:
            teams = admin_pb2_grpc.TeamsServiceStub(channel)
            keys = admin_pb2_grpc.KeysServiceStub(channel)
            budget = admin_pb2.Budget(limit=5, period=admin_pb2.BUDGET_PERIOD_WEEK)
            created = await teams.CreateTeam(
                admin_pb2.CreateTeamRequest(spec=admin_pb2.TeamSpec(name="g", budget=budget, tpm_limit=1000)),
                metadata=metadata,
            )
            team = created.team
            assert team.budget.reset == admin_pb2.BUDGET_RESET_CALENDAR  # unset: calendar
            assert team.budget_status.HasField("resets_at") and team.tpm_limit == 1000
            key = await keys.CreateKey(
                admin_pb2.CreateKeyRequest(spec=admin_pb2.KeySpec(name="gk", team_id=team.id)),
                metadata=metadata,
            )
            assert key.key.team_id == team.id
            updated = await teams.UpdateTeam(
                admin_pb2.UpdateTeamRequest(
                    id=team.id,
                    team=admin_pb2.TeamSpec(rpm_limit=9),
                    update_mask=field_mask_pb2.FieldMask(paths=["rpm_limit", "tpm_limit"]),
                ),
                metadata=metadata,
            )
            assert updated.team.rpm_limit == 9 and not updated.team.HasField("tpm_limit")
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await teams.UpdateTeam(
                    admin_pb2.UpdateTeamRequest(
                        id=team.id, update_mask=field_mask_pb2.FieldMask(paths=["rpm"])
                    ),
                    metadata=metadata,
                )
            assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "'rpm'" in (
                refused.value.details() or ""
            )
            with pytest.raises(grpc.aio.AioRpcError) as unauthorised:
                await teams.ListTeams(admin_pb2.ListTeamsRequest())
            assert unauthorised.value.code() == grpc.StatusCode.UNAUTHENTICATED
            listed = await teams.ListTeams(admin_pb2.ListTeamsRequest(), metadata=metadata)
            assert team.id in [found.id for found in listed.teams]
            await keys.UpdateKey(
                admin_pb2.UpdateKeyRequest(
                    id=key.key.id,
                    key=admin_pb2.KeySpec(),
                    update_mask=field_mask_pb2.FieldMask(paths=["team_id"]),
                ),
                metadata=metadata,
            )
            deleted = await teams.DeleteTeam(admin_pb2.DeleteTeamRequest(id=team.id), metadata=metadata)
            assert deleted.deleted

    accounts.run(call())
    actions = [event["action"] for event in admin("GET", f"{accounts.base_url}/audit").json()["data"]]
    assert {"team.create", "team.update", "team.delete"} <= set(actions)
