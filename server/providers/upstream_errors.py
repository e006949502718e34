"""Classify an upstream's failure into the gateway's error tree: its HTTP answer by status and typed
fields, and a failure on the wire (refused, DNS, TLS, timeout, cut) by what went wrong.

Every message says what to fix: the upstream's own words for any HTTP error it explains (secrets
scrubbed by the same scrubber as the logs, so a key the upstream echoes, whole or masked, never
reaches a client), and `METHOD /path` of the call tried (never the query string, which may carry a
key, nor the host, which is the operator's to know: the WARNING log line of the attempt has it).
"""

from __future__ import annotations

import socket
import ssl
from typing import Any
from urllib.parse import urlsplit

import orjson

from server.errors import (
    GatewayError,
    InvalidRequest,
    RateLimited,
    RequestTimeout,
    UpstreamError,
    UpstreamOverloaded,
)
from server.observability.logs import redact as scrub_secrets
from server.providers.openai_relay import valid_usage
from server.providers.transport.errors import (
    ConnectError,
    ConnectTimeout,
    PoolTimeout,
    ProxyError,
    ReplyError,
    ServerDisconnected,
)

MAX_RETRY_AFTER_SECONDS = 3600.0
# An upstream's own message is cut to this many characters: enough for any real explanation.
MAX_UPSTREAM_MESSAGE = 400


def parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


def upstream_message(body: bytes) -> tuple[str | None, str | None]:
    """The (message, param) of an OpenAI-shaped error body, if it is one."""
    try:
        parsed: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None, None
    error = parsed.get("error") if isinstance(parsed, dict) else None
    if isinstance(error, dict):
        message = error.get("message")
        param = error.get("param")
        return (message if isinstance(message, str) else None), (param if isinstance(param, str) else None)
    if isinstance(error, str):
        return error, None
    return None, None


def redact(text: str, secrets: tuple[str, ...]) -> str:
    """`text` without the provider's own keys, nor anything the log scrubber takes for a secret."""
    for secret in secrets:
        if secret and secret in text:
            text = text.replace(secret, "***")
    text = scrub_secrets(text)
    if len(text) > MAX_UPSTREAM_MESSAGE:
        text = text[: MAX_UPSTREAM_MESSAGE - 1] + "…"
    return text


def sentence(text: str) -> str:
    """`text` ending as a sentence, so that what the gateway adds after it reads apart."""
    text = text.strip()
    return text if not text or text[-1] in ".!?…" else text + "."


def call_target(method: str, url: str) -> tuple[str, str]:
    """(`METHOD /path` for the client's message, `METHOD scheme://host:port/path` for the log).

    Neither holds the query string: a key may travel there.
    """
    parts = urlsplit(url)
    path = parts.path or "/"
    return f"{method} {path}", f"{method} {parts.scheme}://{parts.netloc}{path}"


def classify_http_error(
    provider: str, status: int, body: bytes, retry_after: str | None, secrets: tuple[str, ...]
) -> GatewayError:
    error = _classify(provider, status, body, retry_after, secrets)
    error.upstream_status = status
    error.billed_usage = billed_usage(body)
    return error


def billed_usage(body: bytes) -> dict[str, Any] | None:
    """The `usage` object of an error body, when the upstream says what it billed for a failed call
    (token counts only, integers; anything else is not trusted)."""
    if b'"usage"' not in body:
        return None
    try:
        parsed: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    usage = parsed.get("usage") if isinstance(parsed, dict) else None
    return usage if isinstance(usage, dict) and valid_usage(usage) else None


def _classify(
    provider: str, status: int, body: bytes, retry_after: str | None, secrets: tuple[str, ...]
) -> GatewayError:
    message, param = upstream_message(body)
    safe_message = redact(message, secrets) if message else None
    if status in (401, 403):
        return UpstreamError(
            f"Provider '{provider}' rejected the gateway's credentials (HTTP {status})"
            + (f": {safe_message}" if safe_message else ".")
        )
    if status == 408:
        return RequestTimeout(f"Provider '{provider}' timed out.")
    if status == 429:
        return RateLimited(
            f"Provider '{provider}' is rate limiting requests."
            + (f" {safe_message}" if safe_message else ""),
            retry_after=parse_retry_after(retry_after),
        )
    if status in (400, 413, 422):
        return InvalidRequest(
            safe_message or f"Provider '{provider}' rejected the request (HTTP {status}).",
            param=param,
            code="request_too_large" if status == 413 else None,
        )
    if status == 404:
        return UpstreamError(
            f"Provider '{provider}' does not serve this model or route (HTTP 404)."
            + (f" {sentence(safe_message)}" if safe_message else "")
            + NOT_FOUND_HINT
        )
    if status in OVERLOADED_STATUSES:
        return UpstreamOverloaded(
            f"Provider '{provider}' is overloaded (HTTP {status})"
            + (f": {safe_message}" if safe_message else "; retry shortly."),
            retry_after=parse_retry_after(retry_after),
        )
    return UpstreamError(
        f"Provider '{provider}' failed (HTTP {status})" + (f": {safe_message}" if safe_message else ".")
    )


# "The engine is currently overloaded" (OpenAI's 503), and the 529 Anthropic-style servers send.
OVERLOADED_STATUSES = (503, 529)


NOT_FOUND_HINT = (
    " Check the provider's base_url (an OpenAI-style API's usually ends in /v1) and the upstream model name."
)


def located(error: GatewayError, target: str, url: str) -> GatewayError:
    """`error` naming the call it came from, once: "... [POST /v1/chat/completions]."; `url` (the
    logged form, with the host) goes on `error.upstream_url` for the attempt's log line."""
    if error.upstream_url is None:
        error.upstream_url = url
        if isinstance(error, UpstreamError) and f"[{target}]" not in error.message:
            error.message = f"{error.message.rstrip('.')} [{target}]."
            error.args = (error.message,)
    return error


def transport_error(
    provider: str,
    error: BaseException,
    target: str,
    url: str,
    connect_timeout: float | None = None,
    read_timeout: float | None = None,
) -> GatewayError:
    """The one mapping of the transport's error tree (a failure on the wire: no HTTP answer, or a
    cut one) to the gateway's.

    Refused, DNS, TLS, connect timeout, a proxy that would not relay, a dropped connection and a
    reply cut short each say so: they call for different fixes (start the server, fix the host name,
    fix the scheme or the certificate, fix the proxy, look at the network, look at the upstream's
    health). The client is told that a proxy failed and how; the log line (`upstream_url`) also
    names the proxy, by its host and port only, never its credentials.
    """
    cause = error.__cause__ if isinstance(error, ConnectError) else None
    if isinstance(error, ConnectTimeout):
        limit = f" within {connect_timeout:g}s" if connect_timeout is not None else ""
        through = " through its proxy" if error.proxy is not None else ""
        failure: GatewayError = RequestTimeout(
            f"Provider '{provider}' could not be connected to{through}{limit} (connect timeout) [{target}]."
        )
        if error.proxy is not None:
            url = f"{url} via proxy {error.proxy}"
    elif isinstance(error, PoolTimeout):
        failure = RequestTimeout(
            f"Provider '{provider}' had no free connection in time: all of its max_connections were"
            f" busy [{target}]."
        )
    elif isinstance(error, TimeoutError):
        limit = f" within {read_timeout:g}s" if read_timeout is not None else ""
        failure = RequestTimeout(f"Provider '{provider}' did not answer{limit} (read timeout) [{target}].")
    elif isinstance(error, ProxyError):
        failure = UpstreamError(
            f"Provider '{provider}' could not be reached through its proxy: the proxy {error.reason}"
            f" [{target}]."
        )
        url = f"{url} via proxy {error.proxy}"
    elif isinstance(cause, ConnectionRefusedError):
        failure = UpstreamError(
            f"Provider '{provider}' refused the connection: nothing listens at its base_url's host"
            f" and port [{target}]."
        )
    elif isinstance(cause, socket.gaierror):
        failure = UpstreamError(
            f"Provider '{provider}' could not be reached: its base_url's host name does not resolve"
            f" (DNS: {cause.strerror or 'lookup failed'}) [{target}]."
        )
    elif isinstance(cause, ssl.SSLCertVerificationError):
        failure = UpstreamError(
            f"Provider '{provider}' failed the TLS handshake: its certificate was not trusted"
            f" ({cause.verify_message or 'verification failed'}) [{target}]."
        )
    elif isinstance(cause, ssl.SSLError):
        failure = UpstreamError(
            f"Provider '{provider}' failed the TLS handshake ({cause.reason or 'TLS error'}); does its"
            f" base_url use https for a server that speaks plain http? [{target}]."
        )
    elif isinstance(error, ServerDisconnected):
        failure = UpstreamError(f"Provider '{provider}' closed the connection without answering [{target}].")
    elif isinstance(error, ReplyError):
        failure = UpstreamError(f"Provider '{provider}' cut its reply short [{target}].")
    elif isinstance(cause, OSError):
        failure = UpstreamError(
            f"Provider '{provider}' could not be connected to ({_os_error(cause)}) [{target}]."
        )
    else:
        failure = UpstreamError(
            f"Provider '{provider}' failed on the connection ({_os_error(error)}) [{target}]."
        )
    failure.upstream_url = url
    return failure


def _os_error(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror:
        return f"{type(error).__name__}: {error.strerror}"
    return type(error).__name__
