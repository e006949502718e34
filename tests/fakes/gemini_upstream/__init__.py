"""A fake Google Gemini API for tests: a real aiohttp server on loopback (see `server.py`)."""

from __future__ import annotations

from .control import GeminiFault, GeminiReply, RecordedRequest, ScriptedCall
from .server import FakeGeminiUpstream, google_error

__all__ = [
    "FakeGeminiUpstream",
    "GeminiFault",
    "GeminiReply",
    "RecordedRequest",
    "ScriptedCall",
    "google_error",
]
