"""A fake Anthropic Messages upstream for tests: a real aiohttp server on loopback."""

from __future__ import annotations

from .control import AnthropicFault, RecordedRequest, ScriptedMessage
from .replies import SIGNATURE, THINKING_TEXT, sign_thinking
from .server import FakeAnthropicUpstream
from .validate import RequestInvalid, validate_request

__all__ = [
    "SIGNATURE",
    "THINKING_TEXT",
    "AnthropicFault",
    "FakeAnthropicUpstream",
    "RecordedRequest",
    "RequestInvalid",
    "ScriptedMessage",
    "sign_thinking",
    "validate_request",
]
