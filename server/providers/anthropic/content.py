"""OpenAI content parts as Anthropic content blocks: text, images, documents. Pure: no I/O.

Images: `data:` URLs become base64 sources; `https://` URLs become url sources, which Anthropic
fetches itself (the gateway never fetches them). `file` parts (`file_data` as a data: URL or bare
base64) become `document` blocks for PDFs and plain text, image blocks for images. OpenAI
`file_id`s mean nothing to Anthropic and are refused. Empty text is dropped: Anthropic refuses it.
A part's `cache_control` (OpenRouter / LiteLLM style) becomes its block's.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from server.errors import InvalidRequest
from server.providers.remote_media import Media, parse_data_url
from siraya.router.v1 import chat_pb2, common_pb2

__all__ = [
    "IMAGE_MEDIA_TYPES",
    "Block",
    "cache_control",
    "content_blocks",
    "invalid",
    "mark_last",
    "resolve_media",
]

IMAGE_MEDIA_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
_TEXT_FILE_SUFFIXES = (".txt", ".md", ".csv")

Block = dict[str, Any]


def invalid(message: str, param: str, code: str | None = None) -> InvalidRequest:
    return InvalidRequest(message, param=param, code=code)


def cache_control(control: common_pb2.CacheControl) -> Block:
    """Anthropic's `cache_control` object, keys in its documented order."""
    out: Block = {"type": control.type}
    if control.HasField("ttl"):
        out["ttl"] = control.ttl
    return out


def mark_last(blocks: list[Block], message: chat_pb2.ChatMessage) -> None:
    """A message-level `cache_control` (LiteLLM style) on the message's last block."""
    if blocks and message.HasField("cache_control"):
        blocks[-1]["cache_control"] = cache_control(message.cache_control)


def resolve_media(params: chat_pb2.ChatCompletionParams) -> dict[str, Media]:
    """Decode every inline medium (data: URLs, `file_data`), keyed by its request path.

    Run once before `to_anthropic`; a malformed one is an `InvalidRequest` naming the part.
    """
    media: dict[str, Media] = {}
    for i, message in enumerate(params.messages):
        if message.WhichOneof("content") != "parts":
            continue
        for j, part in enumerate(message.parts.parts):
            kind = part.WhichOneof("part")
            if kind == "image_url" and part.image_url.url[:5].lower() == "data:":
                path = f"messages[{i}].content[{j}].image_url"
                media[path] = parse_data_url(part.image_url.url, path)
            elif kind == "file" and part.file.HasField("file_data"):
                path = f"messages[{i}].content[{j}].file"
                media[path] = _decode_file_data(part.file, path)
    return media


def _decode_file_data(file: chat_pb2.FilePart, path: str) -> Media:
    data = file.file_data
    # OpenAI documents bare base64; its SDK examples send data: URLs. Both arrive here.
    decoded = parse_data_url(data if data[:5].lower() == "data:" else "data:;base64," + data, path)
    name = file.filename.lower() if file.HasField("filename") else ""
    if decoded.media_type == "application/octet-stream" and name.endswith(_TEXT_FILE_SUFFIXES):
        return Media(decoded.data, "text/plain")
    return decoded


def _base64_source(media: Media) -> dict[str, str]:
    return {"type": "base64", "media_type": media.media_type, "data": base64.b64encode(media.data).decode()}


def _image_block(url: str, path: str, media: Mapping[str, Media]) -> Block:
    if url[:5].lower() == "data:":
        resolved = media.get(path) or parse_data_url(url, path)
        if resolved.media_type not in IMAGE_MEDIA_TYPES:
            raise invalid(
                f"Anthropic accepts JPEG, PNG, GIF and WebP images, not '{resolved.media_type}' ({path}).",
                path,
                "invalid_image_url",
            )
        return {"type": "image", "source": _base64_source(resolved)}
    if url[:8].lower() == "https://":
        return {"type": "image", "source": {"type": "url", "url": url}}
    raise invalid(f"Image URLs must be https:// or data: URLs ({path}).", path, "invalid_image_url")


def _file_block(file: chat_pb2.FilePart, path: str, media: Mapping[str, Media]) -> Block:
    if not file.HasField("file_data"):
        raise invalid(
            "Anthropic models need the file's bytes: send 'file_data' (file ids are not supported).",
            f"{path}.file_id" if file.HasField("file_id") else path,
        )
    resolved = media.get(path) or _decode_file_data(file, path)
    kind = resolved.media_type
    if kind in IMAGE_MEDIA_TYPES:
        return {"type": "image", "source": _base64_source(resolved)}
    if kind == "application/pdf":
        block: Block = {"type": "document", "source": _base64_source(resolved)}
    elif kind == "text/plain":
        try:
            text = resolved.data.decode()
        except UnicodeDecodeError:
            raise invalid(f"The text file is not valid UTF-8 ({path}).", path) from None
        block = {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": text}}
    else:
        raise invalid(
            f"Anthropic accepts PDF, plain-text and image files, not '{kind}' ({path}).", path, "invalid_file"
        )
    if file.HasField("filename") and file.filename:
        block["title"] = file.filename
    return block


def content_blocks(message: chat_pb2.ChatMessage, i: int, media: Mapping[str, Media]) -> list[Block]:
    """The message's content as Anthropic blocks; empty text is dropped (Anthropic refuses it)."""
    which = message.WhichOneof("content")
    if which == "text":
        return [{"type": "text", "text": message.text}] if message.text else []
    if which is None:
        return []
    blocks: list[Block] = []
    for j, part in enumerate(message.parts.parts):
        kind = part.WhichOneof("part")
        path = f"messages[{i}].content[{j}]"
        before = len(blocks)
        if kind == "text":
            if part.text.text:
                blocks.append({"type": "text", "text": part.text.text})
        elif kind == "refusal":
            if part.refusal.refusal:
                blocks.append({"type": "text", "text": part.refusal.refusal})
        elif kind == "image_url":
            blocks.append(_image_block(part.image_url.url, f"{path}.image_url", media))
        elif kind == "file":
            blocks.append(_file_block(part.file, f"{path}.file", media))
        else:
            raise invalid(f"Anthropic models do not accept '{kind}' content parts ({path}).", path)
        if part.HasField("cache_control") and len(blocks) > before:
            blocks[-1]["cache_control"] = cache_control(part.cache_control)
    return blocks
