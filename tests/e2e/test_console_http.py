"""The console over plain HTTP (no browser, so these run everywhere): signing in and its limit on
failures, sessions that end with their key, CSRF, the admin-only pages, the security headers, and
`ui.enabled: false`."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.console_harness import ADMIN_KEY, ConsoleHarness
from tests.e2e.harness import GatewayHarness

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture(scope="module", params=["in_process", "grpc_hop"])
def gw(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleHarness]:
    """The console calls the API through the bridge's stubs: in-process, and over loopback gRPC."""
    in_process = request.param == "in_process"
    harness = ConsoleHarness(Path(tmp_path_factory.mktemp("console-http")), in_process=in_process).start()
    try:
        yield harness
    finally:
        harness.stop()


def _browser(gw: ConsoleHarness) -> httpx.Client:
    return httpx.Client(base_url=gw.root_url, follow_redirects=False, timeout=10)


def _sign_in(client: httpx.Client, key: str) -> httpx.Response:
    page = client.get("/console/login")
    token = CSRF.search(page.text)
    assert token is not None
    return client.post("/console/login", data={"key": key, "csrf_token": token.group(1)})


def _token(client: httpx.Client, path: str = "/console/logs") -> str:
    found = CSRF.search(client.get(path).text)
    assert found is not None
    return found.group(1)


def test_the_root_leads_to_the_console_and_signing_in(gw: ConsoleHarness) -> None:
    with _browser(gw) as client:
        assert client.get("/").headers["location"] == "/console/"
        assert client.get("/console/").headers["location"] == "/console/login"
        login = client.get("/console/login")
        assert login.status_code == 200
        cookie = login.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and "path=/console" in cookie
        signed_in = _sign_in(client, ADMIN_KEY)
        assert (signed_in.status_code, signed_in.headers["location"]) == (303, "/console/")
        assert ADMIN_KEY not in signed_in.headers["set-cookie"]
        overview = client.get("/console/")
        assert overview.status_code == 200 and "Overview" in overview.text
        assert ADMIN_KEY not in overview.text


@pytest.mark.parametrize(
    "path",
    ["/console/login", "/console/", "/console/keys", "/console/static/console.css", "/console/nowhere"],
)
def test_every_console_response_has_the_security_headers(gw: ConsoleHarness, path: str) -> None:
    with _browser(gw) as client:
        _sign_in(client, ADMIN_KEY)
        response = client.get(path)
    headers = response.headers
    policy = headers["content-security-policy"]
    for rule in ("default-src 'none'", "script-src 'self'", "frame-ancestors 'none'", "form-action 'self'"):
        assert rule in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert (headers["x-frame-options"], headers["referrer-policy"]) == ("DENY", "no-referrer")


def test_a_wrong_key_or_a_missing_token_does_not_sign_in(gw: ConsoleHarness) -> None:
    with _browser(gw) as client:
        refused = _sign_in(client, "sk-sr-not-a-real-key")
        assert refused.status_code == 401 and "not accepted" in refused.text
        assert "siraya_console=" not in refused.headers.get("set-cookie", "")
        client.get("/console/login")
        forged = client.post("/console/login", data={"key": ADMIN_KEY})
        assert forged.status_code == 403
        assert client.get("/console/").status_code == 303


def test_mutations_need_the_sessions_csrf_token(gw: ConsoleHarness) -> None:
    key_id, _ = gw.new_key("csrf-target")
    with _browser(gw) as client:
        _sign_in(client, ADMIN_KEY)
        token = _token(client)
        assert client.post("/console/keys", data={"name": "no-token"}).status_code == 403
        assert client.post("/console/keys", data={"name": "bad", "csrf_token": "x" * 43}).status_code == 403
        assert client.post(f"/console/keys/{key_id}/revoke", data={}).status_code == 403
        assert client.post("/console/logout", data={}).status_code == 403
        made = client.post("/console/keys", data={"name": "with-token", "csrf_token": token})
        assert (made.status_code, made.headers["location"]) == (303, "/console/keys")
        # The secret is on the next page only, once.
        shown = client.get("/console/keys").text
        assert re.search(r'id="new-secret"[^>]*value="sk-sr-', shown)
        assert "new-secret" not in client.get("/console/keys").text
        stream = client.post(
            "/console/playground/stream", json={"model": "solo-beta", "prompt": "hi", "key": "sk-x"}
        )
        assert stream.status_code == 403
    names = [key["name"] for key in gw.get("/keys").json()["data"]]
    assert "with-token" in names and "no-token" not in names and "bad" not in names
    assert gw.get(f"/keys/{key_id}").json()["revoked_at"] is None


def test_a_user_key_reads_its_own_and_is_kept_out_of_admin_pages(gw: ConsoleHarness) -> None:
    key_id, secret = gw.new_key("http-reader")
    with _browser(gw) as client:
        _sign_in(client, secret)
        overview = client.get("/console/")
        assert overview.status_code == 200 and "read-only" in overview.text
        assert 'href="/console/keys"' not in overview.text
        for path in ("/console/keys", f"/console/keys/{key_id}", "/console/audit"):
            assert client.get(path).status_code == 403, path
        token = _token(client)
        assert client.post("/console/keys", data={"name": "x", "csrf_token": token}).status_code == 403
        assert client.get("/console/logs").status_code == 200
        assert client.get("/console/models").status_code == 200
        # Revoking the key ends its console session at its next page.
        httpx.delete(f"{gw.base_url}/keys/{key_id}", headers={"Authorization": f"Bearer {ADMIN_KEY}"})
        ended = client.get("/console/")
        assert (ended.status_code, ended.headers["location"]) == (303, "/console/login?ended=1")


def test_the_console_can_be_turned_off(tmp_path: Path) -> None:
    harness = GatewayHarness(tmp_path, in_process=True)
    original = harness._start_gateway

    async def without_ui(config_text: str, env: dict[str, str], key_name: str, **kwargs: object) -> object:
        return await original(config_text + "ui:\n  enabled: false\n", env, key_name, **kwargs)  # type: ignore[arg-type]

    harness._start_gateway = without_ui  # type: ignore[method-assign,assignment]
    harness.start()
    try:
        for path in ("/", "/console/", "/console/login"):
            response = httpx.get(harness.root_url + path)
            assert response.status_code == 400, path
            assert response.json()["error"]["code"] == "unknown_url"
        assert not (tmp_path / "data" / "console-secret").exists()
    finally:
        harness.stop()


def test_the_key_form_sets_and_clears_a_cache_namespace(gw: ConsoleHarness) -> None:
    with _browser(gw) as client:
        _sign_in(client, ADMIN_KEY)
        token = _token(client)
        made = client.post(
            "/console/keys", data={"name": "teamed", "cache_namespace": "team-c", "csrf_token": token}
        )
        assert made.status_code == 303
        key = next(key for key in gw.get("/keys").json()["data"] if key["name"] == "teamed")
        assert key["cache_namespace"] == "team-c"
        page = client.get(f"/console/keys/{key['id']}").text
        assert 'name="cache_namespace"' in page and 'value="team-c"' in page
        edited = client.post(
            f"/console/keys/{key['id']}", data={"name": "teamed", "cache_namespace": " ", "csrf_token": token}
        )
        assert edited.status_code == 303
    assert gw.get(f"/keys/{key['id']}").json()["cache_namespace"] == key["id"]


def test_failed_sign_ins_are_limited_per_client_address(tmp_path: Path) -> None:
    harness = ConsoleHarness(tmp_path, extra_config="ui:\n  login_failures_per_minute: 3\n").start()
    try:
        with _browser(harness) as client:
            for _ in range(3):
                assert _sign_in(client, "sk-sr-guess-0123456789").status_code == 401
            # The limit holds for any key, the right one too, and says what to do.
            limited = _sign_in(client, ADMIN_KEY)
            assert limited.status_code == 429
            assert "Too many failed sign-ins" in limited.text
            assert 1 <= int(limited.headers["retry-after"]) <= 60
            assert limited.headers["x-frame-options"] == "DENY"
            assert "set-cookie" not in limited.headers
            assert client.get("/console/").status_code == 303
        # Another address is not held back by this one's failures.
        other = httpx.Client(
            base_url=harness.root_url,
            follow_redirects=False,
            timeout=10,
            transport=httpx.HTTPTransport(local_address="127.0.0.2"),
        )
        with other:
            assert _sign_in(other, ADMIN_KEY).status_code == 303
    finally:
        harness.stop()
