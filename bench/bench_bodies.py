"""The request bodies every measurement sends, and the compact JSON they go over the wire as."""

from __future__ import annotations

import json
from typing import Any

PROMPT = [{"role": "user", "content": "What is the meaning of life?"}]
CHAT_BODY = {"model": "bench-chat", "messages": PROMPT}
STREAM_BODY = {**CHAT_BODY, "stream": True, "stream_options": {"include_usage": True}}
EMBEDDING_BODY = {"model": "bench-embedding", "input": "The meaning of life", "dimensions": 256}
SLOW_BODY = {
    "model": "bench-slow",
    "messages": PROMPT,
    "stream": True,
    "stream_options": {"include_usage": True},
}


def compact_json(body: dict[str, Any]) -> str:
    return json.dumps(body, separators=(",", ":"))
