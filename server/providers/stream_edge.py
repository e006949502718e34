"""What every adapter says when an upstream's event stream fails at its edges, said in one place.

- before the first event: the reply is not an event stream (`not_an_event_stream`);
- while events flow: the upstream went silent past the read timeout or the deadline (a 408,
  "stalled mid-stream"), the connection broke or the body was cut (a 502, "cut the stream short"),
  or an event's data is not JSON (a 502); `stream_failure` maps each of STREAM_FAILURES;
- at its end: the stream stopped before the event that closes it (`ended_early`).

Each adapter reads the network in its own loop and uses these as

    if EVENT_STREAM not in response.headers.get("Content-Type", ""):
        raise not_an_event_stream(self.name)
    try:
        ...  # read and translate the events
    except STREAM_FAILURES as error:
        raise stream_failure(self.name, error) from None

so that a healthy stream pays no call for any of it: every call per stream and per chunk is counted
(tests/e2e/operations/test_hot_path_budget.py).
"""

from __future__ import annotations

import orjson

from server.errors import GatewayError, RequestTimeout, UpstreamError
from server.providers.transport import TransportError

__all__ = ["EVENT_STREAM", "STREAM_FAILURES", "ended_early", "not_an_event_stream", "stream_failure"]

EVENT_STREAM = "text/event-stream"
# What reading a stream's events can raise on the wire, or in an event's JSON.
STREAM_FAILURES = (TimeoutError, TransportError, orjson.JSONDecodeError)


def not_an_event_stream(provider: str) -> UpstreamError:
    return UpstreamError(f"Provider '{provider}' did not answer with an event stream.")


def stream_failure(provider: str, error: BaseException) -> GatewayError:
    """The gateway's error for one of STREAM_FAILURES raised while a stream's events flowed."""
    if isinstance(error, TimeoutError):
        return RequestTimeout(f"Provider '{provider}' stalled mid-stream.")
    if isinstance(error, orjson.JSONDecodeError):
        return UpstreamError(f"Provider '{provider}' sent a malformed stream event.")
    return UpstreamError(f"Provider '{provider}' cut the stream short.")


def ended_early(provider: str, closing_event: str) -> UpstreamError:
    """The error for a stream whose body ended before `closing_event` ([DONE], message_stop)."""
    return UpstreamError(f"Provider '{provider}' ended the stream before {closing_event}.")
