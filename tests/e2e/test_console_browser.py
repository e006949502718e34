"""The console in a real headless Chromium (Debian's `chromium`, driven by Playwright for Python).

Each test signs in through the login page as a person would, and checks what the page shows against
what the gateway did (requests made through the OpenAI SDK, fallbacks forced on the fake upstream).
Screenshots of every page go to test-artifacts/console/ (SIRAYA_TEST_ARTIFACTS overrides), at
1280x800 and at phone width. Every page is also watched for Content-Security-Policy violations and
script errors: the strict policy must not break the console itself.

Skipped, with the reason, when chromium or Playwright is missing. Never run `playwright install`:
it downloads browsers of its own; these tests use the system's /usr/bin/chromium.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.e2e.console_harness import ADMIN_KEY, ALPHA_FIRST, ConsoleHarness
from tests.fakes.openai_upstream import Fault

CHROMIUM = os.environ.get("SIRAYA_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(
    os.environ.get("SIRAYA_TEST_ARTIFACTS", Path(__file__).resolve().parents[2] / "test-artifacts")
)
SHOTS = ARTIFACTS / "console"
DESKTOP: Any = {"width": 1280, "height": 800}
PHONE: Any = {"width": 390, "height": 844}
CHAT = "/v1/chat/completions"

try:
    from playwright.sync_api import Browser, Page, expect, sync_playwright
except ImportError:  # pragma: no cover - the skip below says why
    sync_playwright = None  # type: ignore[assignment]

pytestmark = pytest.mark.skipif(
    sync_playwright is None or shutil.which(CHROMIUM) is None,
    reason=f"needs Playwright for Python and Debian's chromium at {CHROMIUM} (apt-get install chromium)",
)


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleHarness]:
    harness = ConsoleHarness(Path(tmp_path_factory.mktemp("console"))).start()
    try:
        yield harness
    finally:
        harness.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:  # type: ignore[misc]
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


class Watched:
    """A page whose script errors, CSP violations and failed page assets are collected.

    A document or fetch answered with an error status is not a problem in itself (tests provoke
    403s and 401s on purpose and check them); a script, stylesheet or image that fails to load is.
    """

    ASSETS = ("script", "stylesheet", "image", "font")

    def __init__(self, page: Page) -> None:
        self.page = page
        self.problems: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.problems.append(f"script error: {error}"))
        page.on("response", self._response)

    def _console(self, message: Any) -> None:
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.problems.append(f"{message.text} ({message.location.get('url')})")

    def _response(self, response: Any) -> None:
        if response.status >= 400 and response.request.resource_type in self.ASSETS:
            self.problems.append(f"{response.status} for {response.url}")

    def shot(self, name: str) -> None:
        self.page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)

    def clean(self) -> None:
        assert self.problems == [], self.problems


@pytest.fixture
def page(browser: Browser) -> Iterator[Watched]:
    context = browser.new_context(viewport=DESKTOP)
    watched = Watched(context.new_page())
    try:
        yield watched
    finally:
        context.close()
    watched.clean()


def sign_in(page: Page, gw: ConsoleHarness, key: str) -> None:
    page.goto(gw.root_url + "/")
    expect(page).to_have_url(re.compile(r"/console/login$"))
    page.get_by_label("Admin key or API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/console/$"))


def chat(gw: ConsoleHarness, secret: str, model: str = "solo-beta", **extra: Any) -> str:
    raw = gw.client(secret).chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": "hi"}], extra_body=extra or None
    )
    raw.parse()
    return raw.headers["x-request-id"]


def test_sign_in_and_the_overview_charts_draw_the_traffic(gw: ConsoleHarness, page: Watched) -> None:
    _, secret = gw.new_key("overview-traffic")
    for _ in range(3):
        chat(gw, secret)
    gw.alpha.inject(Fault(path=CHAT, status=500))
    with pytest.raises(openai.APIStatusError):
        chat(gw, secret, "solo-alpha")

    sign_in(page.page, gw, ADMIN_KEY)
    view = page.page
    expect(view.get_by_role("heading", name="Overview")).to_be_visible()
    assert int(view.locator("#total-requests").inner_text().replace(",", "")) >= 4
    assert int(view.locator("#total-errors").inner_text().replace(",", "")) >= 1
    view.get_by_role("link", name="Last hour").click()
    expect(view).to_have_url(re.compile(r"range=hour"))
    for name in ("requests", "cost", "errors", "p95"):
        canvas = view.locator(f'canvas[data-chart="{name}"]')
        # console.js marks each chart with how many of its buckets hold data once Chart.js drew it.
        expect(canvas).to_have_attribute("data-rendered", re.compile(r"^[1-9]"))
        box = canvas.bounding_box()
        assert box is not None and box["width"] > 200 and box["height"] > 100
    expect(view.locator("table").get_by_role("rowheader", name="solo-beta")).to_be_visible()
    page.shot("overview")


def test_a_key_is_created_used_logged_with_its_waterfall_and_revoked(
    gw: ConsoleHarness, page: Watched
) -> None:
    view = page.page
    sign_in(view, gw, ADMIN_KEY)
    view.get_by_role("link", name="Keys").click()
    view.get_by_text("Create a key").click()
    form = view.locator("#create-key")
    form.get_by_label("Name", exact=True).fill("browser-made")
    form.get_by_label("Credit limit (USD)").fill("5")
    form.get_by_label("duo", exact=True).check()
    form.get_by_label("solo-beta", exact=True).check()
    form.get_by_role("button", name="Create key").click()
    secret_field = view.locator("#new-secret")
    expect(secret_field).to_be_visible()
    secret = secret_field.input_value()
    assert secret.startswith("sk-sr-")
    page.shot("keys-secret-shown-once")
    view.reload()  # a reload is a GET: the secret is not there any more
    assert secret not in view.content()
    row = view.locator("tr", has_text="browser-made")
    expect(row).to_contain_text("active")
    key_id = row.get_attribute("data-key-id")
    assert key_id

    # Requests with the new key through the SDK: one plain, one that falls back from alpha to beta.
    plain = chat(gw, secret, "duo")
    gw.alpha.inject(Fault(path=CHAT, status=500))
    fallback = chat(gw, secret, "duo", **ALPHA_FIRST)

    view.get_by_role("link", name="Logs").click()
    view.get_by_label("Key id").fill(key_id)
    view.get_by_role("button", name="Filter").click()
    expect(view).to_have_url(re.compile(f"key={key_id}"))
    entries = view.locator("details[data-request-id]")
    expect(entries).to_have_count(2)
    assert entries.nth(0).get_attribute("data-request-id") == fallback
    assert entries.nth(1).get_attribute("data-request-id") == plain
    entry = entries.nth(0)
    expect(entry).to_contain_text("2 attempts")
    entry.locator("summary").click()
    attempts = entry.locator("tr.attempt")
    expect(attempts).to_have_count(2)
    expect(attempts.nth(0)).to_contain_text("alpha / gpt-4o-mini")
    expect(attempts.nth(0)).to_contain_text("failed: provider_error (502)")
    expect(attempts.nth(1)).to_contain_text("beta / gpt-4o-mini")
    expect(attempts.nth(1)).to_contain_text("served")
    first_bar, second_bar = (attempts.nth(i).locator("rect.span") for i in (0, 1))
    assert float(second_bar.get_attribute("x") or 0) >= float(first_bar.get_attribute("x") or 0)
    expect(entry).to_contain_text(fallback)
    page.shot("logs")

    # The key's page: its spend chart has data; revoking it stops its requests.
    view.goto(f"{gw.root_url}/console/keys/{key_id}")
    expect(view.locator('canvas[data-chart="cost"]')).to_have_attribute(
        "data-rendered", re.compile(r"^[1-9]")
    )
    page.shot("key")
    settings = view.locator("#edit-key")
    settings.get_by_label("Requests per minute").fill("7")
    settings.get_by_label("Credit limit (USD)").fill("")
    settings.get_by_role("button", name="Save settings").click()
    expect(settings.get_by_label("Requests per minute")).to_have_value("7")
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    saved = httpx.get(f"{gw.base_url}/keys/{key_id}", headers=admin).json()
    assert (saved["rpm_limit"], saved["credit_limit"], saved["allowed_models"]) == (
        7,
        None,
        ["duo", "solo-beta"],
    )
    view.get_by_role("button", name="Rotate secret").click()
    rotated = view.locator("#new-secret").input_value()
    assert rotated.startswith("sk-sr-") and rotated != secret
    with pytest.raises(openai.AuthenticationError):
        chat(gw, secret, "duo")
    secret = rotated
    chat(gw, secret, "duo")
    view.get_by_role("button", name="Revoke key").click()
    expect(view.get_by_role("heading", name=re.compile("browser-made"))).to_contain_text("revoked")
    with pytest.raises(openai.AuthenticationError):
        chat(gw, secret, "duo")
    view.get_by_role("link", name="Audit log").click()
    expect(view.locator("tr", has_text="key.revoke").first).to_contain_text("console")
    page.shot("audit")


def test_the_playground_streams_an_answer_with_its_cost(gw: ConsoleHarness, page: Watched) -> None:
    _, secret = gw.new_key("playground")
    view = page.page
    sign_in(view, gw, ADMIN_KEY)
    view.get_by_role("link", name="Playground").click()
    view.get_by_label("Model").select_option("solo-beta")
    view.get_by_label(re.compile("^Key")).fill(secret)
    view.get_by_label("Message").fill("Tell me something short.")
    view.get_by_role("button", name="Send").click()
    answer = view.locator("#answer")
    expect(answer).to_have_attribute("data-done", "1")
    assert answer.inner_text().strip()
    expect(view.locator("#answer-usage")).to_be_visible()
    expect(view.locator("#usage-provider")).to_contain_text("beta")
    assert view.locator("#usage-cost").inner_text().startswith("$")
    assert secret not in view.content()
    page.shot("playground")

    # The admin key itself cannot chat: the page says so instead of answering.
    view.get_by_label(re.compile("^Key")).fill("")
    view.get_by_role("button", name="Send").click()
    expect(view.locator("#answer-error")).to_contain_text("API key")


def test_a_user_key_sees_only_its_own_usage_and_no_admin_page(gw: ConsoleHarness, page: Watched) -> None:
    _, mine = gw.new_key("reader")
    _, theirs = gw.new_key("someone")
    my_request = chat(gw, mine)
    their_request = chat(gw, theirs)
    view = page.page
    sign_in(view, gw, mine)
    expect(view.get_by_text("Key reader (read-only)")).to_be_visible()
    nav = view.get_by_role("navigation", name="Console")
    expect(nav.get_by_role("link", name="Keys")).to_have_count(0)
    expect(nav.get_by_role("link", name="Audit log")).to_have_count(0)
    assert view.locator("#total-requests").inner_text() == "1"
    for path in ("/console/keys", "/console/audit"):
        response = view.goto(gw.root_url + path)
        assert response is not None and response.status == 403
        expect(view.get_by_role("heading", name="Admin only")).to_be_visible()
    page.shot("user-admin-page-refused")
    view.goto(gw.root_url + "/console/logs")
    ids = view.locator("details[data-request-id]").evaluate_all("(all) => all.map(d => d.dataset.requestId)")
    assert ids == [my_request] and their_request not in view.content()
    page.shot("user-logs")
    # A mutating POST of the admin's kind is refused for a user session, token or not.
    token = view.locator('input[name="csrf_token"]').first.input_value()
    refused = view.request.post(gw.root_url + "/console/keys", form={"csrf_token": token, "name": "sneaky"})
    assert refused.status == 403


def test_a_mutating_post_without_the_csrf_token_is_refused(gw: ConsoleHarness, page: Watched) -> None:
    view = page.page
    sign_in(view, gw, ADMIN_KEY)
    forms: list[Any] = [{"name": "forged"}, {"name": "forged", "csrf_token": "not-the-token"}]
    for form in forms:
        response = view.request.post(gw.root_url + "/console/keys", form=form)
        assert response.status == 403
        assert "CSRF" in response.text()
    key_id, _ = gw.new_key("target")
    forged_revoke = view.request.post(f"{gw.root_url}/console/keys/{key_id}/revoke", form={})
    assert forged_revoke.status == 403
    names = [
        key["name"]
        for key in httpx.get(gw.base_url + "/keys", headers={"Authorization": f"Bearer {ADMIN_KEY}"}).json()[
            "data"
        ]
    ]
    assert "forged" not in names
    state = httpx.get(
        gw.base_url + f"/keys/{key_id}", headers={"Authorization": f"Bearer {ADMIN_KEY}"}
    ).json()
    assert state["revoked_at"] is None


def test_every_console_response_carries_the_security_headers(gw: ConsoleHarness, page: Watched) -> None:
    view = page.page
    login = view.goto(gw.root_url + "/console/login")
    assert login is not None
    headers = login.headers
    assert "default-src 'none'" in headers["content-security-policy"]
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "no-referrer"
    cookie = next(c for c in view.context.cookies() if c["name"] == "siraya_console")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    sign_in(view, gw, ADMIN_KEY)
    cookie = next(c for c in view.context.cookies() if c["name"] == "siraya_console")
    assert ADMIN_KEY not in cookie["value"] and ADMIN_KEY not in view.content()
    for path in (
        "/console/",
        "/console/logs",
        "/console/models",
        "/console/static/console.js",
        "/console/missing",
    ):
        response = view.goto(gw.root_url + path)
        assert response is not None
        assert response.headers["x-frame-options"] == "DENY", path
        assert response.headers["content-security-policy"].startswith("default-src 'none'"), path
    view.goto(gw.root_url + "/console/models")
    expect(view.get_by_role("rowheader", name="alpha/gpt-guarded")).to_be_visible()
    page.shot("models")


def test_phone_width_and_the_keyboard(gw: ConsoleHarness, browser: Browser) -> None:
    context = browser.new_context(viewport=PHONE)
    page = Watched(context.new_page())
    try:
        view = page.page
        sign_in(view, gw, ADMIN_KEY)
        # The first Tab reaches the skip link, which takes the keyboard past the navigation.
        view.keyboard.press("Tab")
        skip = view.get_by_role("link", name="Skip to the content")
        expect(skip).to_be_focused()
        view.keyboard.press("Enter")
        expect(view.locator("#main")).to_be_focused()
        for path, name in (
            ("/console/", "phone-overview"),
            ("/console/logs", "phone-logs"),
            ("/console/keys", "phone-keys"),
        ):
            view.goto(gw.root_url + path)
            overflow = view.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 1, f"{path} is {overflow}px wider than the phone"
            page.shot(name)
        # Keyboard only: a log entry opens with Enter on its summary.
        chat(gw, gw.new_key("keyboard")[1])
        view.goto(gw.root_url + "/console/logs")
        summary = view.locator("details[data-request-id] summary").first
        summary.focus()
        view.keyboard.press("Enter")
        expect(view.locator("details[data-request-id]").first).to_have_attribute("open", "")
        page.clean()
    finally:
        context.close()


def test_stored_prompts_and_answers_show_in_the_log_entry(
    tmp_path_factory: pytest.TempPathFactory, browser: Browser
) -> None:
    """With `observability.store_bodies: true` a log entry opens to its prompt and answer too."""
    harness = ConsoleHarness(
        Path(tmp_path_factory.mktemp("console-bodies")), extra_config="observability:\n  store_bodies: true\n"
    ).start()
    context = browser.new_context(viewport=DESKTOP)
    page = Watched(context.new_page())
    try:
        request_id = chat(harness, harness.new_key("bodies")[1])
        view = page.page
        sign_in(view, harness, ADMIN_KEY)
        view.get_by_role("link", name="Logs").click()
        entry = view.locator(f'details[data-request-id="{request_id}"]')
        entry.locator("summary").click()
        expect(entry.locator("pre.prompt-text")).to_have_text("user: hi")
        expect(entry.locator("pre.answer-text")).to_have_text("echo: hi")
        page.shot("logs-with-bodies")
        page.clean()
    finally:
        context.close()
        harness.stop()
