"""The console's read-only pages: overview, logs, models and providers, audit log; and signing in.

Each page asks the API (UsageService, ModelsService, ...) with the session's key and renders what
comes back. A user key's pages show only its own usage because that is all the API gives it.
"""

from __future__ import annotations

import math
import time
from typing import Any

import grpc
from aiohttp import web

from http_bridge.console.charts import RANGES, series
from http_bridge.console.frame import CONSOLE, PREFIX, SESSION, admin_page, page, redirect, render
from http_bridge.console.session import Session
from http_bridge.errors import as_gateway_error
from http_bridge.usage_routes import audit_event_json, deployment_json, generation_filter
from server.errors import AuthenticationFailed, GatewayError
from siraya.router.codec import models as models_codec
from siraya.router.codec.generations import generation_json
from siraya.router.v1 import admin_pb2, models_pb2

__all__ = ["add_pages"]

LOG_PAGE = 50
LOG_FILTERS = ("key", "model", "provider", "status", "since")
SINCE_CHOICES = (
    ("1h", "Last hour"),
    ("24h", "Last day"),
    ("7d", "Last week"),
    ("30d", "Last 30 days"),
    ("", "All"),
)
STATUS_CHOICES = (
    ("", "Any"),
    ("success", "Success"),
    ("error", "Error"),
    ("cancelled", "Cancelled"),
    ("4xx", "4xx"),
    ("5xx", "5xx"),
    ("429", "429"),
)


# signing in


async def login_page(request: web.Request) -> web.StreamResponse:
    console = request.app[CONSOLE]
    session = console.session(request)
    if session is not None and session.signed_in:
        return redirect(f"{PREFIX}/")
    anonymous = session or console.sealer.anonymous()
    ended = "ended" in request.query
    response = render(
        request,
        "login.html",
        csrf=anonymous.csrf,
        message="Your session ended: sign in again." if ended else None,
    )
    console.set_session(response, request, anonymous)
    return response


async def login(request: web.Request) -> web.StreamResponse:
    console = request.app[CONSOLE]
    session = console.session(request)
    address = request.remote or ""
    wait = console.login_throttle.retry_after(address)
    if wait is not None:
        seconds = max(1, math.ceil(wait))
        response = render(
            request,
            "login.html",
            status=429,
            csrf=(session or console.sealer.anonymous()).csrf,
            message=f"Too many failed sign-ins from your address: wait {seconds} seconds and try again.",
        )
        response.headers["Retry-After"] = str(seconds)
        return response
    form = await request.post()
    key = str(form.get("key", "")).strip()
    token = form.get("csrf_token")
    if session is None or not session.csrf_matches(token if isinstance(token, str) else None):
        return render(
            request,
            "login.html",
            status=403,
            csrf=(session or console.sealer.anonymous()).csrf,
            message="The sign-in form expired: reload the page and try again.",
        )
    try:
        signed_in = await _identify(request, key)
    except GatewayError as error:
        if isinstance(error, AuthenticationFailed):
            console.login_throttle.failed(address)
        return render(request, "login.html", status=401, csrf=session.csrf, message=error.message)
    response = redirect(f"{PREFIX}/")
    console.set_session(response, request, signed_in)
    return response


async def _identify(request: web.Request, key: str) -> Session:
    """The session for `key`: the admin's when the key administration API takes it, a user's when
    the key's own view does; AuthenticationFailed otherwise."""
    console = request.app[CONSOLE]
    if not key:
        raise AuthenticationFailed("Enter the admin key or one of your API keys.")
    stubs = console.stubs(request)
    metadata = console.metadata(request, key)
    try:
        await stubs.keys.ListKeys(admin_pb2.ListKeysRequest(), metadata=metadata)
        return console.sealer.signed_in(key, "admin", None, "admin")
    except (grpc.aio.AioRpcError, GatewayError):
        pass
    try:
        reply = await stubs.account.GetCurrentKey(admin_pb2.GetCurrentKeyRequest(), metadata=metadata)
    except (grpc.aio.AioRpcError, GatewayError) as raised:
        error = as_gateway_error(raised)
        if isinstance(error, AuthenticationFailed):
            raise AuthenticationFailed(
                "That key was not accepted: it is unknown, revoked or expired."
            ) from None
        raise error from None
    return console.sealer.signed_in(key, "user", reply.key.id, reply.key.name)


@page()
async def logout(request: web.Request) -> web.StreamResponse:
    from http_bridge.console.frame import form_data

    await form_data(request)  # checks the CSRF token
    response = redirect(f"{PREFIX}/login")
    request.app[CONSOLE].clear_session(response)
    return response


# overview


@page()
async def overview(request: web.Request) -> web.StreamResponse:
    console = request.app[CONSOLE]
    session = request[SESSION]
    choice = request.query.get("range", "day")
    span = RANGES.get(choice, RANGES["day"])
    until = time.time()
    since = until - span.seconds
    stubs, metadata = console.stubs(request), console.metadata(request, session.key)
    window = admin_pb2.GenerationFilter(since=since, until=until)
    bucketed = await stubs.usage.GetUsage(
        admin_pb2.GetUsageRequest(filter=window, bucket=span.bucket), metadata=metadata
    )
    totals = await stubs.usage.GetUsage(admin_pb2.GetUsageRequest(filter=window), metadata=metadata)
    by_model = await stubs.usage.GetUsage(
        admin_pb2.GetUsageRequest(filter=window, group_by=admin_pb2.USAGE_GROUP_MODEL), metadata=metadata
    )
    total = totals.rows[0] if totals.rows else admin_pb2.UsageRow()
    return render(
        request,
        "overview.html",
        session=session,
        active="overview",
        ranges=[(name, r.label) for name, r in RANGES.items() if name != "month"],
        choice=choice if choice in RANGES else "day",
        span=span,
        total=total,
        models=sorted(by_model.rows, key=lambda row: -row.cost),
        chart=series(bucketed.rows, since, until, span),
    )


# logs


@page()
async def logs(request: web.Request) -> web.StreamResponse:
    console = request.app[CONSOLE]
    session = request[SESSION]
    query = {name: request.query[name] for name in LOG_FILTERS if request.query.get(name)}
    if "since" not in request.query:
        query["since"] = "24h"
    if not session.admin:
        query.pop("key", None)
    call = admin_pb2.ListGenerationsRequest(
        filter=generation_filter(query, time.time()), limit=LOG_PAGE, cursor=request.query.get("cursor", "")
    )
    reply = await console.stubs(request).usage.ListGenerations(
        call, metadata=console.metadata(request, session.key)
    )
    records = [_log_row(generation_json(generation)) for generation in reply.generations]
    older = None
    if reply.next_cursor:
        older = {**query, "cursor": reply.next_cursor}
    return render(
        request,
        "logs.html",
        session=session,
        active="logs",
        records=records,
        filters=query,
        older=older,
        since_choices=SINCE_CHOICES,
        status_choices=STATUS_CHOICES,
    )


def _log_row(record: dict[str, Any]) -> dict[str, Any]:
    """A record with its attempts placed on a waterfall: each bar's offset and width in percent of
    the request's whole time, so the page draws it with plain SVG attributes (no inline style)."""
    attempts = record["attempts"]
    span = max([record["latency"] or 0.0, *(a["start_ms"] + a["latency_ms"] for a in attempts)] or [0.0])
    span = span or 1.0
    bars = []
    for attempt in attempts:
        left = min(100.0, max(0.0, attempt["start_ms"] / span * 100))
        width = max(0.5, min(100.0 - left, attempt["latency_ms"] / span * 100))
        bars.append({**attempt, "x": round(left, 2), "width": round(width, 2)})
    return {**record, "bars": bars, "span_ms": span}


# models and providers


@page()
async def models(request: web.Request) -> web.StreamResponse:
    console = request.app[CONSOLE]
    session = request[SESSION]
    stubs, metadata = console.stubs(request), console.metadata(request, session.key)
    catalogue = await stubs.models.ListModels(models_pb2.ListModelsRequest(), metadata=metadata)
    deployments = await stubs.usage.ListProviders(admin_pb2.ListProvidersRequest(), metadata=metadata)
    return render(
        request,
        "models.html",
        session=session,
        active="models",
        models=[_model_view(model) for model in catalogue.data],
        deployments=[deployment_json(status) for status in deployments.deployments],
    )


def _model_view(model: models_pb2.Model) -> dict[str, Any]:
    shown = models_codec.encode_model(model)
    pricing = shown.get("pricing", {})
    return {
        "id": shown["id"],
        "type": shown.get("type"),
        "context_window": shown.get("context_window"),
        "input": pricing.get("input_per_million"),
        "output": pricing.get("output_per_million"),
        "per_image": pricing.get("per_image"),
        "parameters": shown["supported_parameters"],
    }


# audit log


@admin_page
async def audit(request: web.Request) -> web.StreamResponse:
    console = request.app[CONSOLE]
    session = request[SESSION]
    reply = await console.stubs(request).usage.ListAuditEvents(
        admin_pb2.ListAuditEventsRequest(limit=200), metadata=console.metadata(request, session.key)
    )
    return render(
        request,
        "audit.html",
        session=session,
        active="audit",
        events=[audit_event_json(event) for event in reply.events],
    )


def add_pages(app: web.Application) -> None:
    app.router.add_get(f"{PREFIX}/login", login_page)
    app.router.add_post(f"{PREFIX}/login", login)
    app.router.add_post(f"{PREFIX}/logout", logout)
    app.router.add_get(f"{PREFIX}/", overview)
    app.router.add_get(f"{PREFIX}/logs", logs)
    app.router.add_get(f"{PREFIX}/models", models)
    app.router.add_get(f"{PREFIX}/audit", audit)
