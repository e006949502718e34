"""What every console page shares: its security headers, the session on the request, the API calls
made with the session's key, and rendering.

The console is one more client of the gateway's API: every page calls the same gRPC services the
REST routes call (through the bridge's stubs, in-process or over gRPC) with the logged-in key, so
what a page shows is exactly what that key may see through /v1.
"""

from __future__ import annotations

import datetime
import functools
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import jinja2
from aiohttp import web

from http_bridge.console.login_throttle import LoginThrottle
from http_bridge.console.session import COOKIE, Session, SessionSealer
from http_bridge.errors import as_gateway_error
from server.errors import AuthenticationFailed, GatewayError, PermissionDenied
from server.observability.ids import BRIDGE_TOKEN

__all__ = [
    "CONSOLE",
    "SESSION",
    "PREFIX",
    "SECURITY_HEADERS",
    "Console",
    "admin_page",
    "form_data",
    "page",
    "redirect",
    "render",
]

logger = logging.getLogger("siraya.console")

PREFIX = "/console"
# Strict: only this origin's own scripts, styles and connections; no inline script or style, no
# eval, no framing, no plugin, no form posting elsewhere.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self';"
    " form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cache-Control": "no-store",
}
TEMPLATES = Path(__file__).parent / "templates"
NAVIGATION = (
    ("overview", "Overview", "/console/", False),
    ("keys", "Keys", "/console/keys", True),
    ("logs", "Logs", "/console/logs", False),
    ("models", "Models and providers", "/console/models", False),
    ("playground", "Playground", "/console/playground", False),
    ("audit", "Audit log", "/console/audit", True),
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Console:
    """The console's state on the app: the bridge's stubs, the session sealer and the templates."""

    def __init__(
        self,
        stubs_key: Any,
        sealer: SessionSealer,
        request_id_of: Callable[[web.Request], str],
        login_throttle: LoginThrottle | None = None,
    ) -> None:
        self.stubs_key = stubs_key
        self.sealer = sealer
        self.request_id_of = request_id_of
        self.login_throttle = login_throttle or LoginThrottle()
        self.templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(TEMPLATES),
            autoescape=True,
        )
        self.templates.filters.update(when=_when, usd=_usd, ms=_ms, number=_number)

    def stubs(self, request: web.Request) -> Any:
        return request.app[self.stubs_key]

    def metadata(self, request: web.Request, key: str | None) -> list[tuple[str, str]]:
        """The metadata the bridge sends for its own calls, with `key` as the caller."""
        metadata = [
            ("x-request-id", self.request_id_of(request)),
            ("x-siraya-bridge", BRIDGE_TOKEN),
            ("x-siraya-client-address", request.remote or ""),
            ("x-siraya-via", "console"),
        ]
        if key is not None:
            metadata.append(("authorization", f"Bearer {key}"))
        return metadata

    def session(self, request: web.Request) -> Session | None:
        return self.sealer.open(request.cookies.get(COOKIE))

    def set_session(self, response: web.StreamResponse, request: web.Request, session: Session) -> None:
        response.set_cookie(
            COOKIE,
            self.sealer.seal(session),
            max_age=int(self.sealer.lifetime),
            path=PREFIX,
            httponly=True,
            samesite="Strict",
            secure=request.secure,
        )

    def clear_session(self, response: web.StreamResponse) -> None:
        response.del_cookie(COOKIE, path=PREFIX)


CONSOLE = web.AppKey("console", Console)
# The signed-in session of a request a `page` handler serves.
SESSION = web.RequestKey("console_session", Session)


def render(
    request: web.Request,
    template: str,
    *,
    status: int = 200,
    session: Session | None = None,
    active: str = "",
    **values: Any,
) -> web.Response:
    console = request.app[CONSOLE]
    navigation = [
        {"id": ident, "label": label, "href": href}
        for ident, label, href, admin_only in NAVIGATION
        if session is not None and (session.admin or not admin_only)
    ]
    body = console.templates.get_template(template).render(
        session=session, navigation=navigation, active=active, **values
    )
    return web.Response(text=body, status=status, content_type="text/html", headers=SECURITY_HEADERS)


def redirect(location: str) -> web.Response:
    """A 303 to `location` (a path of the console), with the security headers."""
    return web.Response(status=303, headers={**SECURITY_HEADERS, "Location": location})


def secured(response: web.StreamResponse) -> web.StreamResponse:
    """Put the security headers on a response not yet sent."""
    if not response.prepared:
        response.headers.update(SECURITY_HEADERS)
    return response


def page(*, admin: bool = False) -> Callable[[Handler], Handler]:
    """A console route: it needs a signed-in session (an admin's with `admin`), gets every security
    header, and turns API errors into pages (a key no longer valid ends the session)."""

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def wrapper(request: web.Request) -> web.StreamResponse:
            console = request.app[CONSOLE]
            session = console.session(request)
            if session is None or not session.signed_in:
                if request.method == "GET":
                    return redirect(f"{PREFIX}/login")
                return render(request, "error.html", status=401, message="Sign in first.")
            if admin and not session.admin:
                return render(
                    request,
                    "error.html",
                    status=403,
                    session=session,
                    message="This page needs the admin key. You are signed in with a user key, which can see"
                    " only its own usage.",
                )
            request[SESSION] = session
            try:
                return secured(await handler(request))
            except (grpc.aio.AioRpcError, GatewayError) as raised:
                error = as_gateway_error(raised)
                if isinstance(error, AuthenticationFailed):
                    response = redirect(f"{PREFIX}/login?ended=1")
                    console.clear_session(response)
                    return response
                status = 403 if isinstance(error, PermissionDenied) else error.kind.http_status
                return render(request, "error.html", status=status, session=session, message=error.message)
            except Exception:
                logger.exception("console page %s failed", request.path)
                return render(
                    request,
                    "error.html",
                    status=500,
                    session=session,
                    message="The console failed to show this page.",
                )

        return wrapper

    return decorate


def admin_page(handler: Handler) -> Handler:
    return page(admin=True)(handler)


async def form_data(request: web.Request) -> dict[str, Any]:
    """A POST's form fields (repeated fields as lists), after checking its CSRF token."""
    session = request[SESSION]
    form = await request.post()
    fields: dict[str, Any] = {}
    for name in form:
        values = form.getall(name)
        fields[name] = values if len(values) > 1 else values[0]
    token = request.headers.get("X-CSRF-Token") or fields.get("csrf_token")
    if not session.csrf_matches(token if isinstance(token, str) else None):
        raise CsrfRefused()
    return fields


class CsrfRefused(PermissionDenied):
    def __init__(self) -> None:
        super().__init__(
            "This form was not sent by the console page (its CSRF token is missing or wrong): reload the page"
            " and try again.",
            code="csrf_failed",
        )


def _when(value: float | None) -> str:
    if not value:
        return "—"
    moment = datetime.datetime.fromtimestamp(value, tz=datetime.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _usd(value: float | None) -> str:
    if value is None:
        return "—"
    if value == 0:
        return "$0"
    if abs(value) < 0.01:
        return f"${value:.6f}".rstrip("0")
    return f"${value:,.2f}"


def _ms(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:,.0f} ms" if value >= 10 else f"{value:.1f} ms"


def _number(value: float | None) -> str:
    return "—" if value is None else f"{value:,}"
