"""OpenTelemetry traces of pushes and runs, off until :func:`instrument` is called (or ``tracing:`` is set).

Nothing here imports OpenTelemetry until tracing is switched on, and nothing is added to a push or a
run while it is off: the client and server chains stay as the application left them. Switched on, a
producer span wraps every push through the process-wide client chain and writes W3C trace context
into the job (``traceparent``, ``tracestate``, as ``opentelemetry-instrumentation-sidekiq`` does), and
a consumer span wraps every run (:mod:`pyq.tracing.spans`). The tracer provider and its exporter are
the application's: pyq takes OpenTelemetry's global one unless given another.
"""

from __future__ import annotations

import logging
from typing import Any

from .. import middleware

log = logging.getLogger("pyq.tracing")

#: How a consumer span relates to the producer span found in the job, with the Ruby gem's names and default:
#: ``link`` starts a new trace linked to it, ``child`` continues its trace, ``none`` starts a new trace alone.
PROPAGATIONS = ("link", "child", "none")
#: What spans are named after: ``queue`` (``"default process"``, the Ruby gem's default) or ``job_class``.
SPAN_NAMINGS = ("queue", "job_class")
#: Longest wait, at a worker's exit, for the span processor to hand over the spans it still holds.
FLUSH_TIMEOUT_MS = 5000

_installed: tuple[Any, Any, Any] | None = None  # (client middleware, server middleware, provider) while on
_options: dict[str, str] = {}


def instrument(*, propagation: str = "link", span_naming: str = "queue", tracer_provider: Any = None) -> None:
    """Trace every push of the default clients and every job run by workers in this process.

    Calling it again replaces the earlier options. ``tracer_provider`` defaults to OpenTelemetry's
    global provider, looked up as spans start, so it may be set before or after this call.
    Needs ``opentelemetry-api`` (``pip install 'pyq[otel]'``).
    """
    global _installed
    if propagation not in PROPAGATIONS:
        raise ValueError(f"propagation must be one of {', '.join(PROPAGATIONS)}, got {propagation!r}")
    if span_naming not in SPAN_NAMINGS:
        raise ValueError(f"span_naming must be one of {', '.join(SPAN_NAMINGS)}, got {span_naming!r}")
    try:
        from . import spans
    except ImportError as exc:
        raise ImportError(f"pyq tracing needs opentelemetry-api: pip install 'pyq[otel]' ({exc})") from exc
    uninstrument()
    tracer = spans.tracer_for(tracer_provider)
    client_mw = spans.ClientTracer(tracer, span_naming)
    server_mw = spans.ServerTracer(tracer, span_naming, propagation)
    middleware.client_middleware.insert(0, client_mw)  # outermost, as the Ruby gem prepends its own
    middleware.server_middleware.insert(0, server_mw)
    _installed = (client_mw, server_mw, tracer_provider)
    _options.update(propagation=propagation, span_naming=span_naming)


def uninstrument() -> None:
    """Switch tracing off again: both middlewares leave their chains."""
    global _installed
    if _installed is None:
        return
    client_mw, server_mw, _ = _installed
    middleware.client_middleware[:] = [mw for mw in middleware.client_middleware if mw is not client_mw]
    middleware.server_middleware[:] = [mw for mw in middleware.server_middleware if mw is not server_mw]
    _installed = None
    _options.clear()


def enabled() -> bool:
    return _installed is not None


def options() -> dict[str, str]:
    """The options tracing runs with (empty while off)."""
    return dict(_options)


def flush() -> None:
    """Hand over the spans the provider's processors still hold; a no-op while tracing is off.

    A worker process leaves through ``os._exit`` (it is a fork), which skips the provider's own
    ``atexit`` flush: without this a batch processor would lose the last spans of every worker.
    """
    if _installed is None:
        return
    from opentelemetry import trace

    provider = _installed[2] or trace.get_tracer_provider()
    force_flush = getattr(provider, "force_flush", None)
    if force_flush is None:
        return
    try:
        force_flush(FLUSH_TIMEOUT_MS)
    except Exception as exc:  # an exporter that fails at exit must not change the exit status
        log.warning("cannot flush the last spans: %s", exc)


def start_from_config(setting: str) -> None:
    """A pool's ``tracing:`` setting: on with that propagation (keeping a required module's span naming).

    Raises ConfigError when OpenTelemetry is not installed, so the pool stops with one line.
    """
    if setting == "off":
        return
    from ..errors import ConfigError

    try:
        instrument(**{**options(), "propagation": setting})
    except ImportError as exc:
        raise ConfigError(f"tracing: {exc}") from None
