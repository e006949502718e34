"""The web console at `/`: keys, spend, the request log with every attempt, models and providers,
and a playground; served by the bridge beside the API, on the same port.

Server-rendered Jinja2 pages with htmx and Chart.js, vendored (static/vendor/, `make console-assets`):
no build step, nothing fetched at run time. Every page is a client of the gateway's own API, called
with the signed-in key (frame.py); sessions are sealed cookies (session.py). Turn it off with
`ui.enabled: false`.

    frame.py       security headers, sessions on requests, API metadata, rendering
    session.py     the sealed session cookie and its CSRF token
    login_throttle.py  failed sign-ins per client address (429 past the limit)
    pages.py       sign in and out, overview, logs, models and providers, audit log
    keys.py        key administration (admin key)
    playground.py  a streamed chat answer through the gateway
    charts.py      usage rows as chart series
"""

from __future__ import annotations

import hashlib
import mimetypes
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from http_bridge.console.frame import CONSOLE, PREFIX, SECURITY_HEADERS, Console, redirect, render
from http_bridge.console.keys import add_key_pages
from http_bridge.console.login_throttle import LoginThrottle
from http_bridge.console.pages import add_pages
from http_bridge.console.playground import add_playground
from http_bridge.console.session import SessionSealer, load_secret

__all__ = ["ConsoleOptions", "add_console", "console_options"]

STATIC = Path(__file__).parent / "static"


@dataclass(frozen=True, slots=True)
class ConsoleOptions:
    secret: bytes
    session_seconds: float
    login_failures_per_minute: int = 10


def console_options(
    session_secret: str | None, data_dir: Path, session_hours: float, login_failures_per_minute: int = 10
) -> ConsoleOptions:
    """The console's settings from `ui:`; the secret from the config, else this machine's file."""
    return ConsoleOptions(
        load_secret(session_secret, data_dir), session_hours * 3600.0, login_failures_per_minute
    )


def _static_files() -> dict[str, tuple[bytes, str, str]]:
    """Every file under static/, read once: {path: (body, content type, etag)}."""
    files: dict[str, tuple[bytes, str, str]] = {}
    for path in sorted(STATIC.rglob("*")):
        if path.is_file():
            body = path.read_bytes()
            kind = mimetypes.guess_type(path.name)[0] or "text/plain"
            if path.suffix == ".md" or path.name in ("VERSIONS", "SHA256SUMS") or "LICENSE" in path.name:
                kind = "text/plain"
            etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
            files[path.relative_to(STATIC).as_posix()] = (body, kind, etag)
    return files


def add_console(
    app: web.Application, stubs_key: Any, options: ConsoleOptions, request_id_of: Callable[[web.Request], str]
) -> None:
    """Serve the console: `/` leads to it, its pages and files live under /console/."""
    app[CONSOLE] = Console(
        stubs_key,
        SessionSealer(options.secret, options.session_seconds),
        request_id_of,
        LoginThrottle(options.login_failures_per_minute),
    )
    files = _static_files()

    async def static(request: web.Request) -> web.StreamResponse:
        found = files.get(request.match_info["path"])
        if found is None:
            return await not_found(request)
        body, kind, etag = found
        headers = {**SECURITY_HEADERS, "Cache-Control": "no-cache", "ETag": etag}
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers=headers)
        charset = "utf-8" if kind.startswith("text/") or kind.endswith("javascript") else None
        return web.Response(body=body, content_type=kind, charset=charset, headers=headers)

    async def root(request: web.Request) -> web.StreamResponse:
        return redirect(f"{PREFIX}/")

    async def not_found(request: web.Request) -> web.StreamResponse:
        console = request.app[CONSOLE]
        return render(
            request, "error.html", status=404, session=console.session(request), message="No such page."
        )

    app.router.add_get("/", root)
    app.router.add_get(PREFIX, root)
    app.router.add_get(f"{PREFIX}/static/{{path:.+}}", static)
    add_pages(app)
    add_key_pages(app)
    add_playground(app)
    app.router.add_route("*", f"{PREFIX}/{{tail:.*}}", not_found)
