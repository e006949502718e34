"""A JSON request body whose inline media goes out as base64 bytes, never as Python strings.

Built the plain way, an image held for an upstream exists four or five times over at once: the
raw bytes, base64 bytes, the base64 `str`, the serialized JSON, the request block with its head,
and the socket's buffer of whatever the kernel did not take at once. Here the body is serialized
with a short placeholder where each image goes; `encode` then cuts the JSON at the placeholders and
puts each image's base64 bytes between the pieces, dropping the raw bytes as it goes. The upstream
client writes the pieces one after the other, under flow control, so what stays is one base64 copy.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Mapping
from typing import Any

import orjson

from server.providers.media_budget import MediaLease
from server.providers.remote_media import Media

__all__ = ["Payload", "Splicer"]


class Splicer:
    """Stands in for media in a body being built, and splices it back into the serialized body."""

    __slots__ = ("_marker", "_held")

    def __init__(self) -> None:
        # Random per body: client text cannot contain it by chance or on purpose.
        self._marker = f"~siraya-media-{secrets.token_hex(12)}-"
        self._held: list[Media | None] = []

    def hold(self, media: Media) -> Media:
        """A stand-in for `media` whose `token` the body carries where the base64 text would go."""
        self._held.append(media)
        return Media(data=b"", media_type=media.media_type, token=f"{self._marker}{len(self._held) - 1}")

    def hold_all(self, media: Mapping[str, Media]) -> dict[str, Media]:
        return {param: self.hold(item) for param, item in media.items()}

    def encode(self, body: Any) -> list[bytes]:
        """`orjson.dumps(body)` as pieces, each placeholder replaced by its media's base64 bytes."""
        marker = b'"' + self._marker.encode()
        pieces = orjson.dumps(body).split(marker)
        out = [pieces[0]]
        for piece in pieces[1:]:
            index, quote, rest = piece.partition(b'"')
            media = self._held[int(index)]
            if media is None or not quote:
                raise ValueError("a media placeholder appears twice or is malformed")
            self._held[int(index)] = None  # the raw bytes can go once encoded
            out += (b'"', base64.b64encode(media.data), b'"' + rest)
        return out


class Payload:
    """A request body on its way upstream, with the media reservation it holds until it is sent."""

    __slots__ = ("pieces", "_lease")

    def __init__(self, pieces: list[bytes], lease: MediaLease | None = None) -> None:
        self.pieces = pieces
        self._lease = lease

    def sent(self) -> None:
        """The upstream has the body (its reply began) or the call failed: free the bytes and the budget.

        The upstream client still holds the same list, so emptying it frees the pieces there too.
        """
        self.pieces.clear()
        if self._lease is not None:
            self._lease.release()
