"""The producer span of a push and the consumer span of a run, named and tagged as the Ruby gem does.

``opentelemetry-instrumentation-sidekiq`` writes the trace context into the job hash itself (top-level
``traceparent`` and ``tracestate``, through the global propagator), names spans ``"<queue> publish"``
and ``"<queue> process"`` (or after the job class) and tags them ``messaging.system = "sidekiq"``.
pyq does the same, so a job pushed from Rails and run here, or pushed here and run by Ruby, joins
the trace it came from. Current semantic-convention names are set next to the gem's older ones.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode, Tracer

from .. import payload
from .._version import __version__
from ..context import JobContext
from ..error_fields import caused_by_shutdown, error_class_name
from ..errors import Requeued

#: ``messaging.system``: the wire format's name, the value Ruby's spans carry, so one query finds both.
SYSTEM = "sidekiq"


def tracer_for(provider: Any = None) -> Tracer:
    """pyq's tracer from ``provider``, else from the global provider (also one set later)."""
    return trace.get_tracer("pyq", __version__, tracer_provider=provider)


def span_name(job: dict[str, Any], span_naming: str, operation: str) -> str:
    subject = payload.display_class(job) if span_naming == "job_class" else str(job.get("queue") or "default")
    return f"{subject} {operation}"


def attributes(job: dict[str, Any], operation_type: str) -> dict[str, Any]:
    """The Ruby gem's attributes, then their current semantic-convention names."""
    jid, queue = str(job.get("jid", "")), str(job.get("queue") or "default")
    return {
        "messaging.system": SYSTEM,
        "messaging.sidekiq.job_class": payload.display_class(job),
        "messaging.message_id": jid,
        "messaging.destination": queue,
        "messaging.destination_kind": "queue",
        "messaging.message.id": jid,
        "messaging.destination.name": queue,
        "messaging.operation.type": operation_type,
    }


def add_time_event(span: Span, name: str, value: Any) -> None:
    """An event at a payload time (``created_at``, ``enqueued_at``), as the gem adds them."""
    epoch_s = payload.to_epoch_s(value)
    if epoch_s is not None:
        span.add_event(name, timestamp=int(epoch_s * 1e9))


class ClientTracer:
    """Client middleware: a producer span around the push, its context written into the job."""

    def __init__(self, tracer: Tracer, span_naming: str) -> None:
        self.tracer = tracer
        self.span_naming = span_naming

    def __call__(self, job: dict[str, Any], call_next: Callable[[dict[str, Any]], Any]) -> Any:
        name = span_name(job, self.span_naming, "publish")
        with self.tracer.start_as_current_span(name, kind=SpanKind.PRODUCER,
                                               attributes=attributes(job, "send")) as span:
            add_time_event(span, "created_at", job.get("created_at"))
            propagate.inject(job)
            return call_next(job)


class ServerTracer:
    """Server middleware: a consumer span around the run, related to the producer as ``propagation`` says."""

    def __init__(self, tracer: Tracer, span_naming: str, propagation: str) -> None:
        self.tracer = tracer
        self.span_naming = span_naming
        self.propagation = propagation

    def __call__(self, ctx: JobContext, call_next: Callable[[], Any]) -> Any:
        with self.consumer_span(ctx):
            return call_next()

    async def async_call(self, ctx: JobContext, call_next: Callable[[], Awaitable[Any]]) -> Any:
        """The same around an ``async def`` job, on the event loop (no helper thread)."""
        with self.consumer_span(ctx):
            return await call_next()

    @contextmanager
    def consumer_span(self, ctx: JobContext) -> Iterator[Span]:
        extracted = propagate.extract(carrier(ctx.job))
        token = otel_context.attach(extracted)  # baggage from the producer is current in the job
        try:
            parent, links = extracted, []
            if self.propagation != "child":
                producer = trace.get_current_span(extracted).get_span_context()
                links = [Link(producer)] if self.propagation == "link" and producer.is_valid else []
                parent = trace.set_span_in_context(trace.INVALID_SPAN, extracted)  # a new trace
            with self.tracer.start_as_current_span(
                    span_name(ctx.job, self.span_naming, "process"), context=parent, kind=SpanKind.CONSUMER,
                    attributes=consumer_attributes(ctx), links=links,
                    record_exception=False, set_status_on_exception=False) as span:
                add_time_event(span, "created_at", ctx.job.get("created_at"))
                add_time_event(span, "enqueued_at", ctx.job.get("enqueued_at"))
                try:
                    yield span
                except BaseException as exc:
                    record_failure(span, ctx, exc)
                    raise
        finally:
            otel_context.detach(token)


def consumer_attributes(ctx: JobContext) -> dict[str, Any]:
    found = {**attributes({**ctx.job, "queue": ctx.queue}, "process"), "messaging.operation": "process"}
    if ctx.retry_count is not None:  # Sidekiq's count: absent on the first run, 0 on the first retry
        found["messaging.sidekiq.retry_count"] = ctx.retry_count
    return found


def carrier(job: dict[str, Any]) -> dict[str, str]:
    """The propagator's fields the job holds as strings (a payload may hold anything under any key)."""
    return {key: value for key in propagate.get_global_textmap().fields
            if isinstance(value := job.get(key), str)}


def record_failure(span: Span, ctx: JobContext, exc: BaseException) -> None:
    """An error status for what the worker stores as a failure; a job put back, requeued or cancelled is none."""
    if caused_by_shutdown(exc) or isinstance(exc, Requeued) or ctx.cancelled:
        return
    error = ctx.timeout_error() if ctx.timed_out else exc  # an async job's time limit arrives as a cancel
    kind = error_class_name(error)
    span.record_exception(error)
    span.set_attribute("error.type", kind)
    span.set_status(Status(StatusCode.ERROR, f"the job raised {kind}"))
