"""The response cache: identical requests answered from a store, at no cost, never across namespaces.

keys.py      what makes two requests the same (the canonical key), and which may be cached
stores.py    where answers live: an in-process LRU bounded in bytes, or Redis
stage.py     the pipeline stage: the lookup before the credit reservation (a hit is still admitted:
             rate limit, moderation), the keep after settlement
semantic.py  the optional tier: single-turn requests whose text embeds alike share an answer
"""

from server.response_cache.stage import CACHE_HEADER, ProtoForm, ResponseCache, build_cache

__all__ = ["CACHE_HEADER", "ProtoForm", "ResponseCache", "build_cache"]
