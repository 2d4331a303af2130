"""Jobs for the tracing tests, and the tracer provider of the ``pyq`` processes that require this module.

A worker is another process, so its spans cannot land in the test's in-memory exporter: the provider
set here exports each finished span as JSON to the list ``test:spans`` of the Redis that
``TRACE_EXPORT_URL`` names (the test process itself sets none: it passes its own provider).
``TRACE_PROCESSOR=batch`` exports through a batch processor that would hold spans for ten minutes,
so that only pyq's flush at the worker's exit can deliver them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

import redis
from opentelemetry import baggage, trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter, SpanExportResult

import pyq

SPANS_KEY = "test:spans"
#: jid -> the span current inside the job, and the producer's baggage as the job sees it
CURRENT_KEY = "test:current"


class RedisSpanExporter(SpanExporter):
    """Each finished span as one JSON entry of ``test:spans``."""

    def __init__(self, url: str) -> None:
        self.url = url

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        conn = redis.Redis.from_url(self.url)
        try:
            conn.rpush(SPANS_KEY, *[json.dumps(span_dict(span)) for span in spans])
        finally:
            conn.close()
        return SpanExportResult.SUCCESS


def span_dict(span: ReadableSpan) -> dict[str, Any]:
    """What the tests compare: ids as W3C hex, kind, attributes, links, status, events."""
    context = span.get_span_context()
    assert context is not None
    return {
        "name": span.name, "kind": span.kind.name,
        "trace_id": f"{context.trace_id:032x}", "span_id": f"{context.span_id:016x}",
        "trace_state": context.trace_state.to_header(),
        "parent_id": f"{span.parent.span_id:016x}" if span.parent else None,
        "links": [{"trace_id": f"{link.context.trace_id:032x}", "span_id": f"{link.context.span_id:016x}"}
                  for link in span.links],
        "attributes": dict(span.attributes or {}),
        "status": span.status.status_code.name, "status_description": span.status.description,
        "events": [{"name": e.name, "attributes": dict(e.attributes or {})} for e in span.events],
    }


def _install() -> None:
    url = os.environ.get("TRACE_EXPORT_URL")
    if not url:  # imported by the test process: it passes its own provider to pyq.tracing.instrument
        return
    exporter = RedisSpanExporter(url)
    batch = os.environ.get("TRACE_PROCESSOR") == "batch"
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=600_000) if batch
                                else SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)


_install()


def _record_current() -> None:
    job = pyq.current()
    assert job is not None
    context = trace.get_current_span().get_span_context()
    entry = {"trace_id": f"{context.trace_id:032x}", "span_id": f"{context.span_id:016x}",
             "baggage": {k: str(v) for k, v in baggage.get_all().items()}}
    job.redis.hset(CURRENT_KEY, job.jid, json.dumps(entry))


@pyq.job(name="Trace::Ok")
def ok(*args: Any) -> None:
    _record_current()


@pyq.job(name="Trace::AsyncOk")
async def async_ok(*args: Any) -> None:
    _record_current()


class CardDeclined(Exception):
    pass


@pyq.job(name="Trace::Fails", retry=1)
def fails(*args: Any) -> None:
    raise CardDeclined("card declined")
