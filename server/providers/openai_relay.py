"""The relay lane's edits to OpenAI chat JSON: pure functions on bodies and stream events.

When the client speaks OpenAI chat and the upstream is OpenAI-compatible, nothing needs
translating. The client's body goes upstream as written and the upstream's reply comes back as
written, except for the fields the gateway owns:

- request: `model` (the deployment's upstream name), `stream`, `stream_options.include_usage` on
  a stream (the gateway always asks, to meter it), the routing keys (`models`, `provider`), and a
  literal `extra_body` object, merged at the top level as the OpenAI SDKs would have done, and
  `cache_control` (prompt-cache breakpoints for Anthropic, on the request, messages, content parts
  and tools: strict OpenAI-compatible servers answer 400 to it, and dropping it changes only the
  cost; `without_cache_control`);
- reply: `model` (the public id), `provider`, `usage.cost`, and on a stream the `usage: null` keys
  and the usage chunk the client did not ask for (the gateway takes those out again).

Every other key, known or not, keeps its value and its place: a vendor's parameters, signed
reasoning blocks and prompt-cache prefixes survive the gateway. A stream event is patched as bytes
(`EventStamp`); only an event that carries usage or an error, or that the byte patch cannot read
with certainty, is parsed, and then re-serialized with its keys in their order.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import orjson

from server.errors import UpstreamError
from siraya.router.codec.fields import JsonObject
from siraya.router.codec.routing import EXTRA_BODY_KEY, ROUTING_KEYS

__all__ = [
    "TEXT_PATTERN",
    "EventStamp",
    "chunk_problem",
    "completion_problem",
    "relay_event",
    "relay_request",
    "relayed_text",
    "stamp_object",
    "valid_usage",
    "without_cache_control",
]

# The request keys the client may never set through `extra_body` (as in `encode_chat_request`).
_RESERVED_STREAMING = frozenset({"model", "messages", "stream"})
_RESERVED = _RESERVED_STREAMING | {"stream_options"}

_USAGE = b'"usage"'
# The keys of the text deltas, most frequent first (see `relayed_text`).
_TEXT_KEYS = (b'"content":"', b'"arguments":"', b'"reasoning_content":"', b'"reasoning":"')
_MODEL = b'"model":'
_COMMA_USAGE_NULL = b',"usage":null'
_USAGE_NULL_END = b',"usage":null}'
# What an event must be parsed for: usage that is not null, an error, or the upstream's own provider.
_MUST_READ = re.compile(rb'"(?:usage"\s*:\s*[^n\s]|error"|provider")')
_QUOTE, _BACKSLASH, _CLOSE = ord('"'), ord("\\"), ord("}")
_NESTING = re.compile(rb"[{}\[\]]")
# The text an answer is made of, for the running count of a stream until its usage comes: every
# string value of these keys (content and reasoning deltas, tool-call names and arguments, a custom
# tool's input), escapes as written.
TEXT_PATTERN = re.compile(
    rb'"(?:content|reasoning|reasoning_content|arguments|input|name)"\s*:\s*"([^"\\]*(?:\\.[^"\\]*)*)"'
)


def relay_request(body: JsonObject, upstream_model: str, stream: bool) -> bytes:
    """The client's chat body as an OpenAI-compatible upstream receives it.

    Only top-level keys change, so a shallow copy leaves the client's objects as they were; each
    key keeps its place. The client's body was validated by `decode_chat_request` already.
    """
    out = dict(body)
    out["model"] = upstream_model
    for key in ROUTING_KEYS:
        out.pop(key, None)
    literal = out.pop(EXTRA_BODY_KEY, None)
    if isinstance(literal, dict):
        reserved = _RESERVED_STREAMING if stream else _RESERVED
        for key, value in literal.items():
            if key not in reserved and key not in ROUTING_KEYS:
                out[key] = value
    out["stream"] = stream
    if stream:
        options = out.get("stream_options")
        out["stream_options"] = (
            {**options, "include_usage": True} if isinstance(options, dict) else {"include_usage": True}
        )
    else:
        # OpenAI refuses stream_options on a request that does not stream.
        out.pop("stream_options", None)
    return orjson.dumps(out)


_CACHE_CONTROL = "cache_control"


def without_cache_control(body: JsonObject) -> JsonObject:
    """`body` (a client's chat request) without any `cache_control`: at the top, on a message, a
    content part or a tool. Only the objects that held one are copied; the rest are the client's."""
    out = {key: value for key, value in body.items() if key != _CACHE_CONTROL}
    messages = body.get("messages")
    if type(messages) is list:
        out["messages"] = [_message_without_cache_control(message) for message in messages]
    tools = body.get("tools")
    if type(tools) is list:
        out["tools"] = [_without_key(tool) for tool in tools]
    return out


def _message_without_cache_control(message: Any) -> Any:
    if type(message) is not dict:
        return message
    content = message.get("content")
    if type(content) is list and any(type(part) is dict and _CACHE_CONTROL in part for part in content):
        message = {**message, "content": [_without_key(part) for part in content]}
    return _without_key(message)


def _without_key(item: Any) -> Any:
    if type(item) is not dict or _CACHE_CONTROL not in item:
        return item
    return {key: value for key, value in item.items() if key != _CACHE_CONTROL}


def relay_event(
    parse: Callable[[str | None, bytes], JsonObject], event: str | None, data: bytes
) -> bytes | JsonObject:
    """One stream event for the relay lane: its bytes when they can go on unparsed, else `parse`'s.

    Bytes go on when they are an object with no usage and no error (the two things the gateway must
    read) and no `provider` of the upstream's (which the gateway replaces). An unescaped `"usage"`
    is a key or a string value, never text inside a string (JSON escapes the quotes there), so one
    search of the bytes is enough; `"usage":null` is no usage.
    """
    if data[:1] == b"{" and data[-1:] == b"}" and _MUST_READ.search(data) is None:
        return data
    return parse(event, data)


# The detail counts the gateway meters (server/gateway_usage.py: usage_consumption_json).
_DETAIL_COUNTS = (
    ("prompt_tokens_details", ("cached_tokens", "cache_write_tokens", "audio_tokens")),
    ("completion_tokens_details", ("reasoning_tokens", "audio_tokens")),
)


def valid_usage(usage: Any) -> bool:
    """Whether an upstream's usage object has the counts the gateway reads, as integers (or absent)."""
    if type(usage) is not dict:
        return False
    for key in ("prompt_tokens", "completion_tokens"):
        value = usage.get(key)
        if value is not None and (type(value) is not int or value < 0):
            return False
    for key, counts in _DETAIL_COUNTS:
        details = usage.get(key)
        if details is None:
            continue
        if type(details) is not dict:
            return False
        for detail in counts:
            value = details.get(detail)
            if value is not None and (type(value) is not int or value < 0):
                return False
    return True


def completion_problem(answer: Any) -> str | None:
    """What keeps the gateway from reading a relayed completion (None: nothing): the shape decoders
    insist on, `choices` holding objects with a `message` object, and usage counts as integers."""
    if type(answer) is not dict:
        return "expected a JSON object"
    choices = answer.get("choices")
    if type(choices) is not list:
        return "'choices' must be an array"
    for position, choice in enumerate(choices):
        if type(choice) is not dict or type(choice.get("message")) is not dict:
            return f"'choices[{position}].message' must be an object"
    usage = answer.get("usage")
    if usage is not None and not valid_usage(usage):
        return "'usage' must hold integer counts"
    return None


def chunk_problem(chunk: Any) -> str | None:
    """`completion_problem` for a parsed stream chunk: an object, `choices` an array, usage readable."""
    if type(chunk) is not dict:
        return "expected a JSON object"
    if type(chunk.get("choices")) is not list:
        return "'choices' must be an array"
    usage = chunk.get("usage")
    if usage is not None and not valid_usage(usage):
        return "'usage' must hold integer counts"
    return None


def relayed_text(data: bytes) -> bytes:
    """The answer text one stream event carries, as the contents of its JSON string (escapes as
    written); b"" for none.

    Most events carry one text delta (content, tool-call arguments, reasoning): the first of those
    keys found is read directly. An event with none of them is searched for every text key
    (`TEXT_PATTERN`, which also reads spaced JSON), and their strings are given one after another.
    """
    for key in _TEXT_KEYS:
        at = data.find(key)
        if at < 0:
            continue
        start = at + len(key)
        end = data.find(b'"', start)
        while end > 0 and data[end - 1] == _BACKSLASH:
            run = end - 1
            while data[run - 1] == _BACKSLASH:
                run -= 1
            if (end - run) % 2 == 0:  # an even run of backslashes escapes itself: the quote is real
                break
            end = data.find(b'"', end + 1)
        return data[start:end] if end > 0 else b""
    return b"".join(TEXT_PATTERN.findall(data))


def stamp_object(answer: JsonObject, model: str, provider: str, keep_usage_null: bool) -> None:
    """The gateway's fields in a completion or chunk kept as a parsed object, in place.

    `model` keeps its place; `provider` goes last unless the upstream sent its own, whose place it
    takes. Without `keep_usage_null` (a stream whose client did not ask for usage) a `usage: null`
    is taken out, as OpenAI's stream has none then.
    """
    answer["model"] = model
    if not keep_usage_null and "usage" in answer and answer["usage"] is None:
        del answer["usage"]
    answer["provider"] = provider


class EventStamp:
    """Writes the gateway's fields into each relayed event of one stream; the event's bytes out.

    It takes what `relay_event` gives: an event's bytes, or the parsed event. Bytes are patched as
    bytes: the top-level `"model":"..."` is found among the scalars that open the event (OpenAI
    writes id, object, created, then model) and its value swapped, a `,"usage":null` of the event's
    own is taken out when the client did not ask for usage, and `,"provider":"..."` goes in before
    the closing brace. The events of one stream share their head (id, object, created, model), so
    once one event's head is known the next ones that start with the same bytes need no search. The
    patch acts only where it can be sure; anything else (`model` after a nested object, spaces, an
    escape) is parsed instead, stamped with `stamp_object` and serialized again: the same result, at
    the cost of a parse. An event already parsed (it carried usage) takes that way too.
    """

    __slots__ = (
        "_head",
        "_model_field",
        "_new_head",
        "_provider_tail",
        "keep_usage_null",
        "model",
        "provider",
    )

    def __init__(self, model: str, provider: str, keep_usage_null: bool) -> None:
        self.model = model
        self.provider = provider
        self.keep_usage_null = keep_usage_null
        self._model_field = _MODEL + orjson.dumps(model)
        self._provider_tail = b',"provider":' + orjson.dumps(provider) + b"}"
        # The upstream's head up to the end of its model value, and what replaces it.
        self._head = self._new_head = b"\x00"

    def __call__(self, event: bytes | JsonObject) -> bytes:
        if type(event) is dict:
            return self.stamped(event)
        data: bytes = event  # type: ignore[assignment]
        if not data.startswith(self._head) and not self._learn_head(data):
            return self.stamped(self.parse(data))
        start = len(self._head)
        if self.keep_usage_null:
            return self._new_head + data[start:-1] + self._provider_tail
        # A `,"usage":null` with nothing nested after it up to the closing brace is the event's own.
        if data.endswith(_USAGE_NULL_END):
            return self._new_head + data[start:-14] + self._provider_tail
        cut = data.rfind(_COMMA_USAGE_NULL)
        if cut >= start and _NESTING.search(data, cut + 13, len(data) - 1) is None:
            return b"".join((self._new_head, data[start:cut], data[cut + 13 : -1], self._provider_tail))
        if cut < 0 and _USAGE not in data:
            return self._new_head + data[start:-1] + self._provider_tail
        return self.stamped(self.parse(data))

    def _learn_head(self, data: bytes) -> bool:
        """Find the event's own `"model":"..."`; its head (all up to the value's end) is then known.

        False when it cannot be sure: no model among the scalars that open the event, a model value
        with an escape or spaces before it, or an event that does not end with its closing brace.
        """
        at = data.find(_MODEL)
        # Nothing but scalars before it: then it is a key of the event itself, not of a nested object.
        if at <= 0 or data[0] != 0x7B or data[-1] != _CLOSE or _NESTING.search(data, 1, at) is not None:
            return False
        start = at + len(_MODEL)
        if data[at - 1] == _BACKSLASH or start >= len(data) or data[start] != _QUOTE:
            return False
        end = data.find(b'"', start + 1)
        if end < 0 or data[end - 1] == _BACKSLASH:
            return False
        self._head, self._new_head = data[: end + 1], data[:at] + self._model_field
        return True

    def stamped(self, event: JsonObject) -> bytes:
        stamp_object(event, self.model, self.provider, self.keep_usage_null)
        return orjson.dumps(event)

    def parse(self, data: bytes) -> JsonObject:
        try:
            event = orjson.loads(data)
        except orjson.JSONDecodeError:
            event = None
        if type(event) is not dict:
            raise UpstreamError(f"Provider '{self.provider}' sent a malformed stream event.")
        return event
