"""Drive every response surface of one model over raw HTTP and check each body against OpenAI's spec.

The SDK is lenient (unknown or missing keys become None), so these checks read the bytes the
gateway wrote: a chat completion, every chunk of a chat stream, a Response, and every Responses
stream event against the component schema of its own `type`, with contiguous sequence numbers.
"""

from __future__ import annotations

import base64
import functools
import struct
from typing import Any

import httpx
import orjson
import yaml

from tests.openapi_schema import SPEC_PATH, assert_matches_schema

JsonObject = dict[str, Any]
_TERMINAL_EVENTS = frozenset({"response.completed", "response.incomplete", "response.failed"})


@functools.cache
def event_schema_names() -> dict[str, str]:
    """Each Responses stream event `type` -> the component schema that describes it."""
    with SPEC_PATH.open() as handle:
        spec = yaml.load(handle, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    schemas = spec["components"]["schemas"]
    names: dict[str, str] = {}
    for ref in schemas["ResponseStreamEvent"]["anyOf"]:
        name = ref["$ref"].rsplit("/", 1)[-1]
        for kind in schemas[name]["properties"]["type"].get("enum", []):
            names[kind] = name
    return names


def sse_frames(raw: bytes) -> list[tuple[str | None, bytes]]:
    """(event name or None, data) of each SSE frame."""
    frames: list[tuple[str | None, bytes]] = []
    for block in raw.split(b"\n\n"):
        if not block.strip():
            continue
        event: str | None = None
        data = b""
        for line in block.split(b"\n"):
            if line.startswith(b"event: "):
                event = line[7:].decode()
            elif line.startswith(b"data: "):
                data = line[6:]
        frames.append((event, data))
    return frames


def _floats(packed: str) -> list[float]:
    raw = base64.b64decode(packed, validate=True)
    assert len(raw) % 4 == 0, "base64 embeddings are little-endian float32"
    return list(struct.unpack(f"<{len(raw) // 4}f", raw))


class Surfaces:
    """One model's endpoints on a running gateway."""

    def __init__(self, base_url: str, api_key: str, model: str) -> None:
        self.base_url = base_url
        self.headers = {"Authorization": f"Bearer {api_key}"}
        self.model = model

    def _post(self, path: str, body: JsonObject) -> bytes:
        response = httpx.post(f"{self.base_url}{path}", headers=self.headers, json=body, timeout=30)
        assert response.status_code == 200, response.text
        return response.content

    def chat(self, **body: Any) -> JsonObject:
        completion = orjson.loads(self._post("/chat/completions", {"model": self.model, **body}))
        assert_matches_schema(completion, "CreateChatCompletionResponse")
        assert completion["object"] == "chat.completion" and completion["choices"]
        return completion  # type: ignore[no-any-return]

    def chat_stream(self, **body: Any) -> list[JsonObject]:
        frames = sse_frames(self._post("/chat/completions", {"model": self.model, "stream": True, **body}))
        assert frames[-1] == (None, b"[DONE]"), frames[-3:]
        chunks = [orjson.loads(data) for _, data in frames[:-1]]
        for chunk in chunks:
            assert_matches_schema(chunk, "CreateChatCompletionStreamResponse")
            assert chunk["object"] == "chat.completion.chunk"
        return chunks

    def response(self, **body: Any) -> JsonObject:
        response = orjson.loads(self._post("/responses", {"model": self.model, **body}))
        assert_matches_schema(response, "Response")
        return response  # type: ignore[no-any-return]

    def response_stream(self, **body: Any) -> list[JsonObject]:
        frames = sse_frames(self._post("/responses", {"model": self.model, "stream": True, **body}))
        names = event_schema_names()
        events: list[JsonObject] = []
        for name, data in frames:
            event = orjson.loads(data)
            assert name == event["type"], (name, event)
            assert event["type"] in names, f"not an OpenAI stream event: {event['type']}"
            assert_matches_schema(event, names[event["type"]])
            events.append(event)
        assert [e["sequence_number"] for e in events] == list(range(len(events)))
        assert events[0]["type"] == "response.created" and events[-1]["type"] in _TERMINAL_EVENTS
        assert_matches_schema(events[-1]["response"], "Response")
        return events

    def embeddings(self, **body: Any) -> JsonObject:
        result = orjson.loads(self._post("/embeddings", {"model": self.model, **body}))
        checked = result
        if body.get("encoding_format") == "base64":
            # The spec types `embedding` as numbers only, though OpenAI sends base64 float32 when asked.
            checked = {
                **result,
                "data": [{**item, "embedding": _floats(item["embedding"])} for item in result["data"]],
            }
        assert_matches_schema(checked, "CreateEmbeddingResponse")
        return result  # type: ignore[no-any-return]

    def images(self, **body: Any) -> JsonObject:
        result = orjson.loads(self._post("/images/generations", {"model": self.model, **body}))
        assert_matches_schema(result, "ImagesResponse")
        return result  # type: ignore[no-any-return]
