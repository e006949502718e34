"""Embeddings and image generation bodies, deterministic from the request."""

from __future__ import annotations

import base64
import hashlib
import struct
import zlib
from typing import Any

__all__ = ["TINY_PNG", "embedding_inputs", "embeddings_body", "images_body", "tiny_png"]

DEFAULT_DIMENSIONS = 8
_IMAGE_SIZES = ("1024x1024", "1024x1536", "1536x1024")


def tiny_png(width: int = 2, height: int = 2) -> bytes:
    """A valid RGB PNG, built by hand so the fake needs no imaging library."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\x00" + b"\xff\x80\x00" * width  # filter byte, then orange pixels
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


TINY_PNG = tiny_png()


def embedding_inputs(raw: Any) -> list[tuple[str, int]] | None:
    """Each input as (text to hash, token count); None when the shape is not one OpenAI accepts."""
    if isinstance(raw, str):
        return [(raw, len(raw.split()))]
    if not isinstance(raw, list) or not raw:
        return None
    if all(isinstance(item, str) for item in raw):
        return [(item, len(item.split())) for item in raw]
    if all(isinstance(item, int) for item in raw):
        return [(_tokens_key(raw), len(raw))]
    if all(isinstance(item, list) and all(isinstance(t, int) for t in item) for item in raw):
        return [(_tokens_key(item), len(item)) for item in raw]
    return None


def embeddings_body(
    model: str, inputs: list[tuple[str, int]], dimensions: int, encoding: str
) -> dict[str, Any]:
    data = []
    for index, (text, _) in enumerate(inputs):
        vector = embedding_vector(text, dimensions)
        packed: Any = vector
        if encoding == "base64":
            packed = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
        data.append({"object": "embedding", "index": index, "embedding": packed})
    tokens = sum(count for _, count in inputs)
    return {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def embedding_vector(text: str, dimensions: int) -> list[float]:
    """Values k/32768 in [-1, 1): exact in float32, so base64 and float encodings agree bit for bit."""
    stream = b""
    counter = 0
    while len(stream) < 2 * dimensions:
        stream += hashlib.sha256(f"{counter}:{text}".encode()).digest()
        counter += 1
    return [value / 32768 for value in struct.unpack(f"<{dimensions}h", stream[: 2 * dimensions])]


def images_body(request: dict[str, Any], created: int, urls: list[str] | None) -> dict[str, Any]:
    """`urls` given -> url items, else b64_json items of TINY_PNG."""
    count = len(urls) if urls is not None else int(request.get("n") or 1)
    if urls is not None:
        data: list[dict[str, str]] = [{"url": url} for url in urls]
    else:
        data = [{"b64_json": base64.b64encode(TINY_PNG).decode()} for _ in range(count)]
    body: dict[str, Any] = {"created": created, "data": data}
    if str(request.get("model", "")).startswith("gpt-image"):
        size = request.get("size")
        body["background"] = "transparent" if request.get("background") == "transparent" else "opaque"
        body["output_format"] = request.get("output_format") or "png"
        body["size"] = size if size in _IMAGE_SIZES else "1024x1024"
        body["quality"] = request.get("quality") if request.get("quality") in ("low", "medium") else "high"
    text_tokens = len(str(request.get("prompt", "")).split())
    output_tokens = 272 * count
    body["usage"] = {
        "total_tokens": text_tokens + output_tokens,
        "input_tokens": text_tokens,
        "output_tokens": output_tokens,
        "input_tokens_details": {"text_tokens": text_tokens, "image_tokens": 0},
    }
    return body


def _tokens_key(tokens: list[int]) -> str:
    return "tokens:" + ",".join(map(str, tokens))
