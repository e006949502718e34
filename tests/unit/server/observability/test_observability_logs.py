"""Log redaction and the JSON line format."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from server.observability.logs import JsonFormatter, SecretRedactor, redact, remember_secrets


@pytest.fixture
def logger() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(SecretRedactor())
    log = logging.getLogger("tests.observability.logs")
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    log.propagate = False
    yield log, stream
    log.removeHandler(handler)


@pytest.mark.parametrize(
    "secret",
    [
        "sk-proj-abcDEF0123456789",
        "sk-ant-api03-abcdef0123456789",
        "sk-sr-0123456789abcdef",
        "AIzaSyA-0123456789abcdefghijklmnopqrs",
    ],
)
def test_key_shapes_are_redacted(secret: str) -> None:
    assert redact(f"failed with {secret}, retrying") == "failed with [REDACTED], retrying"


def test_a_key_an_upstream_echoes_masked_is_redacted_with_its_visible_ends() -> None:
    # OpenAI's 401 shows the first characters and the last four of the key it was given.
    text = "Incorrect API key provided: sk-pr***************abcd. You can find your API key at ..."
    assert redact(text) == "Incorrect API key provided: [REDACTED]. You can find your API key at ..."


def test_bearer_tokens_and_api_key_headers_are_redacted() -> None:
    text = redact("Authorization: Bearer abc.def-123456 x-api-key: topsecretvalue")
    assert "abc.def-123456" not in text and "topsecretvalue" not in text
    assert text.count("[REDACTED]") == 2


def test_a_known_secret_of_any_shape_is_redacted() -> None:
    remember_secrets(["plain-provider-token-42"])
    assert redact("header was plain-provider-token-42!") == "header was [REDACTED]!"


def test_ordinary_text_is_left_alone() -> None:
    text = "model gpt-4o-mini served by openai in 12 ms; task-queue ok"
    assert redact(text) == text


def test_messages_arguments_fields_and_exceptions_are_all_redacted(
    logger: tuple[logging.Logger, io.StringIO],
) -> None:
    log, stream = logger
    secret = "sk-live-0123456789abcdef"
    try:
        raise ValueError(f"upstream rejected {secret}")
    except ValueError:
        log.exception("call with %s failed", secret, extra={"detail": f"key={secret}"})
    line = stream.getvalue()
    assert secret not in line
    entry = json.loads(line)
    assert entry["msg"] == "call with [REDACTED] failed"
    assert entry["detail"] == "key=[REDACTED]"
    assert "ValueError: upstream rejected [REDACTED]" in entry["exc"]


def test_one_json_object_per_line_with_extra_fields(logger: tuple[logging.Logger, io.StringIO]) -> None:
    log, stream = logger
    log.info("request", extra={"request_id": "req_1", "status": 200, "ttft_ms": None})
    log.warning("second")
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert {k: first[k] for k in ("level", "logger", "msg", "request_id", "status", "ttft_ms")} == {
        "level": "info",
        "logger": "tests.observability.logs",
        "msg": "request",
        "request_id": "req_1",
        "status": 200,
        "ttft_ms": None,
    }
    assert first["ts"].endswith("Z") and isinstance(first["pid"], int)
    assert second["level"] == "warning"
