"""Types a test uses to steer the fake upstream and to inspect what it received."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Fault", "RecordedFile", "RecordedRequest", "ScriptedReply", "ScriptedToolCall"]


@dataclass
class Fault:
    """A failure queued for the next matching request(s).

    `path` is an exact request path or an fnmatch pattern ("/v1/videos/*"); None matches any path.
    Fields combine: `hang` sleeps first, then `status` answers with an OpenAI error body (or a
    garbage body when `garbage` is set too). Without `status`, `garbage` answers 200 with a
    non-JSON body, or inserts a non-JSON `data:` line into a stream. `reset_after_chunks` and
    `cut_before_done` only shape streams; `reset_after_chunks` on a non-streaming request drops
    the connection without answering. `headers` are added to whatever response is sent. `usage`
    goes into a `status` error's body beside `error`: an upstream that bills a call it failed.
    """

    path: str | None = None
    status: int | None = None
    error_type: str = "server_error"
    error_code: str | None = None
    message: str = "injected failure"
    headers: dict[str, str] = field(default_factory=dict)
    hang: float | None = None
    garbage: bool = False
    reset_after_chunks: int | None = None
    cut_before_done: bool = False
    usage: dict[str, Any] | None = None
    times: int = 1

    def matches(self, path: str) -> bool:
        return self.path is None or fnmatch.fnmatchcase(path, self.path)


@dataclass
class ScriptedToolCall:
    """One tool call of a scripted reply; dict arguments are sent as compact JSON."""

    name: str
    arguments: str | dict[str, Any] = "{}"
    id: str | None = None


@dataclass
class ScriptedReply:
    """The next generation reply, used verbatim instead of the deterministic default.

    It is consumed by the next POST /v1/chat/completions or /v1/responses. `finish_reason` defaults
    to "tool_calls" when tool calls are given, else "stop". `usage` keys (prompt_tokens,
    completion_tokens) override the counted usage; total_tokens is always their sum. `no_usage`
    plays an OpenAI-compatible server that reports no usage at all: none in a chat completion, and
    no usage chunk even when `stream_options.include_usage` asks for one. `usage_on_finish` plays
    an upstream that streams its usage on the finish chunk, asked or not, and no usage chunk.
    `reasoning` is the model's thinking, sent in the server's `reasoning_field` (if it has one).

    The `extra_*` fields play a vendor's extensions, keys OpenAI does not document: `extra_fields`
    go at the top level of the completion and of every chunk, `extra_message_fields` into the
    completion's message and the first delta of each choice, `extra_usage_fields` into the usage.
    """

    content: str | None = None
    tool_calls: list[ScriptedToolCall] = field(default_factory=list)
    finish_reason: str | None = None
    usage: dict[str, int] | None = None
    no_usage: bool = False
    usage_on_finish: bool = False
    reasoning: str | None = None
    extra_fields: dict[str, Any] = field(default_factory=dict)
    extra_message_fields: dict[str, Any] = field(default_factory=dict)
    extra_usage_fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RecordedFile:
    """A file part of a multipart request."""

    filename: str | None
    content_type: str
    data: bytes


@dataclass
class RecordedRequest:
    """One request as the fake received it. Header names are lower-cased.

    `reply` is what a chat completion request was answered with: the body, or every SSE frame.
    """

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    json: Any
    body: bytes
    form: dict[str, str] | None = None
    files: dict[str, RecordedFile] = field(default_factory=dict)
    reply: bytes = b""
