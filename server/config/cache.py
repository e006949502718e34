"""The response cache's settings: the `cache:` section (where entries live), and a model's `cache:`."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from server.config.base import Settings

__all__ = ["CacheConfig", "ModelCacheConfig", "SemanticCacheConfig"]


class SemanticCacheConfig(Settings):
    """Single-turn requests whose text means the same (cosine similarity of their embeddings at least
    `threshold`) share an answer: server/response_cache/semantic.py."""

    # A catalogue model of kind `embedding`; its calls are charged to the requesting key.
    embedding_model: str
    threshold: Annotated[float, Field(gt=0, le=1)] = 0.95
    # Texts remembered per key and answer shape (the oldest are forgotten first).
    max_entries: Annotated[int, Field(ge=1)] = 10_000


class ModelCacheConfig(Settings):
    """A model opts in to the response cache: answers to identical requests are served for `ttl`."""

    # Seconds an answer stays servable.
    ttl: Annotated[float, Field(gt=0)]
    # Cache sampled requests too (temperature above 0 and no seed), whose answers differ each time.
    allow_sampled: bool = False
    # The optional semantic tier; None: only identical requests share an answer.
    semantic: SemanticCacheConfig | None = None


class CacheConfig(Settings):
    """Where cached answers live: Redis when `accounts.redis_url` is set, else this process's memory."""

    # The in-process store's bound, in bytes of cached answers (least recently used go first).
    max_bytes: Annotated[int, Field(ge=0)] = 64 * 1024 * 1024
    # An answer larger than this is not cached (a long stream, a big embedding batch).
    max_entry_bytes: Annotated[int, Field(ge=1)] = 1024 * 1024
    # Where entries go in Redis (one prefix per deployment of the gateway that should share them).
    redis_prefix: str = "siraya:cache:"
