"""Stored responses: the state behind `store`, `previous_response_id` and /v1/responses/{id}.

A stage of the one pipeline, not a path of its own: `begin` runs before the gateway's `_unary` or
`_stream` and hands it the request to send, `keep` runs on the answer. Nothing else changes.

- `store` defaults to true, as OpenAI's does. A stored response keeps its own input items (the
  ones given with it, normalised to items with ids, as input_items lists them), the whole
  Response (output items, usage, model, provider) and the id of the response before it.
- `previous_response_id` is served on every provider by replay: the chain is walked back to its
  start, and each stored response's input then output items go before the new input, so the
  upstream sees the whole conversation as ordinary input items (which the chat translation turns
  into messages, tool calls and tool results, and reasoning where the provider can take it back:
  signed tool-call ids carry Anthropic's and Gemini's signatures). A chain may switch models and
  providers. `instructions` are not carried over, as in OpenAI's semantics.
- An upstream that serves Responses natively is handed its own id instead when the attempt goes
  to the provider and model that served the previous response natively (`upstream_id`): that
  upstream stored the previous response with everything it was sent, which was the whole
  conversation (replayed, or itself chained), so the previous response alone is enough. Any other
  attempt (another model, a fallback, a chat-only provider) gets the replay.
- Every stored response gets the gateway's own id, minted before the call (a background response
  needs it at once), so ids never collide across upstreams and never reveal one.
- Each record belongs to the key that created it; any other key reads a 404.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace

from server.accounts.keys import KeyRecord
from server.accounts.store import ACTIVE_RESPONSE_STATES, ResponseStore, StoredResponse
from server.errors import InvalidRequest, NotFound
from server.routing.route import Route
from siraya.router.v1 import responses_pb2

__all__ = ["InputItemsPage", "ResponseState", "Turn", "new_response_id"]

TERMINAL_EVENTS = frozenset({"response.completed", "response.incomplete", "response.failed"})
_ITEM_PREFIXES = {
    "message": "msg",
    "function_call": "fc",
    "function_call_output": "fco",
    "reasoning": "rs",
}
MAX_INPUT_ITEMS_PAGE = 100
DEFAULT_INPUT_ITEMS_PAGE = 20


def new_response_id() -> str:
    return "resp_" + secrets.token_hex(24)


def _new_item_id(kind: str) -> str:
    return f"{_ITEM_PREFIXES.get(kind, 'item')}_{secrets.token_hex(24)}"


def response_not_found(response_id: str) -> NotFound:
    return NotFound(
        f"No response found with id '{response_id}'.", param="response_id", code="response_not_found"
    )


def own_input(params: responses_pb2.ResponseParams) -> list[responses_pb2.ResponseItem]:
    """The request's own input as items with ids, text given as a string made a message of parts."""
    source = params.WhichOneof("input")
    if source == "input_text":
        item = responses_pb2.ResponseItem(type="message", role="user", id=_new_item_id("message"))
        item.content.add(type="input_text", text=params.input_text)
        return [item]
    if source != "input_items":
        return []
    items = []
    for given in params.input_items.items:
        item = responses_pb2.ResponseItem()
        item.CopyFrom(given)
        if not item.HasField("id"):
            item.id = _new_item_id(item.type)
        if item.type == "message" and item.HasField("content_text"):
            kind = "output_text" if item.role == "assistant" else "input_text"
            item.content.add(type=kind, text=item.content_text)
            item.ClearField("content_text")
        items.append(item)
    return items


@dataclass(slots=True)
class Turn:
    """One Responses request on its way through the pipeline, and what storing it needs."""

    id: str
    key_id: str
    created_at: float
    # What the upstream is sent: the chain replayed before the request's own input.
    params: responses_pb2.ResponseParams
    # The request's own input items, with ids.
    input_items: list[responses_pb2.ResponseItem]
    previous_response_id: str | None
    store: bool
    background: bool
    # (provider, model) that served the previous response natively, and the request that chains on
    # it there by the upstream's own id.
    native_chain: tuple[str, str] | None = None
    native_params: responses_pb2.ResponseParams | None = None
    # Whether the last attempt went to an upstream that serves Responses natively.
    served_natively: bool = False

    def params_for(self, route: Route) -> responses_pb2.ResponseParams:
        """What one attempt sends: the upstream's own chain where it has it, else the replay."""
        native = route.provider.native_responses
        self.served_natively = native
        chain = self.native_chain
        if native and chain is not None and chain == (route.deployment.provider, route.entry.id):
            assert self.native_params is not None
            return self.native_params
        return self.params

    def stamp(self, response: responses_pb2.Response) -> str:
        """Give the answer the gateway's id and the request's echo; the id it came with."""
        upstream_id = response.id
        response.id = self.id
        if self.previous_response_id is not None:
            response.previous_response_id = self.previous_response_id
        if not response.HasField("store"):
            response.store = self.store
        response.background = self.background
        return upstream_id

    def upstream(self, upstream_id: str | None) -> str | None:
        """The upstream's own id of the answer, if it is one (a native upstream's)."""
        return upstream_id or None if self.served_natively else None

    def record(self, response: responses_pb2.Response, **changes: object) -> StoredResponse:
        items = responses_pb2.ResponseItems(items=self.input_items)
        stored = StoredResponse(
            id=self.id,
            key_id=self.key_id,
            created_at=self.created_at,
            status=response.status,
            model=response.model,
            provider=response.provider if response.HasField("provider") else None,
            previous_response_id=self.previous_response_id,
            background=self.background,
            response=response.SerializeToString(),
            input_items=items.SerializeToString(),
            # Only an upstream that serves Responses itself has an id worth chaining on later.
            upstream_id=None,
        )
        return replace(stored, **changes) if changes else stored  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class InputItemsPage:
    data: list[responses_pb2.ResponseItem]
    has_more: bool


class ResponseState:
    """Stored responses over one ResponseStore."""

    def __init__(self, store: ResponseStore) -> None:
        self.store = store

    # the pipeline stage

    async def begin(self, params: responses_pb2.ResponseParams, key: KeyRecord) -> Turn | None:
        """The turn for a request, its chain replayed; None when there is nothing to keep or replay."""
        store = not params.HasField("store") or params.store
        previous = params.previous_response_id if params.HasField("previous_response_id") else None
        background = params.HasField("background") and params.background
        if background and not store:
            raise InvalidRequest(
                "A background response must be stored: background=true needs store=true.",
                param="background",
            )
        if not store and previous is None:
            return None
        own = own_input(params)
        sent = params
        turn = Turn(new_response_id(), key.id, time.time(), sent, own, previous, store, background)
        if previous is not None or background:
            sent = turn.params = responses_pb2.ResponseParams()
            sent.CopyFrom(params)
            sent.ClearField("previous_response_id")
            sent.ClearField("background")
        if previous is not None:
            history, last = await self._history(previous, key.id)
            sent.ClearField("input")
            sent.input_items.items.extend(history)
            sent.input_items.items.extend(own)
            if last.upstream_id is not None and last.provider is not None:
                chained = turn.native_params = responses_pb2.ResponseParams()
                chained.CopyFrom(params)
                chained.ClearField("background")
                chained.previous_response_id = last.upstream_id
                turn.native_chain = (last.provider, last.model)
        return turn

    async def keep(self, turn: Turn, response: responses_pb2.Response) -> None:
        """Stamp the answer with the turn's id and store it when the request asked to."""
        upstream_id = turn.stamp(response)
        if turn.store:
            await self.store.insert_response(turn.record(response, upstream_id=turn.upstream(upstream_id)))

    async def stream(
        self,
        turn: Turn,
        events: AsyncIterator[responses_pb2.ResponseStreamEvent],
    ) -> AsyncIterator[responses_pb2.ResponseStreamEvent]:
        """The events with the turn's id; the final Response is stored before its event is sent, so a
        client that chains on it at once finds it."""
        upstream_id: str | None = None
        try:
            async for event in events:
                if event.HasField("response"):
                    upstream_id = turn.stamp(event.response) or upstream_id
                    if turn.store and event.type in TERMINAL_EVENTS:
                        await self.store.insert_response(
                            turn.record(event.response, upstream_id=turn.upstream(upstream_id))
                        )
                yield event
        finally:
            close = getattr(events, "aclose", None)
            if close is not None:
                await close()

    async def _history(
        self, previous_id: str, key_id: str
    ) -> tuple[list[responses_pb2.ResponseItem], StoredResponse]:
        """The items of the chain ending in `previous_id`, oldest first (each response's input, then
        its output), and that last response's record."""
        chain: list[StoredResponse] = []
        wanted: str | None = previous_id
        while wanted is not None:
            record = await self.store.get_response(wanted, key_id)
            if record is None:
                raise NotFound(
                    f"Previous response with id '{wanted}' not found.",
                    param="previous_response_id",
                    code="previous_response_not_found",
                )
            if record.status in ACTIVE_RESPONSE_STATES:
                raise InvalidRequest(
                    f"Previous response with id '{wanted}' is still {record.status.replace('_', ' ')};"
                    " wait for it to finish.",
                    param="previous_response_id",
                )
            chain.append(record)
            wanted = record.previous_response_id
        items: list[responses_pb2.ResponseItem] = []
        for record in reversed(chain):
            items.extend(responses_pb2.ResponseItems.FromString(record.input_items).items)
            items.extend(responses_pb2.Response.FromString(record.response).output)
        return items, chain[0]

    # the routes

    async def record(self, response_id: str, key: KeyRecord) -> StoredResponse:
        record = await self.store.get_response(response_id, key.id)
        if record is None:
            raise response_not_found(response_id)
        return record

    async def get(self, response_id: str, key: KeyRecord) -> responses_pb2.Response:
        return responses_pb2.Response.FromString((await self.record(response_id, key)).response)

    async def delete(self, response_id: str, key: KeyRecord) -> None:
        if not await self.store.delete_response(response_id, key.id):
            raise response_not_found(response_id)

    async def input_items(
        self,
        response_id: str,
        key: KeyRecord,
        *,
        limit: int | None = None,
        order: str | None = None,
        after: str | None = None,
    ) -> InputItemsPage:
        """One page of a response's input items, as OpenAI pages them (newest first by default)."""
        if limit is None:
            limit = DEFAULT_INPUT_ITEMS_PAGE
        if not 1 <= limit <= MAX_INPUT_ITEMS_PAGE:
            raise InvalidRequest(
                f"Invalid 'limit': it must be between 1 and {MAX_INPUT_ITEMS_PAGE}.", param="limit"
            )
        if order not in (None, "asc", "desc"):
            raise InvalidRequest("Invalid 'order': expected 'asc' or 'desc'.", param="order")
        record = await self.record(response_id, key)
        items: Sequence[responses_pb2.ResponseItem] = responses_pb2.ResponseItems.FromString(
            record.input_items
        ).items
        ordered = list(items) if order == "asc" else list(reversed(items))
        start = 0
        if after is not None:
            ids = [item.id for item in ordered]
            if after not in ids:
                raise InvalidRequest(f"No input item with id '{after}' in this response.", param="after")
            start = ids.index(after) + 1
        page = ordered[start : start + limit]
        return InputItemsPage(page, start + limit < len(ordered))


def stored_response(record: StoredResponse) -> responses_pb2.Response:
    return responses_pb2.Response.FromString(record.response)
