"""Prompt-cache affinity ("sticky routing"): requests that share a prompt prefix go back to the
deployment that served that prefix last, so the provider's prompt cache stays warm.

A model opts in with `prompt_cache_affinity: true`. Without it, a weighted shuffle sends the second
turn of a conversation to any of the model's deployments, and each one pays to build its own cache
(Anthropic charges a cache write 1.25x the input price, then reads at 0.1x; OpenAI, Gemini and
DeepSeek cache implicitly, per server). With it, the dispatcher puts the remembered deployment
first; the others stay behind it as fallbacks, so a deployment that is down or whose breaker is
open is passed over as usual, and the next one to serve becomes the remembered one.

The prefix is defined so that every turn of one conversation has the same one, while different
conversations (or users) get different ones:

    blake2b-128 over, in order,
      every tool definition (type, function name, description, strict, parameters JSON, custom);
      the messages up to and including the first user message: for each, its role, name, content
      (the string, or each part's kind and payload), tool calls and tool_call_id.

`cache_control` markers are left out on purpose: clients move their breakpoint to the newest turn
on every request (Claude Code does), and the same prefix must hash the same with or without one.
The key is (public model id, prefix), so fallback models keep their own memory.

Only an explicit choice overrides it: with `provider.order` or `provider.sort` in the request, the
caller's order stands (as OpenRouter does). An entry expires `prompt_cache_affinity_ttl` seconds
(default 300, Anthropic's default cache lifetime) after the last request that used it, and the map
holds at most `routing.prompt_cache_affinity_entries` prefixes, least recently used out first.

The map lives in this process. Replicas (or `serve --workers N`) each keep their own, so a
conversation is sticky per replica: put a load balancer with session affinity in front, or accept
that each replica warms its own cache. Sharing it through Redis is not built.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence

from google.protobuf.message import Message

from server.routing.catalogue import Deployment
from siraya.router.v1 import chat_pb2

__all__ = ["DEFAULT_MAX_ENTRIES", "PromptAffinity", "prompt_prefix", "stick"]

DEFAULT_MAX_ENTRIES = 100_000
_USER = chat_pb2.CHAT_ROLE_USER


def _piece(digest: hashlib.blake2b, data: bytes) -> None:
    # Length-prefixed, so that no two different sequences of pieces hash the same.
    digest.update(len(data).to_bytes(4, "little"))
    digest.update(data)


def _hash_message(digest: hashlib.blake2b, message: chat_pb2.ChatMessage) -> None:
    _piece(digest, message.role.to_bytes(1, "little"))
    _piece(digest, message.name.encode())
    which = message.WhichOneof("content")
    if which == "text":
        _piece(digest, b"t" + message.text.encode())
    elif which == "parts":
        for part in message.parts.parts:
            kind = part.WhichOneof("part")
            if kind is not None:
                # The part's payload without its cache_control, which sits beside the oneof.
                payload: Message = getattr(part, kind)
                _piece(digest, kind.encode() + b":" + payload.SerializeToString(deterministic=True))
    for call in message.tool_calls:
        _piece(digest, call.SerializeToString(deterministic=True))
    _piece(digest, message.tool_call_id.encode())


def prompt_prefix(params: Message | None) -> bytes | None:
    """The prefix key of a chat request (see the module docstring); None for other requests."""
    if not isinstance(params, chat_pb2.ChatCompletionParams):
        return None
    digest = hashlib.blake2b(digest_size=16)
    for tool in params.tools:
        _piece(digest, tool.type.encode())
        _piece(digest, tool.function.SerializeToString(deterministic=True))
        _piece(digest, tool.custom.SerializeToString(deterministic=True))
    for message in params.messages:
        _hash_message(digest, message)
        if message.role == _USER:
            break
    return digest.digest()


def stick(deployments: list[Deployment], key: str) -> list[Deployment]:
    """`deployments` with the one named `key` moved first (unchanged when it is not among them)."""
    for index, deployment in enumerate(deployments):
        if deployment.key == key:
            if index == 0:
                return deployments
            return [deployment, *deployments[:index], *deployments[index + 1 :]]
    return deployments


class PromptAffinity:
    """(model id, prompt prefix) -> the deployment that served it last, until its TTL passes."""

    def __init__(
        self, max_entries: int = DEFAULT_MAX_ENTRIES, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._entries: OrderedDict[tuple[str, bytes], tuple[str, float]] = OrderedDict()
        self._max_entries = max(1, max_entries)
        self._clock = clock

    def __len__(self) -> int:
        return len(self._entries)

    def preferred(self, model_id: str, prefix: bytes) -> str | None:
        """The deployment key remembered for this prefix, if it has not expired."""
        key = (model_id, prefix)
        found = self._entries.get(key)
        if found is None:
            return None
        deployment, expires = found
        if expires <= self._clock():
            del self._entries[key]
            return None
        return deployment

    def remember(self, model_id: str, prefix: bytes, deployment: str, ttl: float) -> None:
        """`deployment` served this prefix now: it is the one to prefer for `ttl` seconds more."""
        key = (model_id, prefix)
        entries = self._entries
        entries[key] = (deployment, self._clock() + ttl)
        entries.move_to_end(key)
        while len(entries) > self._max_entries:
            entries.popitem(last=False)

    def order(self, model_id: str, prefix: bytes, deployments: Sequence[Deployment]) -> list[Deployment]:
        """`deployments` with the remembered one first, if any."""
        remembered = self.preferred(model_id, prefix)
        listed = list(deployments)
        return listed if remembered is None else stick(listed, remembered)
