"""Metering and stamping for Anthropic Messages replies kept as Anthropic's JSON (the relay lane).

The gateway meters in OpenAI's terms (`Consumption`): its prompt counts every input token, while
Anthropic's `input_tokens` leave out the tokens read from or written to a prompt cache, so those
are added back. In a stream, message_start carries the input counts and message_delta the
cumulative output (and, from some upstreams, the input again): each replaces what came before.
Until that usage arrives, text, thinking and tool input deltas are counted as an estimate and kept,
so a stream the client abandons is still charged for what it received, counted with the tokenizer
when it settles (server/gateway_usage.py).
"""

from __future__ import annotations

from typing import Any

from server.accounts.metering import Consumption
from server.gateway_usage import estimate_text
from server.routing.route import Route
from siraya.router.codec.fields import JsonObject

__all__ = [
    "EstimatedUsage",
    "fold_message_event",
    "message_consumption",
    "message_event_usage",
    "stamp_message",
    "stamp_message_event",
]

_DELTA_TEXT = {"text_delta": "text", "thinking_delta": "thinking", "input_json_delta": "partial_json"}


class EstimatedUsage(dict):  # type: ignore[type-arg]
    """A usage whose `input_tokens` is the gateway's estimate, not the upstream's count: the
    message_start of a stream translated from chat chunks. It is written as a plain object."""


def _count(usage: JsonObject, key: str) -> int:
    value = usage.get(key)
    return value if type(value) is int else 0


def _fold_usage(usage: Any, total: Consumption) -> None:
    if not isinstance(usage, dict):
        return
    if "input_tokens" in usage:
        cached = _count(usage, "cache_read_input_tokens")
        written = _count(usage, "cache_creation_input_tokens")
        total.prompt_tokens = _count(usage, "input_tokens") + cached + written
        total.cached_tokens = cached
        total.cache_write_tokens = written
        total.prompt_reported = type(usage) is not EstimatedUsage
    if "output_tokens" in usage:
        total.completion_tokens = _count(usage, "output_tokens")
        total.stream_text = None  # the text it covers is counted
    details = usage.get("output_tokens_details")
    if isinstance(details, dict):
        total.reasoning_tokens = _count(details, "thinking_tokens")


def message_consumption(answer: JsonObject) -> Consumption:
    """What a Message used, from its `usage`."""
    total = Consumption()
    _fold_usage(answer.get("usage"), total)
    return total


def fold_message_event(event: JsonObject, total: Consumption) -> None:
    """Fold one stream event into the running consumption."""
    kind = event.get("type")
    if kind == "content_block_delta":
        delta = event.get("delta")
        if isinstance(delta, dict):
            key = _DELTA_TEXT.get(delta.get("type", ""))
            text = delta.get(key) if key is not None else None
            if isinstance(text, str) and text:
                estimate_text(total, text)
    elif kind == "message_start":
        message = event.get("message")
        if isinstance(message, dict):
            _fold_usage(message.get("usage"), total)
    elif kind == "message_delta":
        _fold_usage(event.get("usage"), total)


def message_event_usage(event: JsonObject) -> JsonObject | None:
    """The stream's final usage, if this is the message_delta that carries it."""
    if event.get("type") != "message_delta":
        return None
    usage = event.get("usage")
    return usage if isinstance(usage, dict) else None


def stamp_message(answer: JsonObject, route: Route) -> None:
    """The public model id and the serving provider, on a Message."""
    answer["model"] = route.entry.id
    answer["provider"] = route.deployment.provider


def stamp_message_event(event: JsonObject, route: Route) -> None:
    if event.get("type") == "message_start":
        message = event.get("message")
        if isinstance(message, dict):
            stamp_message(message, route)
