"""The test process's side of the tracing tests: an SDK provider exporting to memory, pyq instrumented with it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from pool import wait_until
from pyq import middleware, tracing


class Otel:
    """The OpenTelemetry SDK's in-memory exporter behind a provider of its own (the global one is left unset)."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.tracer = self.provider.get_tracer("tests")

    def instrument(self, **options: Any) -> None:
        tracing.instrument(tracer_provider=self.provider, **options)

    def spans(self, kind: SpanKind | None = None) -> list[ReadableSpan]:
        return [s for s in self.exporter.get_finished_spans() if kind is None or s.kind == kind]

    def wait_consumers(self, count: int) -> list[ReadableSpan]:
        return wait_until(lambda: len(self.spans(SpanKind.CONSUMER)) >= count and self.spans(SpanKind.CONSUMER))


@contextmanager
def memory_tracing() -> Iterator[Otel]:
    """An :class:`Otel`; afterwards tracing is off again and the middleware chains are as they were."""
    before = (list(middleware.client_middleware), list(middleware.server_middleware))
    try:
        yield Otel()
    finally:
        tracing.uninstrument()
    assert (middleware.client_middleware, middleware.server_middleware) == before


def traceparent(span: ReadableSpan) -> str:
    """The W3C ``traceparent`` header of ``span``, as a propagator writes it."""
    context = span.get_span_context()
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"
