"""Every refusal in OpenAI's error shape (issue #20, defects 3 and 8), driven with raw bytes.

aiohttp's own protocol errors (oversized or too many headers, obs-fold, bad chunk sizes, a negative
Content-Length, a method nobody serves) used to come back as plain text; a key that is missing or
unknown was told about its body's errors before it heard 401; and bytes no header may hold
(`Authorization: Bearer sk-sr-\\xe9`, `traceparent: 00-\\xff`) reached gRPC metadata and became 500s
with a logged traceback.
"""

from __future__ import annotations

import json
import logging

import pytest

from tests.e2e.harness import GatewayHarness
from tests.e2e.raw_http import assert_anthropic_error, assert_openai_error, exchange, request_bytes

CHAT = json.dumps({"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]}).encode()
UNKNOWN_KEY = "sk-sr-" + "x" * 43


def _port(harness: GatewayHarness) -> int:
    assert harness.running is not None
    return harness.running.http_port


def _bearer(harness: GatewayHarness) -> dict[str, str]:
    return {"Authorization": f"Bearer {harness.api_key}"}


# aiohttp's protocol errors


def test_a_one_megabyte_header_is_431_in_our_shape(harness: GatewayHarness) -> None:
    data = request_bytes("GET", "/v1/models", {**_bearer(harness), "X-Big": "a" * 1_000_000})
    response = exchange(_port(harness), data)
    assert_openai_error(response, 431, "invalid_request_error", "request_header_fields_too_large")


def test_five_hundred_headers_are_431_in_our_shape(harness: GatewayHarness) -> None:
    headers = [*_bearer(harness).items(), *((f"X-H{i}", "v") for i in range(500))]
    response = exchange(_port(harness), request_bytes("GET", "/v1/models", headers))
    assert_openai_error(response, 431, "invalid_request_error", "request_header_fields_too_large")


def test_an_overlong_request_line_is_431_in_our_shape(harness: GatewayHarness) -> None:
    response = exchange(_port(harness), request_bytes("GET", "/v1/" + "a" * 20_000, _bearer(harness)))
    assert_openai_error(response, 431, "invalid_request_error", "request_header_fields_too_large")


def test_obs_fold_is_400_in_our_shape(harness: GatewayHarness) -> None:
    data = request_bytes("GET", "/v1/models", _bearer(harness)).replace(
        b"\r\n\r\n", b"\r\nX-A: b\r\n c\r\n\r\n"
    )
    assert_openai_error(exchange(_port(harness), data), 400, "invalid_request_error", "invalid_http_request")


def test_a_negative_content_length_is_400_in_our_shape(harness: GatewayHarness) -> None:
    data = request_bytes("POST", "/v1/chat/completions", {**_bearer(harness), "Content-Length": "-1"})
    assert_openai_error(exchange(_port(harness), data), 400, "invalid_request_error", "invalid_http_request")


def test_a_bad_chunk_size_is_400_in_our_shape(harness: GatewayHarness) -> None:
    head = request_bytes("POST", "/v1/chat/completions", {**_bearer(harness), "Transfer-Encoding": "chunked"})
    response = exchange(_port(harness), head + b"zz\r\n")
    assert_openai_error(response, 400, "invalid_request_error", "invalid_http_request")


def test_a_bad_chunk_size_after_the_headers_arrived_is_400_not_a_hang(harness: GatewayHarness) -> None:
    """The handler is already reading the body when the bad chunk comes: it must hear of it."""
    head = request_bytes("POST", "/v1/chat/completions", {**_bearer(harness), "Transfer-Encoding": "chunked"})
    response = exchange(_port(harness), head, b"zz\r\n", timeout=5)
    assert_openai_error(response, 400, "invalid_request_error", "invalid_http_request")


def test_a_method_no_parser_knows_is_400_in_our_shape(harness: GatewayHarness) -> None:
    response = exchange(_port(harness), request_bytes("FOO", "/v1/chat/completions", _bearer(harness)))
    assert_openai_error(response, 400, "invalid_request_error", "invalid_http_request")


def test_tls_on_the_plain_port_is_400_in_our_shape(harness: GatewayHarness) -> None:
    hello = b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + b"\x00" * 50
    assert_openai_error(exchange(_port(harness), hello), 400, "invalid_request_error", "invalid_http_request")


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("TRACE", "/v1/chat/completions", {"POST"}),
        ("DELETE", "/v1/embeddings", {"POST"}),
        ("PUT", "/v1/models", {"GET", "HEAD"}),
    ],
)
def test_a_known_path_with_the_wrong_method_is_405_with_allow(
    harness: GatewayHarness, method: str, path: str, allowed: set[str]
) -> None:
    response = exchange(_port(harness), request_bytes(method, path, _bearer(harness)))
    assert_openai_error(response, 405, "invalid_request_error", "method_not_allowed")
    assert {m.strip() for m in response.headers["allow"].split(",")} == allowed


def test_protocol_errors_log_no_traceback(harness: GatewayHarness, caplog: pytest.LogCaptureFixture) -> None:
    """Anyone can send garbage: it must not fill the logs with tracebacks."""
    port = _port(harness)
    with caplog.at_level(logging.DEBUG):
        exchange(port, request_bytes("GET", "/v1/models", {"X-Big": "a" * 20_000}))
        exchange(port, request_bytes("POST", "/v1/chat/completions", {"Content-Length": "-1"}))
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info], caplog.text


# 401 before anything about the body


@pytest.mark.parametrize("authorization", [None, f"Bearer {UNKNOWN_KEY}", "Basic abc", "Bearer"])
@pytest.mark.parametrize(
    "body",
    [b"{{{", json.dumps({"model": "gpt-test"}).encode(), b"[1, 2]"],
    ids=["not-json", "missing-messages", "not-an-object"],
)
def test_a_missing_or_unknown_key_hears_401_before_body_errors(
    harness: GatewayHarness, authorization: str | None, body: bytes
) -> None:
    headers = {"Content-Type": "application/json"}
    if authorization is not None:
        headers["Authorization"] = authorization
    response = exchange(_port(harness), request_bytes("POST", "/v1/chat/completions", headers, body))
    assert_openai_error(response, 401, "authentication_error", "invalid_api_key")


def test_an_unknown_key_with_an_oversized_body_hears_401(harness: GatewayHarness) -> None:
    body = b'{"model": "gpt-test", "pad": "' + b"x" * 100_000 + b'"}'
    headers = {"Authorization": f"Bearer {UNKNOWN_KEY}", "Content-Type": "application/json"}
    response = exchange(_port(harness), request_bytes("POST", "/v1/embeddings", headers, body))
    assert_openai_error(response, 401, "authentication_error", "invalid_api_key")


def test_a_valid_key_still_hears_its_body_errors(harness: GatewayHarness) -> None:
    headers = {**_bearer(harness), "Content-Type": "application/json"}
    response = exchange(_port(harness), request_bytes("POST", "/v1/chat/completions", headers, b"{{{"))
    assert_openai_error(response, 400, "invalid_request_error", "invalid_json")


# header bytes that are not ASCII, and a body that does not decode


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/models"])
def test_a_non_ascii_bearer_token_is_401_without_a_traceback(
    harness: GatewayHarness, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    headers = {"Authorization": "Bearer sk-sr-\xe9", "Content-Type": "application/json"}
    method, body = ("POST", CHAT) if path.endswith("completions") else ("GET", b"")
    with caplog.at_level(logging.DEBUG):
        response = exchange(_port(harness), request_bytes(method, path, headers, body))
    assert_openai_error(response, 401, "authentication_error", "invalid_api_key")
    assert not [r for r in caplog.records if r.exc_info], caplog.text


@pytest.mark.parametrize("traceparent", ["00-\xff", "00-xyz", "00-" + "0" * 32 + "-" + "1" * 16 + "-01"])
def test_an_invalid_traceparent_is_ignored_and_the_request_served(
    harness: GatewayHarness, traceparent: str
) -> None:
    before = len(harness.native.requests_to("/v1/chat/completions"))
    headers = {
        **_bearer(harness),
        "Content-Type": "application/json",
        "traceparent": traceparent,
        "tracestate": "vendor=\xff",
    }
    response = exchange(_port(harness), request_bytes("POST", "/v1/chat/completions", headers, CHAT))
    assert response.status == 200, response.body[:300]
    sent = harness.native.requests_to("/v1/chat/completions")[before:]
    assert sent, "the request reached the upstream"
    assert sent[-1].headers.get("traceparent") != traceparent
    assert "tracestate" not in sent[-1].headers


def test_a_valid_traceparent_is_still_forwarded(harness: GatewayHarness) -> None:
    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    headers = {**_bearer(harness), "Content-Type": "application/json", "traceparent": traceparent}
    response = exchange(_port(harness), request_bytes("POST", "/v1/chat/completions", headers, CHAT))
    assert response.status == 200, response.body[:300]
    assert harness.native.requests_to("/v1/chat/completions")[-1].headers.get("traceparent") == traceparent


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br"])
def test_a_garbage_body_with_content_encoding_is_400(
    harness: GatewayHarness, encoding: str, caplog: pytest.LogCaptureFixture
) -> None:
    headers = {**_bearer(harness), "Content-Type": "application/json", "Content-Encoding": encoding}
    with caplog.at_level(logging.DEBUG):
        response = exchange(
            _port(harness), request_bytes("POST", "/v1/chat/completions", headers, b"0123456789")
        )
    assert_openai_error(response, 400, "invalid_request_error", "invalid_body_encoding")
    assert not [r for r in caplog.records if r.exc_info], caplog.text


# the Anthropic door: the same refusals in Anthropic's shape

MESSAGES_PATHS = ["/v1/messages", "/v1/messages/count_tokens"]
MESSAGE = json.dumps(
    {"model": "gpt-test", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
).encode()


def _api_key(harness: GatewayHarness) -> dict[str, str]:
    return {"x-api-key": harness.api_key}


@pytest.mark.parametrize("path", MESSAGES_PATHS)
def test_a_one_megabyte_header_on_messages_is_431_in_anthropics_shape(
    harness: GatewayHarness, path: str
) -> None:
    data = request_bytes("POST", path, {**_api_key(harness), "X-Big": "a" * 1_000_000}, MESSAGE)
    assert_anthropic_error(exchange(_port(harness), data), 431, "invalid_request_error")


@pytest.mark.parametrize("path", MESSAGES_PATHS)
def test_five_hundred_headers_on_messages_are_431_in_anthropics_shape(
    harness: GatewayHarness, path: str
) -> None:
    headers = [*_api_key(harness).items(), *((f"X-H{i}", "v") for i in range(500))]
    response = exchange(_port(harness), request_bytes("POST", path, headers, MESSAGE))
    assert_anthropic_error(response, 431, "invalid_request_error")


def test_an_overlong_messages_url_is_431_in_anthropics_shape(harness: GatewayHarness) -> None:
    path = "/v1/messages?pad=" + "a" * 20_000
    response = exchange(_port(harness), request_bytes("POST", path, _api_key(harness), MESSAGE))
    assert_anthropic_error(response, 431, "invalid_request_error")


@pytest.mark.parametrize("path", MESSAGES_PATHS)
def test_obs_fold_on_messages_is_400_in_anthropics_shape(harness: GatewayHarness, path: str) -> None:
    data = request_bytes("POST", path, _api_key(harness), MESSAGE).replace(
        b"\r\n\r\n", b"\r\nX-A: b\r\n c\r\n\r\n", 1
    )
    assert_anthropic_error(exchange(_port(harness), data), 400, "invalid_request_error")


@pytest.mark.parametrize("path", MESSAGES_PATHS)
def test_a_negative_content_length_on_messages_is_400_in_anthropics_shape(
    harness: GatewayHarness, path: str
) -> None:
    data = request_bytes("POST", path, {**_api_key(harness), "Content-Length": "-1"})
    assert_anthropic_error(exchange(_port(harness), data), 400, "invalid_request_error")


@pytest.mark.parametrize("path", MESSAGES_PATHS)
def test_a_bad_chunk_size_on_messages_is_400_in_anthropics_shape(harness: GatewayHarness, path: str) -> None:
    head = request_bytes("POST", path, {**_api_key(harness), "Transfer-Encoding": "chunked"})
    assert_anthropic_error(exchange(_port(harness), head + b"zz\r\n"), 400, "invalid_request_error")
    # The handler is already reading the body when the bad chunk comes.
    response = exchange(_port(harness), head, b"zz\r\n", timeout=5)
    assert_anthropic_error(response, 400, "invalid_request_error")


def test_a_method_no_parser_knows_on_messages_is_400_in_anthropics_shape(harness: GatewayHarness) -> None:
    response = exchange(_port(harness), request_bytes("FOO", "/v1/messages", _api_key(harness)))
    assert_anthropic_error(response, 400, "invalid_request_error")


@pytest.mark.parametrize("encoding", ["gzip", "br"])
def test_a_garbage_body_with_content_encoding_on_messages_is_400_in_anthropics_shape(
    harness: GatewayHarness, encoding: str
) -> None:
    headers = {**_api_key(harness), "Content-Type": "application/json", "Content-Encoding": encoding}
    response = exchange(_port(harness), request_bytes("POST", "/v1/messages", headers, b"0123456789"))
    assert_anthropic_error(response, 400, "invalid_request_error")


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "TRACE"])
@pytest.mark.parametrize("path", MESSAGES_PATHS)
def test_a_wrong_method_on_messages_is_405_in_anthropics_shape(
    harness: GatewayHarness, method: str, path: str
) -> None:
    response = exchange(_port(harness), request_bytes(method, path, _api_key(harness)))
    assert_anthropic_error(response, 405, "invalid_request_error")
    assert {m.strip() for m in response.headers["allow"].split(",")} == {"POST"}


def test_an_unknown_path_under_messages_is_404_in_anthropics_shape(harness: GatewayHarness) -> None:
    response = exchange(_port(harness), request_bytes("POST", "/v1/messages/batches", _api_key(harness)))
    assert_anthropic_error(response, 404, "not_found_error")


def test_the_openai_paths_keep_openais_shape_beside_messages(harness: GatewayHarness) -> None:
    """Only the Messages door answers in Anthropic's shape: a path that merely starts alike does not."""
    response = exchange(_port(harness), request_bytes("GET", "/v1/messagesx", _bearer(harness)))
    assert_openai_error(response, 400, "invalid_request_error", "unknown_url")


@pytest.mark.parametrize(
    "headers",
    [{}, {"x-api-key": UNKNOWN_KEY}, {"Authorization": f"Bearer {UNKNOWN_KEY}"}],
    ids=["no-key", "unknown-x-api-key", "unknown-bearer"],
)
@pytest.mark.parametrize("path", MESSAGES_PATHS)
@pytest.mark.parametrize("body", [b"{{{", b'{"model": "gpt-test"}'], ids=["not-json", "no-messages"])
def test_a_missing_or_unknown_key_on_messages_hears_401_before_body_errors(
    harness: GatewayHarness, headers: dict[str, str], path: str, body: bytes
) -> None:
    headers = {**headers, "Content-Type": "application/json"}
    response = exchange(_port(harness), request_bytes("POST", path, headers, body))
    assert_anthropic_error(response, 401, "authentication_error")


@pytest.mark.parametrize("path", MESSAGES_PATHS)
def test_a_valid_x_api_key_still_hears_its_body_errors(harness: GatewayHarness, path: str) -> None:
    headers = {**_api_key(harness), "Content-Type": "application/json"}
    response = exchange(_port(harness), request_bytes("POST", path, headers, b"{{{"))
    assert_anthropic_error(response, 400, "invalid_request_error")


@pytest.mark.parametrize("path", MESSAGES_PATHS)
def test_a_non_ascii_x_api_key_is_401_without_a_traceback(
    harness: GatewayHarness, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    headers = {"x-api-key": "sk-sr-\xe9", "Content-Type": "application/json"}
    with caplog.at_level(logging.DEBUG):
        response = exchange(_port(harness), request_bytes("POST", path, headers, MESSAGE))
    assert_anthropic_error(response, 401, "authentication_error")
    assert not [r for r in caplog.records if r.exc_info], caplog.text


@pytest.mark.parametrize("header", ["Authorization", "x-api-key"])
def test_a_key_with_a_tab_inside_is_401_without_a_traceback(
    harness: GatewayHarness, header: str, caplog: pytest.LogCaptureFixture
) -> None:
    value = "Bearer sk-sr-a\tb" if header == "Authorization" else "sk-sr-a\tb"
    headers = {header: value, "Content-Type": "application/json"}
    with caplog.at_level(logging.DEBUG):
        response = exchange(_port(harness), request_bytes("POST", "/v1/messages", headers, MESSAGE))
        openai = exchange(_port(harness), request_bytes("POST", "/v1/chat/completions", headers, CHAT))
    assert_anthropic_error(response, 401, "authentication_error")
    assert openai.status == 401, openai.body
    assert not [r for r in caplog.records if r.exc_info], caplog.text


@pytest.mark.parametrize("beta", ["tools-\xe9", "a\tb"])
def test_an_anthropic_beta_gRPC_cannot_carry_is_400_without_a_traceback(
    harness: GatewayHarness, beta: str, caplog: pytest.LogCaptureFixture
) -> None:
    headers = {**_api_key(harness), "anthropic-beta": beta, "Content-Type": "application/json"}
    with caplog.at_level(logging.DEBUG):
        response = exchange(_port(harness), request_bytes("POST", "/v1/messages", headers, MESSAGE))
    assert_anthropic_error(response, 400, "invalid_request_error")
    assert not [r for r in caplog.records if r.exc_info], caplog.text
