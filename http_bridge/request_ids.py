"""A bridge request's ids: the gateway's own (what X-Request-Id answers and the ledger is keyed by)
and the client's, echoed back when it is short printable ASCII."""

from __future__ import annotations

from aiohttp import web

from server.observability.ids import client_request_id, new_request_id

REQUEST_ID = web.RequestKey("request_id", str)
CLIENT_REQUEST_ID_HEADER = "X-Client-Request-Id"


def request_id_of(request: web.Request) -> str:
    """The gateway's own id of this request: what X-Request-Id answers and the ledger is keyed by."""
    rid = request.get(REQUEST_ID)
    if rid is None:
        rid = request[REQUEST_ID] = new_request_id()
    return rid


def client_request_id_of(request: web.Request) -> str | None:
    """The client's own id (X-Client-Request-Id, else X-Request-Id) if short printable ASCII."""
    headers = request.headers
    return client_request_id(headers.get(CLIENT_REQUEST_ID_HEADER) or headers.get("X-Request-Id"))


async def echo_client_request_id(request: web.Request, response: web.StreamResponse) -> None:
    """Every response hands a valid client id back beside ours, so the client can correlate both."""
    client_id = client_request_id_of(request)
    if client_id is not None:
        response.headers[CLIENT_REQUEST_ID_HEADER] = client_id
