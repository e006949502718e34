"""A fake OpenAI-compatible upstream for end-to-end tests: a real aiohttp server on loopback."""

from __future__ import annotations

from .control import Fault, RecordedFile, RecordedRequest, ScriptedReply, ScriptedToolCall
from .server import FakeOpenAIUpstream

__all__ = [
    "FakeOpenAIUpstream",
    "Fault",
    "RecordedFile",
    "RecordedRequest",
    "ScriptedReply",
    "ScriptedToolCall",
]
