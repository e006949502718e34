"""Video generation jobs (OpenAI's /v1/videos): each poll moves a job one step toward completion."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

__all__ = ["VideoJob", "fake_mp4"]

# A few hundred KB, so a proxy that buffers whole bodies is caught and chunked relays are exercised.
VIDEO_BYTES = 384 * 1024
_EXPIRY_SECONDS = 3600


@dataclass
class VideoJob:
    id: str
    created_at: int
    model: str
    prompt: str
    seconds: str
    size: str
    status: str = "queued"
    progress: int = 0
    completed_at: int | None = None

    def advance(self, now: int) -> None:
        if self.status == "queued":
            self.status, self.progress = "in_progress", 50
        elif self.status == "in_progress":
            self.status, self.progress, self.completed_at = "completed", 100, now

    def resource(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "video",
            "created_at": self.created_at,
            "status": self.status,
            "completed_at": self.completed_at,
            "error": None,
            "expires_at": None if self.completed_at is None else self.completed_at + _EXPIRY_SECONDS,
            "model": self.model,
            "progress": self.progress,
            "prompt": self.prompt,
            "remixed_from_video_id": None,
            "seconds": self.seconds,
            "size": self.size,
        }


def fake_mp4(video_id: str, size: int = VIDEO_BYTES) -> bytes:
    """An MP4-looking payload: an ftyp box, then bytes derived from the video id."""
    head = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"
    block = b"".join(hashlib.sha256(f"{video_id}:{i}".encode()).digest() for i in range(128))
    body = block * (size // len(block) + 1)
    return (head + body)[:size]
