"""Key administration over REST (/v1/keys, admin key), refused keys, and durability: a restarted
gateway keeps keys and balances, and a graceful stop writes every pending ledger record."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from google.protobuf import field_mask_pb2

from server.accounts.backends import DATABASE_FILE
from server.accounts.keys import hash_secret
from server.accounts.sqlite_accounts import SqliteAccountStore
from siraya.router.v1 import admin_pb2, admin_pb2_grpc
from tests.e2e.accounts_harness import (
    ADMIN_KEY,
    AccountsHarness,
    admin,
    current_key,
    generation,
    running_accounts,
    sdk,
)
from tests.e2e.raw_http import exchange, request_bytes
from tests.fakes.openai_upstream import ScriptedReply

MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module", params=["in_process", "grpc_hop"])
def accounts(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AccountsHarness]:
    yield from running_accounts(request, tmp_path_factory)


def chat_status(accounts: AccountsHarness, secret: str) -> int:
    response = httpx.post(
        f"{accounts.base_url}/chat/completions",
        headers={"Authorization": f"Bearer {secret}"},
        json={"model": "gpt-free", "messages": MESSAGES},
        timeout=20,
    )
    return response.status_code


def test_key_admin_needs_the_admin_key(accounts: AccountsHarness) -> None:
    _, user_secret = accounts.create_key()
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Bearer {user_secret}"}):
        response = httpx.get(f"{accounts.base_url}/keys", headers=headers)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "invalid_api_key"
        assert ADMIN_KEY not in response.text


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/keys", b"{{{"),
        ("POST", "/keys", b"[1]"),
        ("POST", "/keys", b'{"nom": "typo"}'),
        ("POST", "/keys", b'{"name": "x", "rpm_limit": "many"}'),
        ("PATCH", "/keys/key_123", b"{{{"),
        ("PATCH", "/keys/key_123", b"{}"),
        ("PATCH", "/keys/key_123", b'{"name": ""}'),
    ],
)
def test_key_admin_hears_401_before_its_body_errors(
    accounts: AccountsHarness, method: str, path: str, body: bytes
) -> None:
    """Nobody without the admin key learns how the admin API validates its bodies."""
    _, user_secret = accounts.create_key()
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Bearer {user_secret}"}):
        response = httpx.request(
            method,
            f"{accounts.base_url}{path}",
            content=body,
            headers={**headers, "Content-Type": "application/json"},
            timeout=20,
        )
        assert response.status_code == 401, (headers, response.text)
        assert response.json()["error"]["code"] == "invalid_api_key"
    with_admin = admin(method, f"{accounts.base_url}{path}", content=body)
    assert with_admin.status_code == 400, with_admin.text


def _http_port(accounts: AccountsHarness) -> int:
    assert accounts.running is not None
    return accounts.running.http_port


# Query values each route refuses, where it reads the parameter at all.
_BAD_QUERY = (
    "?limit=abc&stream=true&starting_after=x&since=never&until=never&min_cost=-1"
    "&group_by=nope&bucket=nope&order=sideways&id="
)


def test_every_v1_route_tells_an_unknown_key_401_before_anything_else(accounts: AccountsHarness) -> None:
    """Walks the router, so a route added later is covered the day it appears: whatever is wrong with
    its body or query, a caller without a valid key hears 401 (in its door's shape) and nothing more."""
    assert accounts.running is not None
    routes = sorted(
        {
            (route.method, route.resource.canonical)
            for route in accounts.running._app.router.routes()
            if route.resource is not None
            and route.resource.canonical.startswith("/v1/")
            and route.method not in ("HEAD", "*")
        }
    )
    assert ("POST", "/v1/messages") in routes and ("GET", "/v1/responses/{response_id}") in routes
    wrong: list[str] = []
    for method, path in routes:
        url = accounts.root_url + re.sub(r"\{[^}]+\}", "nope", path) + _BAD_QUERY
        for headers in ({}, {"Authorization": "Bearer sk-sr-" + "x" * 43}, {"x-api-key": "sk-sr-unknown"}):
            response = httpx.request(
                method, url, content=b"{{{", headers={**headers, "Content-Type": "application/json"}
            )
            if response.status_code != 401 or "authentication_error" not in response.text:
                answer = f"{response.status_code} {response.text[:120]}"
                wrong.append(f"{method} {path} {sorted(headers)}: {answer}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/messages", "/v1/keys"])
def test_a_non_ascii_bearer_token_with_a_bad_body_is_401_without_a_traceback(
    accounts: AccountsHarness, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The key check a refused body waits for copes with any bytes a header can carry (aiohttp hands
    them over surrogate-escaped), the admin key's comparison included."""
    headers = {"Authorization": "Bearer sk-sr-\xe9", "Content-Type": "application/json"}
    with caplog.at_level(logging.DEBUG):
        response = exchange(_http_port(accounts), request_bytes("POST", path, headers, b"{{{"))
    assert response.status == 401, response.body[:300]
    assert b"authentication_error" in response.body
    assert not [r for r in caplog.records if r.exc_info], caplog.text


def test_create_list_get_update_rotate_revoke(accounts: AccountsHarness) -> None:
    base = accounts.base_url
    created = admin(
        "POST",
        f"{base}/keys",
        json={
            "name": "team-a",
            "credit_limit": 5,
            "rpm_limit": 60,
            "tpm_limit": 100000,
            "allowed_models": ["gpt-free"],
        },
    )
    assert created.status_code == 200, created.text
    key = created.json()
    secret = key["secret"]
    assert secret.startswith("sk-sr-") and key["prefix"] == secret[:10] and key["name"] == "team-a"
    assert (key["credit_limit"], key["rpm_limit"], key["tpm_limit"]) == (5, 60, 100000)
    assert chat_status(accounts, secret) == 200

    listed = admin("GET", f"{base}/keys")
    assert listed.status_code == 200
    assert key["id"] in [item["id"] for item in listed.json()["data"]]
    assert secret not in listed.text and hash_secret(secret) not in listed.text
    fetched = admin("GET", f"{base}/keys/{key['id']}").json()
    assert "secret" not in fetched and fetched["allowed_models"] == ["gpt-free"]

    updated = admin("PATCH", f"{base}/keys/{key['id']}", json={"credit_limit": 7.5})
    assert updated.status_code == 200 and updated.json()["credit_limit"] == 7.5
    assert current_key(accounts, secret)["limit"] == 7.5

    rotated = admin("POST", f"{base}/keys/{key['id']}/rotate").json()
    assert rotated["id"] == key["id"] and rotated["secret"] != secret
    assert chat_status(accounts, secret) == 401
    assert chat_status(accounts, rotated["secret"]) == 200

    revoked = admin("DELETE", f"{base}/keys/{key['id']}").json()
    assert revoked["revoked_at"] is not None
    assert chat_status(accounts, rotated["secret"]) == 401
    assert admin("GET", f"{base}/keys/key_missing").status_code == 404
    assert admin("POST", f"{base}/keys", json={"credit_limit": 1}).status_code == 400


def test_expired_keys_are_refused(accounts: AccountsHarness) -> None:
    created = admin(
        "POST", f"{accounts.base_url}/keys", json={"name": "old", "expires_at": int(time.time()) - 5}
    )
    response = httpx.get(
        f"{accounts.base_url}/key", headers={"Authorization": f"Bearer {created.json()['secret']}"}
    )
    assert response.status_code == 401
    assert "expired" in response.json()["error"]["message"]


def test_restart_keeps_keys_and_balances_and_a_graceful_stop_flushes_the_ledger(tmp_path: Path) -> None:
    # A flush interval far longer than the test: only the graceful stop can have written the record.
    harness = AccountsHarness(tmp_path, in_process=True, flush=3600).start()
    try:
        _, secret = harness.create_key(credit_limit=1.0)
        harness.upstream.script_chat(
            ScriptedReply(content="x", usage={"prompt_tokens": 1000, "completion_tokens": 500})
        )
        raw = sdk(harness, secret).chat.completions.with_raw_response.create(
            model="gpt-priced", messages=MESSAGES
        )
        request_id = raw.headers["x-request-id"]
        assert generation(harness, secret, request_id).status_code == 200  # served from the pending queue
        harness.stop_gateway()

        async def stored() -> tuple[object, object]:
            store = SqliteAccountStore(tmp_path / "data" / DATABASE_FILE)
            try:
                records = await store.list_keys()
                key = next(k for k in records if k.prefix == secret[:10])
                return await store.ledger_record(request_id, key.id), await store.balance(key.id)
            finally:
                await store.close()

        record, balance = asyncio.run(stored())
        assert record is not None and record.cost_micros == 2000  # type: ignore[attr-defined]
        assert balance.used == 2000 and balance.reserved == 0  # type: ignore[attr-defined]

        harness.start_gateway()
        assert current_key(harness, secret)["usage"] == pytest.approx(0.002)
        assert generation(harness, secret, request_id).json()["data"]["total_cost"] == pytest.approx(0.002)
    finally:
        harness.stop()


def test_unknown_fields_are_refused_by_name_with_the_field_meant(accounts: AccountsHarness) -> None:
    base = accounts.base_url
    created = admin("POST", f"{base}/keys", json={"name": "typo", "rpm": 10, "tpm": 100})
    assert created.status_code == 400, created.text
    error = created.json()["error"]
    assert (error["code"], error["param"]) == ("unknown_parameter", "rpm")
    assert "'rpm' (did you mean 'rpm_limit'?)" in error["message"]
    assert "'tpm' (did you mean 'tpm_limit'?)" in error["message"]
    assert "typo" not in [key["name"] for key in admin("GET", f"{base}/keys").json()["data"]]

    key_id, _ = accounts.create_key()
    patched = admin("PATCH", f"{base}/keys/{key_id}", json={"credits": 3})
    assert patched.status_code == 400
    assert "'credits' (did you mean 'credit_limit'?)" in patched.json()["error"]["message"]
    assert admin("PATCH", f"{base}/keys/{key_id}", json={}).status_code == 400


def test_every_setting_can_be_changed_and_cleared_with_patch(accounts: AccountsHarness) -> None:
    base = accounts.base_url
    key = admin("POST", f"{base}/keys", json={"name": "before", "allowed_models": ["gpt-free"]}).json()
    url = f"{base}/keys/{key['id']}"
    expiry = int(time.time()) + 3600
    changed = admin(
        "PATCH",
        url,
        json={
            "name": "after",
            "credit_limit": 4.5,
            "rpm_limit": 30,
            "tpm_limit": 9000,
            "allowed_models": ["gpt-priced"],
            "expires_at": expiry,
        },
    )
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert (body["name"], body["credit_limit"], body["rpm_limit"], body["tpm_limit"]) == (
        "after",
        4.5,
        30,
        9000,
    )
    assert (body["allowed_models"], body["expires_at"]) == (["gpt-priced"], expiry)
    assert admin("GET", url).json() == body
    # The new allow-list applies at once.
    assert chat_status(accounts, key["secret"]) == 403
    seen = current_key(accounts, key["secret"])
    assert seen["rate_limit"] == {"requests_per_minute": 30, "tokens_per_minute": 9000}

    cleared = admin(
        "PATCH",
        url,
        json={
            "credit_limit": None,
            "rpm_limit": None,
            "tpm_limit": None,
            "allowed_models": [],
            "expires_at": None,
        },
    ).json()
    assert (cleared["credit_limit"], cleared["rpm_limit"], cleared["tpm_limit"]) == (None, None, None)
    assert (cleared["allowed_models"], cleared["expires_at"], cleared["name"]) == ([], None, "after")
    assert chat_status(accounts, key["secret"]) == 200
    assert admin("PATCH", url, json={"name": None}).status_code == 400
    assert admin("PATCH", f"{base}/keys/key_missing", json={"rpm_limit": 1}).status_code == 404


def test_allowed_models_are_checked_against_the_catalogue(accounts: AccountsHarness) -> None:
    base = accounts.base_url
    created = admin(
        "POST", f"{base}/keys", json={"name": "x", "allowed_models": ["gpt-free", "no-such-model"]}
    )
    assert created.status_code == 400
    error = created.json()["error"]
    assert (error["code"], error["param"]) == ("model_not_found", "allowed_models")
    assert "'no-such-model'" in error["message"] and "gpt-free" in error["message"]
    key_id, _ = accounts.create_key()
    patched = admin("PATCH", f"{base}/keys/{key_id}", json={"allowed_models": ["no-such-model"]})
    assert patched.status_code == 400 and "'no-such-model'" in patched.json()["error"]["message"]
    assert admin("GET", f"{base}/keys/{key_id}").json()["allowed_models"] == []


def test_grpc_update_key_refuses_a_mask_path_it_cannot_change(accounts: AccountsHarness) -> None:
    key_id, _ = accounts.create_key()

    async def call() -> grpc.StatusCode:
        async with grpc.aio.insecure_channel(accounts.grpc_target) as channel:
            stub = admin_pb2_grpc.KeysServiceStub(channel)
            request = admin_pb2.UpdateKeyRequest(
                id=key_id,
                key=admin_pb2.KeySpec(rpm_limit=5),
                update_mask=field_mask_pb2.FieldMask(paths=["rpm"]),
            )
            try:
                await stub.UpdateKey(request, metadata=[("authorization", f"Bearer {ADMIN_KEY}")])
            except grpc.aio.AioRpcError as error:
                assert "'rpm'" in (error.details() or "")
                return error.code()
            return grpc.StatusCode.OK

    assert accounts.run(call()) == grpc.StatusCode.INVALID_ARGUMENT


def test_a_restricted_key_lists_only_the_models_it_may_use(accounts: AccountsHarness) -> None:
    _, restricted = accounts.create_key(allowed_models=("gpt-free",))
    _, unrestricted = accounts.create_key()
    listed = sdk(accounts, restricted).models.list()
    assert [model.id for model in listed.data] == ["gpt-free"]
    everything = [model.id for model in sdk(accounts, unrestricted).models.list().data]
    assert "gpt-free" in everything and "gpt-priced" in everything
    assert sdk(accounts, restricted).models.retrieve("gpt-free").id == "gpt-free"
    hidden = httpx.get(
        f"{accounts.base_url}/models/gpt-priced", headers={"Authorization": f"Bearer {restricted}"}
    )
    assert hidden.status_code == 404 and hidden.json()["error"]["code"] == "model_not_found"


def test_a_cache_namespace_is_set_changed_and_cleared_over_rest_and_grpc(accounts: AccountsHarness) -> None:
    base = accounts.base_url
    own = admin("POST", f"{base}/keys", json={"name": "own"}).json()
    assert own["cache_namespace"] == own["id"]  # by default a key's answers are its own
    shared = admin("POST", f"{base}/keys", json={"name": "shared", "cache_namespace": "team-a"})
    assert shared.status_code == 200, shared.text
    key = shared.json()
    assert key["cache_namespace"] == "team-a"
    url = f"{base}/keys/{key['id']}"
    assert admin("GET", url).json()["cache_namespace"] == "team-a"
    assert current_key(accounts, key["secret"])["cache_namespace"] == "team-a"

    moved = admin("PATCH", url, json={"cache_namespace": "team-b"}).json()
    assert moved["cache_namespace"] == "team-b"
    assert admin("PATCH", url, json={"rpm_limit": 100}).json()["cache_namespace"] == "team-b"
    assert admin("PATCH", url, json={"cache_namespace": None}).json()["cache_namespace"] == key["id"]
    for bad in ("", "has space", "x" * 129, "naïve"):
        refused = admin("PATCH", url, json={"cache_namespace": bad})
        assert refused.status_code == 400, bad
        assert refused.json()["error"]["param"] == "cache_namespace"
    assert admin("PATCH", url, json={"cache_namespace": 7}).status_code == 400
    assert admin("POST", f"{base}/keys", json={"name": "x", "cache_namespace": " "}).status_code == 400

    async def through_grpc() -> tuple[str, str, str]:
        metadata = [("authorization", f"Bearer {ADMIN_KEY}")]
        async with grpc.aio.insecure_channel(accounts.grpc_target) as channel:
            stub = admin_pb2_grpc.KeysServiceStub(channel)
            created = await stub.CreateKey(
                admin_pb2.CreateKeyRequest(spec=admin_pb2.KeySpec(name="g", cache_namespace="team-g")),
                metadata=metadata,
            )
            updated = await stub.UpdateKey(
                admin_pb2.UpdateKeyRequest(
                    id=created.key.id,
                    key=admin_pb2.KeySpec(),
                    update_mask=field_mask_pb2.FieldMask(paths=["cache_namespace"]),
                ),
                metadata=metadata,
            )
            return created.key.cache_namespace, updated.key.cache_namespace, updated.key.id

    created, cleared, key_id = accounts.run(through_grpc())
    assert (created, cleared) == ("team-g", key_id)  # a named mask path left unset clears it
