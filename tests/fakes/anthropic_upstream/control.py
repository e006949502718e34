"""Types a test uses to steer the fake Anthropic upstream and to inspect what it received."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["AnthropicFault", "RecordedRequest", "ScriptedMessage"]


@dataclass
class AnthropicFault:
    """A failure queued for the next request(s) to /v1/messages.

    With `status`, the answer is that status and Anthropic's error body (`error_type`, `message`),
    or an HTML body when `garbage` is set. Without `status`, a stream carries an `event: error`
    with that type after `error_after_events` events (0: right away), or is cut off after
    `cut_after_events` events without message_stop; `garbage` alone answers 200 with a body that
    is not JSON. `hang` sleeps first. `headers` are added to the answer (retry-after, say).
    """

    status: int | None = None
    error_type: str = "api_error"
    message: str = "Internal server error"
    headers: dict[str, str] = field(default_factory=dict)
    error_after_events: int | None = None
    cut_after_events: int | None = None
    garbage: bool = False
    hang: float | None = None
    times: int = 1


@dataclass
class ScriptedMessage:
    """The next reply, used verbatim instead of the deterministic default.

    `content` holds Anthropic content blocks as the API returns them (text, thinking with a
    signature, tool_use with an `input` object). `usage` keys override the counted usage.
    """

    content: list[dict[str, Any]]
    stop_reason: str = "end_turn"
    stop_sequence: str | None = None
    usage: dict[str, int] | None = None


@dataclass
class RecordedRequest:
    """One request as the fake received it. Header names are lower-cased; `json` is None if unparsable."""

    method: str
    path: str
    headers: dict[str, str]
    json: Any
    body: bytes
