"""Where cached answers live: this process's memory (an LRU bounded in bytes), or Redis (shared).

Both keep opaque bytes under a key for a TTL. The memory store counts the bytes of its values and
drops the least recently used until a new one fits; a value larger than the whole bound is not kept.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Protocol

from redis.asyncio import Redis

__all__ = ["CacheStore", "MemoryCacheStore", "RedisCacheStore"]


class CacheStore(Protocol):
    async def get(self, key: str) -> bytes | None: ...

    async def put(self, key: str, value: bytes, ttl: float) -> None: ...

    def size_bytes(self) -> int | None:
        """The bytes held, when this process holds them (None for a shared store)."""
        ...

    async def close(self) -> None: ...


class MemoryCacheStore:
    def __init__(self, max_bytes: int, clock: object = time.monotonic) -> None:
        self.max_bytes = max_bytes
        self._clock = clock
        # key -> (expires at, value), least recently used first.
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._bytes = 0

    def _now(self) -> float:
        return self._clock()  # type: ignore[operator, no-any-return]

    async def get(self, key: str) -> bytes | None:
        found = self._entries.get(key)
        if found is None:
            return None
        expires, value = found
        if expires <= self._now():
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return value

    async def put(self, key: str, value: bytes, ttl: float) -> None:
        if key in self._entries:
            self._drop(key)
        if len(value) > self.max_bytes:
            return
        while self._bytes + len(value) > self.max_bytes:
            oldest = next(iter(self._entries))
            self._drop(oldest)
        self._entries[key] = (self._now() + ttl, value)
        self._bytes += len(value)

    def _drop(self, key: str) -> None:
        _, value = self._entries.pop(key)
        self._bytes -= len(value)

    def size_bytes(self) -> int | None:
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    async def close(self) -> None:
        self._entries.clear()
        self._bytes = 0


class RedisCacheStore:
    """Entries as plain Redis strings with a PX expiry, under `prefix`: every replica shares them."""

    def __init__(self, client: Redis, prefix: str) -> None:
        self._client = client
        self._prefix = prefix

    @classmethod
    def from_url(cls, url: str, prefix: str) -> RedisCacheStore:
        return cls(Redis.from_url(url), prefix)

    async def get(self, key: str) -> bytes | None:
        value = await self._client.get(self._prefix + key)
        return None if value is None else bytes(value)

    async def put(self, key: str, value: bytes, ttl: float) -> None:
        await self._client.set(self._prefix + key, value, px=max(1, int(ttl * 1000)))

    def size_bytes(self) -> int | None:
        return None

    async def close(self) -> None:
        await self._client.aclose()
