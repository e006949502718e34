"""Raw HTTP/1.1 over a socket: for requests no HTTP client would send (bad framing, bad bytes)."""

from __future__ import annotations

import http.client
import json
import socket
import time
from dataclasses import dataclass
from typing import Any


@dataclass
class RawResponse:
    status: int
    # Names lower-cased.
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def exchange(port: int, *parts: bytes, pause: float = 0.3, timeout: float = 10.0) -> RawResponse:
    """Send `parts` (pausing between them) on a new connection and read the one response.

    A server that answers before the whole request is sent may stop reading: a failed send is then
    expected, and the response is still read.
    """
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        for index, part in enumerate(parts):
            if index:
                time.sleep(pause)
            try:
                sock.sendall(part)
            except OSError:
                break
        response = http.client.HTTPResponse(sock)
        response.begin()
        headers = {name.lower(): value for name, value in response.getheaders()}
        return RawResponse(response.status, headers, response.read())


def request_bytes(
    method: str,
    path: str,
    headers: dict[str, str] | list[tuple[str, str]] = (),
    body: bytes = b"",  # type: ignore[assignment]
) -> bytes:
    """A request with `Host` and, when there is a body, `Content-Length` added."""
    pairs = list(headers.items()) if isinstance(headers, dict) else list(headers)
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", *(f"{k}: {v}" for k, v in pairs)]
    if body and not any(k.lower() in ("content-length", "transfer-encoding") for k, _ in pairs):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def assert_openai_error(
    response: RawResponse, status: int, type_: str, code: str | None = None
) -> dict[str, Any]:
    """The response is `status` with exactly OpenAI's error envelope; returns the `error` object."""
    assert response.status == status, (response.status, response.body[:300])
    assert response.headers.get("content-type", "").startswith("application/json"), response.headers
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"}, error
    assert error["type"] == type_, error
    if code is not None:
        assert error["code"] == code, error
    assert isinstance(error["message"], str) and error["message"], error
    return error


def assert_anthropic_error(response: RawResponse, status: int, type_: str) -> dict[str, Any]:
    """The response is `status` with exactly Anthropic's error shape; returns the `error` object."""
    assert response.status == status, (response.status, response.body[:300])
    assert response.headers.get("content-type", "").startswith("application/json"), response.headers
    body = response.json()
    assert body.get("type") == "error" and set(body) <= {"type", "error", "request_id"}, body
    error = body["error"]
    assert set(error) == {"type", "message"}, error
    assert error["type"] == type_, error
    assert isinstance(error["message"], str) and error["message"], error
    return error
