"""REST for stored responses, each answered only to the key that created it (others get a 404):

GET    /v1/responses/{id}                the Response; with ?stream=true[&starting_after=N] a background
                                         response's events (after sequence number N), live until it ends
DELETE /v1/responses/{id}                {"id", "object": "response", "deleted": true}
GET    /v1/responses/{id}/input_items    ?limit=1..100&order=asc|desc&after=<item id>: ResponseItemList
POST   /v1/responses/{id}/cancel         a background response, cancelled
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from server.errors import InvalidRequest
from siraya.router.codec import responses as responses_codec
from siraya.router.v1 import responses_pb2

__all__ = ["add_response_routes"]


def _integer(request: web.Request, name: str, bits: int) -> int | None:
    """A query parameter holding an integer that fits the request's signed field of `bits`."""
    raw = request.query.get(name)
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise InvalidRequest(f"Invalid '{name}': expected an integer.", param=name) from None
    if not -(2 ** (bits - 1)) <= value < 2 ** (bits - 1):
        raise InvalidRequest(f"Invalid '{name}': out of range.", param=name, code="invalid_value")
    return value


def add_response_routes(
    app: web.Application,
    stubs_key: Any,
    call_metadata: Callable[[web.Request], list[tuple[str, str]]],
    json_response: Callable[[web.Request, bytes], web.Response],
    relay_events: Callable[[web.Request, Any], Awaitable[web.StreamResponse]],
) -> None:
    """Register the routes; the bridge passes its own helpers so every route shares one request path."""

    def service(request: web.Request) -> Any:
        return request.app[stubs_key].responses

    async def get_response(request: web.Request) -> web.StreamResponse:
        if request.query.get("stream") == "true":
            watch = responses_pb2.WatchResponseRequest(id=request.match_info["response_id"])
            after = _integer(request, "starting_after", 64)
            if after is not None:
                watch.starting_after = after
            return await relay_events(
                request, service(request).WatchResponse(watch, metadata=call_metadata(request))
            )
        reply = await service(request).GetResponse(
            responses_pb2.GetResponseRequest(id=request.match_info["response_id"]),
            metadata=call_metadata(request),
        )
        return json_response(request, responses_codec.encode_response(reply.response))

    async def delete_response(request: web.Request) -> web.StreamResponse:
        reply = await service(request).DeleteResponse(
            responses_pb2.DeleteResponseRequest(id=request.match_info["response_id"]),
            metadata=call_metadata(request),
        )
        return json_response(request, responses_codec.encode_deleted_response(reply))

    async def list_input_items(request: web.Request) -> web.StreamResponse:
        listing = responses_pb2.ListInputItemsRequest(id=request.match_info["response_id"])
        limit = _integer(request, "limit", 32)
        if limit is not None:
            listing.limit = limit
        for name in ("order", "after"):
            value = request.query.get(name)
            if value is not None:
                setattr(listing, name, value)
        reply = await service(request).ListInputItems(listing, metadata=call_metadata(request))
        return json_response(request, responses_codec.encode_input_item_list(reply))

    async def cancel_response(request: web.Request) -> web.StreamResponse:
        reply = await service(request).CancelResponse(
            responses_pb2.CancelResponseRequest(id=request.match_info["response_id"]),
            metadata=call_metadata(request),
        )
        return json_response(request, responses_codec.encode_response(reply.response))

    app.router.add_get("/v1/responses/{response_id}", get_response)
    app.router.add_delete("/v1/responses/{response_id}", delete_response)
    app.router.add_get("/v1/responses/{response_id}/input_items", list_input_items)
    app.router.add_post("/v1/responses/{response_id}/cancel", cancel_response)
