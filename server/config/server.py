"""The `server:` and `observability:` sections: where the gateway listens; its logs, metrics, traces."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field

from server.config.base import NonNegative, NonNegativeInt, PositiveInt, Settings

__all__ = ["ObservabilityConfig", "ServerConfig"]


class ServerConfig(Settings):
    host: str = "127.0.0.1"
    http_port: NonNegativeInt = 8080
    grpc_port: NonNegativeInt = 50051
    data_dir: str = "./data"
    max_body_bytes: Annotated[int, Field(ge=1024)] = 10 * 1024 * 1024
    # Single-process mode: the bridge calls the servicers in-process instead of over loopback gRPC.
    in_process: bool = True
    # Where a bridge running alone finds the gRPC server.
    grpc_target: str | None = None
    admin_key: str | None = None
    # On SIGTERM, how long open requests and streams may take to finish before they are ended.
    drain_seconds: NonNegative = 30.0
    # Processes sharing the HTTP and gRPC ports (SO_REUSEPORT); `serve --workers N` overrides.
    workers: PositiveInt = 1
    # The HTTP edge (http_bridge/edge.py). Seconds to receive a request's headers, counted from the
    # connection's start or from a later request's first byte; then a 408 and the connection closes.
    header_timeout: Annotated[float, Field(ge=0.001)] = 10.0
    # Seconds to receive a request's body once its headers are in; then a 408.
    body_timeout: Annotated[float, Field(ge=0.001)] = 60.0
    # Seconds an idle keep-alive connection stays open.
    keepalive_timeout: Annotated[float, Field(ge=0.001)] = 75.0
    # Open HTTP connections per process; one more gets a 503. 0: half the open-file limit.
    max_connections: NonNegativeInt = 0
    # Requests one key may have in flight in this process; one more gets a 429. 0: no limit.
    max_in_flight_per_key: NonNegativeInt = 256
    # The longest request line or header field, in bytes, and the most header fields; more is a 431.
    max_header_bytes: Annotated[int, Field(ge=256)] = 8190
    max_headers: Annotated[int, Field(ge=8)] = 128


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


LogLevel = Annotated[Literal["debug", "info", "warning", "error"], BeforeValidator(_lower)]
LogFormat = Literal["json", "text"]


class ObservabilityConfig(Settings):
    """Logs, metrics and traces. Tracing is also turned on by the standard OTEL_* variables."""

    log_level: LogLevel = "info"
    log_format: LogFormat = "json"
    # One JSON line per request.
    access_log: bool = True
    # Keep each request's prompt and answer text with its ledger record (each cut to 8,000
    # characters; server/observability/bodies.py), for the console's log and GET /v1/generation.
    # Off: nothing of either is stored.
    store_bodies: bool = False
    # A second port serving only /metrics and /health/*, e.g. kept off the public network.
    admin_port: NonNegativeInt | None = None
    tracing: bool = False
    otlp_endpoint: str | None = None
    service_name: str = "siraya-router"
