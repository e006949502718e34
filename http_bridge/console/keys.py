"""The console's key administration (admin key only): list, create, edit every limit, revoke, rotate.

Forms are turned into the same bodies POST and PATCH /v1/keys take (accounts_routes.key_spec and
key_update check them), then sent to KeysService with the admin's key; the service writes each
action to the audit log with the console as its door. A new or rotated secret is rendered into the
response to that POST only (no redirect, never cached): it is shown once.
"""

from __future__ import annotations

import calendar
import datetime
import time
from typing import Any

from aiohttp import web

from http_bridge.accounts_routes import KEY_FIELDS, key_spec, key_update
from http_bridge.console.charts import RANGES, series
from http_bridge.console.frame import CONSOLE, PREFIX, SESSION, admin_page, form_data, redirect, render
from http_bridge.console.session import Session
from server.errors import InvalidRequest
from siraya.router.v1 import admin_pb2, models_pb2

__all__ = ["add_key_pages"]

SPEND_DAYS = 7


def _number(fields: dict[str, Any], name: str, *, integer: bool) -> int | float | None:
    text = str(fields.get(name, "")).strip()
    if not text:
        return None
    try:
        return int(text) if integer else float(text)
    except ValueError:
        kind = "a whole number" if integer else "a number"
        raise InvalidRequest(f"'{name}' must be {kind}.", param=name, code="invalid_type") from None


def _expiry(text: str) -> int | None:
    """A date (YYYY-MM-DD) as the unix time of the end of that day, UTC."""
    text = text.strip()
    if not text:
        return None
    try:
        day = datetime.date.fromisoformat(text)
    except ValueError:
        raise InvalidRequest(
            "'expires_at' must be a date.", param="expires_at", code="invalid_value"
        ) from None
    return calendar.timegm(day.timetuple()) + 86399


def key_body(fields: dict[str, Any]) -> dict[str, Any]:
    """The JSON body of /v1/keys that a console form says: empty inputs are nulls."""
    models = fields.get("allowed_models", [])
    body: dict[str, Any] = {
        "name": str(fields.get("name", "")).strip(),
        "allowed_models": models if isinstance(models, list) else [models],
        "credit_limit": _number(fields, "credit_limit", integer=False),
        "rpm_limit": _number(fields, "rpm_limit", integer=True),
        "tpm_limit": _number(fields, "tpm_limit", integer=True),
        "expires_at": _expiry(str(fields.get("expires_at", ""))),
        # Empty: the key's own namespace (its cached answers are its alone).
        "cache_namespace": str(fields.get("cache_namespace", "")).strip() or None,
    }
    # A key's team and budget are not on the form: an edit here leaves them as they are.
    assert set(body) == set(KEY_FIELDS) - {"team_id", "budget"}
    return body


def _key_view(key: admin_pb2.KeyInfo, spend: float = 0.0) -> dict[str, Any]:
    now = time.time()
    state = "active"
    if key.HasField("revoked_at"):
        state = "revoked"
    elif key.HasField("expires_at") and key.expires_at <= now:
        state = "expired"
    return {
        "id": key.id,
        "name": key.name,
        "prefix": key.prefix,
        "state": state,
        "created_at": key.created_at,
        "expires_at": key.expires_at if key.HasField("expires_at") else None,
        "expires_date": (
            datetime.datetime.fromtimestamp(key.expires_at, tz=datetime.UTC).date().isoformat()
            if key.HasField("expires_at")
            else ""
        ),
        "allowed_models": list(key.allowed_models),
        "credit_limit": key.credit_limit if key.HasField("credit_limit") else None,
        "credit_used": key.credit_used,
        "rpm_limit": key.rpm_limit if key.HasField("rpm_limit") else None,
        "tpm_limit": key.tpm_limit if key.HasField("tpm_limit") else None,
        "cache_namespace": key.cache_namespace,
        "spend": spend,
    }


async def _model_ids(request: web.Request, session: Session) -> list[str]:
    console = request.app[CONSOLE]
    reply = await console.stubs(request).models.ListModels(
        models_pb2.ListModelsRequest(), metadata=console.metadata(request, session.key)
    )
    return [model.id for model in reply.data]


def _shown_once(request: web.Request, response: web.StreamResponse) -> None:
    """Drop the session's flash (the secret a page just showed) with this response's cookie."""
    session = request[SESSION]
    if session.flash is not None:
        request.app[CONSOLE].set_session(response, request, session.with_flash(None))


def _flashed(request: web.Request, location: str, flash: dict[str, str]) -> web.StreamResponse:
    """Redirect to `location`, whose page shows `flash` once."""
    response = redirect(location)
    request.app[CONSOLE].set_session(response, request, request[SESSION].with_flash(flash))
    return response


async def _keys_page(request: web.Request) -> web.StreamResponse:
    console = request.app[CONSOLE]
    session = request[SESSION]
    stubs, metadata = console.stubs(request), console.metadata(request, session.key)
    keys = await stubs.keys.ListKeys(admin_pb2.ListKeysRequest(), metadata=metadata)
    now = time.time()
    spent = await stubs.usage.GetUsage(
        admin_pb2.GetUsageRequest(
            filter=admin_pb2.GenerationFilter(since=now - SPEND_DAYS * 86400, until=now),
            group_by=admin_pb2.USAGE_GROUP_KEY,
        ),
        metadata=metadata,
    )
    spend = {row.group: row.cost for row in spent.rows}
    views = [_key_view(key, spend.get(key.id, 0.0)) for key in keys.keys]
    views.sort(key=lambda view: (view["state"] != "active", -view["created_at"]))
    flash = session.flash
    response = render(
        request,
        "keys.html",
        session=session,
        active="keys",
        keys=views,
        models=await _model_ids(request, session),
        created=flash if flash and flash.get("kind") == "created" else None,
        spend_days=SPEND_DAYS,
    )
    _shown_once(request, response)
    return response


@admin_page
async def keys_page(request: web.Request) -> web.StreamResponse:
    return await _keys_page(request)


@admin_page
async def create_key(request: web.Request) -> web.StreamResponse:
    console = request.app[CONSOLE]
    session = request[SESSION]
    spec = key_spec(key_body(await form_data(request)))
    reply = await console.stubs(request).keys.CreateKey(
        admin_pb2.CreateKeyRequest(spec=spec), metadata=console.metadata(request, session.key)
    )
    flash = {"kind": "created", "id": reply.key.id, "name": reply.key.name, "secret": reply.secret}
    return _flashed(request, f"{PREFIX}/keys", flash)


async def _key_page(request: web.Request, key_id: str) -> web.StreamResponse:
    console = request.app[CONSOLE]
    session = request[SESSION]
    stubs, metadata = console.stubs(request), console.metadata(request, session.key)
    reply = await stubs.keys.GetKey(admin_pb2.GetKeyRequest(id=key_id), metadata=metadata)
    span = RANGES["month"]
    until = time.time()
    since = until - span.seconds
    window = admin_pb2.GenerationFilter(key_id=key_id, since=since, until=until)
    daily = await stubs.usage.GetUsage(
        admin_pb2.GetUsageRequest(filter=window, bucket=span.bucket), metadata=metadata
    )
    by_model = await stubs.usage.GetUsage(
        admin_pb2.GetUsageRequest(filter=window, group_by=admin_pb2.USAGE_GROUP_MODEL), metadata=metadata
    )
    view = _key_view(reply.key, sum(row.cost for row in by_model.rows))
    flash = session.flash
    rotated = flash if flash and flash.get("kind") == "rotated" and flash.get("id") == key_id else None
    response = render(
        request,
        "key.html",
        session=session,
        active="keys",
        key=view,
        models=await _model_ids(request, session),
        chart=series(daily.rows, since, until, span),
        by_model=sorted(by_model.rows, key=lambda row: -row.cost),
        secret=rotated["secret"] if rotated else None,
    )
    _shown_once(request, response)
    return response


@admin_page
async def key_page(request: web.Request) -> web.StreamResponse:
    return await _key_page(request, request.match_info["key_id"])


@admin_page
async def update_key(request: web.Request) -> web.StreamResponse:
    console = request.app[CONSOLE]
    session = request[SESSION]
    key_id = request.match_info["key_id"]
    update = key_update(key_id, key_body(await form_data(request)))
    await console.stubs(request).keys.UpdateKey(update, metadata=console.metadata(request, session.key))
    return redirect(f"{PREFIX}/keys/{key_id}")


@admin_page
async def revoke_key(request: web.Request) -> web.StreamResponse:
    console = request.app[CONSOLE]
    session = request[SESSION]
    await form_data(request)
    key_id = request.match_info["key_id"]
    await console.stubs(request).keys.RevokeKey(
        admin_pb2.RevokeKeyRequest(id=key_id), metadata=console.metadata(request, session.key)
    )
    return redirect(f"{PREFIX}/keys/{key_id}")


@admin_page
async def rotate_key(request: web.Request) -> web.StreamResponse:
    console = request.app[CONSOLE]
    session = request[SESSION]
    await form_data(request)
    key_id = request.match_info["key_id"]
    reply = await console.stubs(request).keys.RotateKey(
        admin_pb2.RotateKeyRequest(id=key_id), metadata=console.metadata(request, session.key)
    )
    flash = {"kind": "rotated", "id": key_id, "name": reply.key.name, "secret": reply.secret}
    return _flashed(request, f"{PREFIX}/keys/{key_id}", flash)


def add_key_pages(app: web.Application) -> None:
    app.router.add_get(f"{PREFIX}/keys", keys_page)
    app.router.add_post(f"{PREFIX}/keys", create_key)
    app.router.add_get(f"{PREFIX}/keys/{{key_id}}", key_page)
    app.router.add_post(f"{PREFIX}/keys/{{key_id}}", update_key)
    app.router.add_post(f"{PREFIX}/keys/{{key_id}}/revoke", revoke_key)
    app.router.add_post(f"{PREFIX}/keys/{{key_id}}/rotate", rotate_key)
