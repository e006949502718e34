"""Types a test uses to steer the fake Gemini upstream and to inspect what it received."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Any

__all__ = ["GeminiFault", "GeminiReply", "RecordedRequest", "ScriptedCall"]


@dataclass
class GeminiFault:
    """A failure queued for the next matching request(s).

    `path` is an fnmatch pattern over the request path ("*:streamGenerateContent"); None matches
    any. `status` answers with a google.rpc error body (`grpc_status`, `message`), plus a RetryInfo
    detail when `retry_delay` is set (e.g. "7s"). `error_after_events` lets a stream send that many
    events and then an in-band `{"error": ...}` event; `cut_after_events` ends the stream there
    with no finishReason. `garbage` answers 200 with a non-JSON body. `headers` go on the response.
    """

    path: str | None = None
    status: int | None = None
    grpc_status: str = "INTERNAL"
    message: str = "An internal error has occurred."
    retry_delay: str | None = None
    reasons: tuple[str, ...] = ()
    headers: dict[str, str] = field(default_factory=dict)
    error_after_events: int | None = None
    cut_after_events: int | None = None
    garbage: bool = False
    hang: float | None = None
    times: int = 1

    def matches(self, path: str) -> bool:
        return self.path is None or fnmatch.fnmatchcase(path, self.path)


@dataclass
class ScriptedCall:
    """One function call of a scripted reply."""

    name: str
    args: dict[str, Any] = field(default_factory=dict)
    thought_signature: str | None = None


@dataclass
class GeminiReply:
    """The next generateContent answer, used instead of the deterministic default.

    `finish_reason` is Gemini's (STOP, MAX_TOKENS, SAFETY, ...). `usage` overrides usageMetadata
    fields (promptTokenCount, candidatesTokenCount, thoughtsTokenCount, cachedContentTokenCount);
    totalTokenCount is recomputed unless given. `block_reason` answers with no candidate at all.
    """

    text: str | None = None
    thoughts: str | None = None
    calls: list[ScriptedCall] = field(default_factory=list)
    finish_reason: str = "STOP"
    usage: dict[str, int] | None = None
    block_reason: str | None = None


@dataclass
class RecordedRequest:
    """One request as the fake received it. Header names are lower-cased."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    json: Any
    body: bytes
