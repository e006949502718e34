"""What makes two requests the same answer: a canonical hash, and the rule for what may be cached.

The key hashes the namespace (whose answers these are), the kind of call and its reply form (a
stream is cached apart from a whole answer; a chat entry holds the upstream's own form, relayed
JSON or a proto, and serves JSON and proto callers alike), the catalogue model the
request resolved to, and the request's protobuf serialized deterministically (map entries sorted),
less the fields that cannot change the answer: the model name as written (an alias resolves to
the same entry), `user`, `metadata`, `store`, `stream`, `service_tier`, `safety_identifier` and
the prompt-cache hints. Everything else - messages or input, tools, sampling fields, response
format, routing, extra_body - is in it.

A request whose answer is sampled is not cached unless its model allows it: temperature above 0
(an unset temperature is the upstream's default, 1) with no `seed`. Embeddings are never sampled.
"""

from __future__ import annotations

import hashlib

from google.protobuf.message import Message

from server.errors import InvalidRequest

__all__ = ["CacheDirective", "cache_key", "is_sampled", "parse_directive"]

_IGNORED = (
    "model",
    "user",
    "metadata",
    "store",
    "stream",
    "service_tier",
    "safety_identifier",
    "prompt_cache_key",
    "prompt_cache_retention",
)
_DEFAULT_TEMPERATURE = 1.0


def cache_key(namespace: str, form: str, entry_id: str, params: Message) -> str:
    canonical = type(params)()
    canonical.CopyFrom(params)
    fields = canonical.DESCRIPTOR.fields_by_name
    for name in _IGNORED:
        if name in fields:
            canonical.ClearField(name)
    digest = hashlib.blake2b(digest_size=24)
    for part in (namespace, form, entry_id):
        digest.update(part.encode())
        digest.update(b"\x00")
    digest.update(canonical.SerializeToString(deterministic=True))
    return digest.hexdigest()


def is_sampled(params: Message) -> bool:
    fields = params.DESCRIPTOR.fields_by_name
    if "temperature" not in fields:
        return False
    temperature = params.temperature if params.HasField("temperature") else _DEFAULT_TEMPERATURE  # type: ignore[attr-defined]
    if temperature <= 0:
        return False
    return not ("seed" in fields and params.HasField("seed"))


class CacheDirective:
    """The request's `x-siraya-cache` header: `no-store` (bypass the cache) or `ttl=<seconds>`."""

    __slots__ = ("bypass", "ttl")

    def __init__(self, bypass: bool, ttl: float | None) -> None:
        self.bypass = bypass
        self.ttl = ttl


_BAD = "The x-siraya-cache header must be 'no-store' or 'ttl=<seconds>' (a positive number)."


def parse_directive(value: str) -> CacheDirective:
    text = value.strip().lower()
    if text == "no-store":
        return CacheDirective(True, None)
    name, _, seconds = text.partition("=")
    if name.strip() != "ttl":
        raise InvalidRequest(_BAD, code="invalid_cache_header")
    try:
        ttl = float(seconds)
    except ValueError:
        raise InvalidRequest(_BAD, code="invalid_cache_header") from None
    if not ttl > 0 or ttl == float("inf"):
        raise InvalidRequest(_BAD, code="invalid_cache_header")
    return CacheDirective(False, ttl)
