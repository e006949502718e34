"""Structured JSON logs, the per-request access line, and redaction of secrets in every record.

`configure_logging` installs one handler on the root logger with `SecretRedactor` as its filter,
so every record that reaches it, from any library and including its exception text, is scrubbed
of provider keys, gateway keys and anything shaped like a bearer token.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import re
import sys
import time
from collections.abc import Iterable
from typing import Any, TextIO

import orjson

__all__ = [
    "ACCESS_LOG",
    "ACCESS_LOGGER",
    "JsonFormatter",
    "SecretRedactor",
    "configure_logging",
    "redact",
    "remember_secrets",
    "unconfigure_logging",
]

ACCESS_LOGGER = logging.getLogger("siraya.access")
REDACTED = "[REDACTED]"
# Key shapes of OpenAI-style (sk-..., sk-proj-..., sk-ant-..., our sk-sr-...), Google (AIza...),
# and any bearer token, so a key that is not in the config is still caught; and a key an upstream
# echoes masked ("sk-pr****abcd" in a 401), whose visible ends are still the key's.
_SECRET_SHAPES = (
    r"\bsk-[A-Za-z0-9_\-]*\*{3,}[A-Za-z0-9_\-]*",
    r"\bsk-[A-Za-z0-9_\-]{6,}",
    r"\bAIza[0-9A-Za-z_\-]{20,}",
    r"(?<=bearer )[A-Za-z0-9._~+/=\-]{6,}",
    r"(?<=x-api-key: )[^\s'\"]{6,}",
    r"(?<=x-goog-api-key: )[^\s'\"]{6,}",
)
_SHAPES = re.compile("|".join(_SECRET_SHAPES), re.IGNORECASE)
# Every shape above contains one of these (lower-cased).
_TRIGGERS = ("sk-", "aiza", "bearer ", "api-key: ")
_known: re.Pattern[str] | None = None
_known_values: set[str] = set()
# The attributes every LogRecord has; anything else came in through `extra` and is logged as a field.
_RECORD_FIELDS = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


def remember_secrets(secrets: Iterable[str | None]) -> None:
    """Add secrets to redact by value (provider keys, the admin key), whatever their shape.

    Never forgets one: after a reload, requests on the old configuration may still log.
    """
    global _known
    _known_values.update(s for s in secrets if s and len(s) >= 4)
    values = sorted(_known_values, key=len, reverse=True)
    _known = re.compile("|".join(re.escape(v) for v in values)) if values else None


def redact(text: str) -> str:
    # Substring checks first: most lines hold no secret, and the regexes cost ~50 us on a long line.
    if _known is not None and any(value in text for value in _known_values):
        text = _known.sub(REDACTED, text)
    lowered = text.lower()
    if any(trigger in lowered for trigger in _TRIGGERS):
        text = _SHAPES.sub(REDACTED, text)
    return text


class SecretRedactor(logging.Filter):
    """Rewrites a record's message, fields and exception text with secrets replaced."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message or record.args:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        for name, value in record.__dict__.items():
            if name not in _RECORD_FIELDS and isinstance(value, str):
                record.__dict__[name] = redact(value)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, then any `extra` fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": _iso_time(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            # Tells apart the workers of `serve --workers N`, which share one output.
            "pid": record.process,
        }
        for name, value in record.__dict__.items():
            if name not in _RECORD_FIELDS:
                entry[name] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exc"] = record.exc_text
        return orjson.dumps(entry, default=str).decode()


_second_cache: list[Any] = [-1, ""]


def _iso_time(created: float) -> str:
    second = int(created)
    if second != _second_cache[0]:
        _second_cache[:] = [second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))]
    return f"{_second_cache[1]}.{int(created % 1 * 1000):03d}Z"


BATCH_SECONDS = 0.05
BATCH_LINES = 256


class AccessLog:
    """The one JSON line per request, written straight to the log stream.

    It skips the `logging` machinery on purpose: a LogRecord, its filter and its formatter cost about
    ten times the rest of a request's bookkeeping (measured: ~200 us against ~20 us). The line is
    still redacted as a whole, and it goes to the same stream as every other log line.

    When `batched` (the serving process's own stderr), lines are written together every
    BATCH_SECONDS (or at once when BATCH_LINES wait): one write system call for many requests
    instead of one each, which also spares the loop thread a GIL hand-off to the accounting threads
    per line. Writing once per event-loop iteration still cost 4% of a request under load (py-spy).
    A crash loses at most the last BATCH_SECONDS of lines; a clean stop flushes them.
    An explicit stream (tests, embedding) gets each line as it is made.
    """

    __slots__ = ("enabled", "_stream", "_head", "_batched", "_pending", "_scheduled")

    def __init__(self) -> None:
        self.enabled = False
        self._stream: TextIO | None = None
        self._head = ""
        self._batched = False
        self._pending: list[str] = []
        self._scheduled = False

    def configure(self, stream: TextIO | None, enabled: bool, *, batched: bool = False) -> None:
        self.flush()
        self._stream = stream
        # Every field before the request's own, pre-encoded once (the timestamp goes in front of it).
        self._head = f'","level":"info","logger":"{ACCESS_LOGGER.name}","msg":"request","pid":{os.getpid()}'
        self._batched = batched
        self.enabled = enabled and stream is not None

    def write(self, fields: dict[str, Any]) -> None:
        body = orjson.dumps(fields).decode()
        rest = "," + body[1:] if len(body) > 2 else "}"
        line = redact('{"ts":"' + _iso_time(time.time()) + self._head + rest + "\n")
        if not self._batched:
            assert self._stream is not None
            self._stream.write(line)
            return
        self._pending.append(line)
        if len(self._pending) >= BATCH_LINES:
            self.flush()
        elif not self._scheduled:
            try:
                asyncio.get_running_loop().call_later(BATCH_SECONDS, self.flush)
            except RuntimeError:
                self.flush()
                return
            self._scheduled = True

    def flush(self) -> None:
        self._scheduled = False
        if self._pending and self._stream is not None:
            text = "".join(self._pending)
            self._pending.clear()
            try:
                self._stream.write(text)
            except (ValueError, OSError):  # the stream was closed under us (interpreter exit)
                pass
        self._pending.clear()


ACCESS_LOG = AccessLog()
atexit.register(ACCESS_LOG.flush)


def configure_logging(
    level: str = "info",
    fmt: str = "json",
    *,
    access_log: bool = True,
    secrets: Iterable[str | None] = (),
    stream: TextIO | None = None,
) -> logging.Handler:
    """Route every log record through one redacting handler on the root logger."""
    remember_secrets(secrets)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(
        JsonFormatter()
        if fmt == "json"
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    handler.addFilter(SecretRedactor())
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_siraya", False):
            root.removeHandler(old)
    handler._siraya = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level.upper())
    ACCESS_LOGGER.setLevel(logging.INFO if access_log else logging.CRITICAL + 1)
    # The process's own stderr is batched; a stream handed in gets each line at once.
    ACCESS_LOG.configure(handler.stream, access_log, batched=stream is None)
    # aiohttp's own access log would be a second line per request.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    return handler


def unconfigure_logging(handler: logging.Handler) -> None:
    """Undo `configure_logging` (tests)."""
    logging.getLogger().removeHandler(handler)
    ACCESS_LOG.configure(None, False)
