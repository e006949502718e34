"""Optional OpenTelemetry traces: one server span per request and one client span per upstream attempt.

Off by default. `configure_tracing` turns it on from the config (`observability.tracing: true`) or
the standard OTEL_* environment (OTEL_TRACES_EXPORTER, OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT); it
needs the `otel` extra. When off, every function here is a constant-time no-op.

Propagation is W3C trace context through the headers dict each request carries
(`RequestContext.forward_headers`): the bridge copies `traceparent` into gRPC metadata, the request
span replaces it with its own, and each attempt span replaces it again just before the upstream call.
Attributes follow the OpenTelemetry GenAI semantic conventions.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

__all__ = [
    "configure_tracing",
    "disable",
    "enable",
    "enabled",
    "finish_span",
    "start_attempt_span",
    "start_request_span",
]

logger = logging.getLogger("siraya.tracing")
TRACE_HEADERS = ("traceparent", "tracestate")

_tracer: Any = None
_provider: Any = None
_propagator: Any = None


def enabled() -> bool:
    return _tracer is not None


def wanted(config_enabled: bool, environ: Mapping[str, str] = os.environ) -> bool:
    """Tracing is on by config or by the standard OTEL_* variables, unless OTEL_SDK_DISABLED."""
    if environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    exporter = environ.get("OTEL_TRACES_EXPORTER", "")
    if exporter and exporter.lower() != "none":
        return True
    if environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        return True
    return config_enabled


def configure_tracing(config_enabled: bool, service_name: str, endpoint: str | None = None) -> bool:
    """Turn tracing on if wanted and installed; returns whether it is on."""
    if not wanted(config_enabled):
        return False
    try:
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
    except ImportError:
        logger.warning("tracing is on but OpenTelemetry is missing: pip install 'siraya-model-router[otel]'")
        return False
    exporter: Any
    if os.environ.get("OTEL_TRACES_EXPORTER", "").lower() == "console":
        exporter = ConsoleSpanExporter()
    else:
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        except ImportError:
            logger.warning("tracing needs the OTLP exporter: pip install 'siraya-model-router[otel]'")
            return False
        exporter = OTLPSpanExporter(endpoint=endpoint) if endpoint else OTLPSpanExporter()
    enable(exporter, service_name=service_name, processor=BatchSpanProcessor)
    return True


def enable(exporter: Any, *, service_name: str = "siraya-router", processor: Any = None) -> None:
    """Trace into `exporter` (an OpenTelemetry SpanExporter); tests pass an in-memory one."""
    global _tracer, _provider, _propagator
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    # A private provider, not the global one: it can be replaced and shut down (tests do both).
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    provider.add_span_processor((processor or SimpleSpanProcessor)(exporter))
    _provider, _propagator = provider, TraceContextTextMapPropagator()
    _tracer = provider.get_tracer("siraya.router")


def disable() -> None:
    global _tracer, _provider
    if _provider is not None:
        _provider.shutdown()
    _tracer = _provider = None


def start_request_span(name: str, headers: dict[str, str], attributes: dict[str, Any]) -> Any:
    """A server span, child of the caller's `traceparent`; `headers` then carry this span's context."""
    if _tracer is None:
        return None
    from opentelemetry.trace import SpanKind, set_span_in_context

    parent = _propagator.extract(headers)
    span = _tracer.start_span(name, context=parent, kind=SpanKind.SERVER, attributes=attributes)
    _propagator.inject(headers, context=set_span_in_context(span))
    return span


def parent_of(headers: Mapping[str, str]) -> dict[str, str] | None:
    """A copy of the trace headers as they are now, to parent the attempts on (None when off)."""
    if _tracer is None:
        return None
    return {name: headers[name] for name in TRACE_HEADERS if name in headers}


def start_attempt_span(
    parent: Mapping[str, str], name: str, headers: dict[str, str], attributes: dict[str, Any]
) -> Any:
    """A client span for one upstream attempt; `headers` then carry it to the upstream."""
    if _tracer is None:
        return None
    from opentelemetry.trace import SpanKind, set_span_in_context

    span = _tracer.start_span(
        name, context=_propagator.extract(parent), kind=SpanKind.CLIENT, attributes=attributes
    )
    _propagator.inject(headers, context=set_span_in_context(span))
    return span


def finish_span(span: Any, attributes: Mapping[str, Any], error_type: str | None = None) -> None:
    if span is None:
        return
    from opentelemetry.trace import Status, StatusCode

    span.set_attributes({k: v for k, v in attributes.items() if v is not None})
    if error_type is not None:
        span.set_attribute("error.type", error_type)
        span.set_status(Status(StatusCode.ERROR, error_type))
    span.end()
