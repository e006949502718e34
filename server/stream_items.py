"""How the gateway's one stream path (`Gateway._stream`) reads and marks the items of each kind of
stream: chat chunks, Responses events and Anthropic Messages events."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from server.accounts.metering import Consumption
from server.chat_reply import (
    CHAT_CHUNK_FORM,
    charge_chunk_usage,
    charge_usage_json,
    chunk_is_final_any,
    chunk_stamper,
    fold_any_chunk,
    strip_chunk_usage,
    usage_chunk_like,
)
from server.gateway_usage import event_is_final, fold_response_event
from server.messages_usage import fold_message_event, message_event_usage, stamp_message_event
from server.response_cache.stage import Form, ProtoForm
from server.routing.route import Route
from siraya.router.codec.fields import JsonObject
from siraya.router.v1 import common_pb2, responses_pb2

Result = TypeVar("Result")
UsageMessage = common_pb2.Usage | responses_pb2.ResponseUsage


@dataclass(frozen=True, slots=True)
class StreamItems(Generic[Result]):
    """How `Gateway._stream` reads and marks the items of one kind of stream."""

    # Fold an item into the running consumption; the usage it carries, else None.
    consumed: Callable[[Result, Consumption], Any]
    # Whether the item whose usage was just folded carries the upstream's final usage.
    final: Callable[[Result], bool]
    # Put the stream's cost into that usage (None: no cost known, so none is shown).
    charge: Callable[[Any, float | None], None]
    # (route, show_usage, first item) -> the stamp for every item of the stream: it marks an item
    # with what served it and returns it in its final form.
    stamper: Callable[[Route, bool, Result], Callable[[Result], Result]]
    # Take running usage off an item (True: the client asked for usage); that usage.
    strip: Callable[[Result, bool], Any]
    # The usage item to end a stream with, like the given item, for usage that came on another.
    usage_item: Callable[[Result, Any], Result]
    # How the items are written to the response cache and read back (None: never cached).
    form: Form[Result] | None


def _stamp_events(
    route: Route, show_usage: bool, first: responses_pb2.ResponseStreamEvent
) -> Callable[[responses_pb2.ResponseStreamEvent], responses_pb2.ResponseStreamEvent]:
    model, provider = route.entry.id, route.deployment.provider

    def stamp(event: responses_pb2.ResponseStreamEvent) -> responses_pb2.ResponseStreamEvent:
        if event.HasField("response"):
            event.response.model = model
            event.response.provider = provider
        return event

    return stamp


def _stamp_message_events(
    route: Route, show_usage: bool, first: JsonObject
) -> Callable[[JsonObject], JsonObject]:
    def stamp(event: JsonObject) -> JsonObject:
        stamp_message_event(event, route)
        return event

    return stamp


def _charge_usage(usage: UsageMessage, cost: float | None) -> None:
    if cost is not None:
        usage.cost = cost


def _fold_message_event(event: JsonObject, total: Consumption) -> Any:
    # message_start's usage is folded as it goes; only message_delta's usage is final and returned.
    fold_message_event(event, total)
    return message_event_usage(event)


def _always_final(_: Any) -> bool:
    return True


def _no_running_usage(item: Any, _: Any) -> Any:
    raise AssertionError("every usage a Responses stream carries is final")


CHAT_CHUNKS: StreamItems[Any] = StreamItems(
    fold_any_chunk,
    chunk_is_final_any,
    charge_chunk_usage,
    chunk_stamper,
    strip_chunk_usage,
    usage_chunk_like,
    CHAT_CHUNK_FORM,
)
RESPONSE_EVENTS = StreamItems(
    fold_response_event,
    event_is_final,
    _charge_usage,
    _stamp_events,
    _no_running_usage,
    _no_running_usage,
    ProtoForm(responses_pb2.ResponseStreamEvent),
)
MESSAGE_EVENTS = StreamItems(
    _fold_message_event,
    _always_final,
    charge_usage_json,
    _stamp_message_events,
    _no_running_usage,
    _no_running_usage,
    None,  # each request's own MessagesForm: its cache key holds the body as written
)
