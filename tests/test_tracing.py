"""OpenTelemetry spans of pushes and runs, in this process: the SDK's in-memory exporter and a real Worker.

The producer span writes W3C trace context into the job as ``opentelemetry-instrumentation-sidekiq``
does (top-level ``traceparent``), and the consumer span is a child of it, linked to it, or neither.
Real pools, Ruby and the flush at a worker's exit are in ``test_tracing_pool.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml
from opentelemetry import baggage, trace
from opentelemetry import context as otel_context
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import tracejobs
from otelhelp import Otel, memory_tracing, traceparent
from pool import running_worker, wait_until
from pyq import config, tracing
from pyq.client import Client
from pyq.errors import ConfigError


@pytest.fixture
def otel() -> Iterator[Otel]:
    with memory_tracing() as tracing_in_memory:
        yield tracing_in_memory


def stored(r: redis.Redis, queue: str = "default") -> list[dict[str, Any]]:
    return [json.loads(raw) for raw in r.lrange(f"queue:{queue}", 0, -1)][::-1]


# --- the producer side --------------------------------------------------------------------------------------


def test_a_push_in_a_request_span_gets_a_producer_span_whose_context_travels_in_the_job(
        otel: Otel, client: Client, r: redis.Redis) -> None:
    otel.instrument()
    # Given a request span, when a job is pushed inside it
    with otel.tracer.start_as_current_span("GET /checkout") as request:
        jid = tracejobs.ok.perform_async(1)
    # Then one producer span, a child of the request, named and tagged as the Ruby gem does
    [producer] = otel.spans(SpanKind.PRODUCER)
    assert producer.name == "default publish"
    assert producer.parent is not None and producer.parent.span_id == request.get_span_context().span_id
    assert producer.context.trace_id == request.get_span_context().trace_id
    assert producer.attributes == {
        "messaging.system": "sidekiq", "messaging.sidekiq.job_class": "Trace::Ok",
        "messaging.message_id": jid, "messaging.destination": "default", "messaging.destination_kind": "queue",
        "messaging.message.id": jid, "messaging.destination.name": "default", "messaging.operation.type": "send"}
    assert [e.name for e in producer.events] == ["created_at"]
    # And the stored job carries the producer's context in the top-level traceparent field, args untouched
    [job] = stored(r)
    assert job["traceparent"] == traceparent(producer) and job["args"] == [1] and job["jid"] == jid


def test_each_job_of_a_bulk_push_gets_its_own_producer_span(otel: Otel, client: Client, r: redis.Redis) -> None:
    otel.instrument()
    jids = tracejobs.ok.perform_bulk([[1], [2], [3]])
    producers = otel.spans(SpanKind.PRODUCER)
    assert sorted(s.attributes["messaging.message_id"] for s in producers) == sorted(jids)
    by_jid = {s.attributes["messaging.message_id"]: traceparent(s) for s in producers}
    assert {job["jid"]: job["traceparent"] for job in stored(r)} == by_jid


def test_job_class_naming_uses_the_activejob_class_of_a_wrapped_job(otel: Otel, client: Client) -> None:
    otel.instrument(span_naming="job_class")
    client.push({"class": "ActiveJob::QueueAdapters::SidekiqAdapter::JobWrapper", "wrapped": "SendInvoice",
                 "queue": "mailers", "args": [{"job_class": "SendInvoice", "arguments": [1]}]})
    [producer] = otel.spans(SpanKind.PRODUCER)
    assert producer.name == "SendInvoice publish"
    assert producer.attributes["messaging.sidekiq.job_class"] == "SendInvoice"
    assert producer.attributes["messaging.destination"] == "mailers"


def test_instrumenting_twice_replaces_and_uninstrument_stops_it(otel: Otel, client: Client, r: redis.Redis) -> None:
    otel.instrument()
    otel.instrument(span_naming="job_class")
    client.push({"class": "Trace::Ok", "args": []})
    assert [s.name for s in otel.spans()] == ["Trace::Ok publish"]
    assert tracing.options() == {"propagation": "link", "span_naming": "job_class"}
    tracing.uninstrument()
    client.push({"class": "Trace::Ok", "args": []})
    assert len(otel.spans()) == 1 and "traceparent" not in stored(r)[1] and not tracing.enabled()


def test_bad_options_are_refused() -> None:
    with pytest.raises(ValueError, match="propagation must be one of link, child, none"):
        tracing.instrument(propagation="parent")
    with pytest.raises(ValueError, match="span_naming"):
        tracing.instrument(span_naming="jid")
    assert not tracing.enabled()


# --- the consumer side, in a real in-process worker -----------------------------------------------------------


@pytest.mark.parametrize("job", [tracejobs.ok, tracejobs.async_ok], ids=["sync", "async"])
def test_child_style_runs_the_job_in_a_consumer_span_of_the_request_trace(
        otel: Otel, client: Client, r: redis.Redis, redis_url: str, job: Any) -> None:
    otel.instrument(propagation="child")
    # Given a job pushed inside a request span that carries baggage
    token = otel_context.attach(baggage.set_baggage("tenant", "acme"))
    try:
        with otel.tracer.start_as_current_span("POST /orders") as request:
            jid = job.perform_async("order-1")
    finally:
        otel_context.detach(token)
    [producer] = otel.spans(SpanKind.PRODUCER)
    # When a worker runs it
    with running_worker(redis_url):
        [consumer] = otel.wait_consumers(1)
    # Then the consumer span is a child of the producer, in the request's trace
    assert consumer.name == "default process"
    assert consumer.context.trace_id == request.get_span_context().trace_id
    assert consumer.parent is not None and consumer.parent.span_id == producer.context.span_id
    assert not consumer.links and consumer.status.status_code == StatusCode.UNSET
    assert consumer.attributes["messaging.message_id"] == jid
    assert consumer.attributes["messaging.operation"] == "process"
    assert consumer.attributes["messaging.operation.type"] == "process"
    assert "messaging.sidekiq.retry_count" not in consumer.attributes  # a first run
    assert [e.name for e in consumer.events] == ["created_at", "enqueued_at"]
    # And inside the job the consumer span is current, and the producer's baggage is readable
    inside = json.loads(r.hget(tracejobs.CURRENT_KEY, jid))
    assert inside == {"trace_id": f"{consumer.context.trace_id:032x}",
                      "span_id": f"{consumer.context.span_id:016x}", "baggage": {"tenant": "acme"}}


def test_link_style_the_default_starts_a_new_trace_linked_to_the_producer(
        otel: Otel, client: Client, redis_url: str) -> None:
    otel.instrument()
    with otel.tracer.start_as_current_span("POST /orders"):
        tracejobs.ok.perform_async(2)
    [producer] = otel.spans(SpanKind.PRODUCER)
    with running_worker(redis_url):
        [consumer] = otel.wait_consumers(1)
    assert consumer.parent is None and consumer.context.trace_id != producer.context.trace_id
    [link] = consumer.links
    assert (link.context.trace_id, link.context.span_id) == (producer.context.trace_id, producer.context.span_id)


def test_none_style_starts_a_new_trace_without_a_link(otel: Otel, client: Client, redis_url: str) -> None:
    otel.instrument(propagation="none")
    with otel.tracer.start_as_current_span("POST /orders"):
        tracejobs.ok.perform_async(3)
    [producer] = otel.spans(SpanKind.PRODUCER)
    with running_worker(redis_url):
        [consumer] = otel.wait_consumers(1)
    assert consumer.parent is None and not consumer.links
    assert consumer.context.trace_id != producer.context.trace_id


def test_a_failing_job_ends_its_span_with_an_error_status_and_the_exception(
        otel: Otel, client: Client, r: redis.Redis, redis_url: str) -> None:
    otel.instrument(propagation="child")
    # Given a failing job, pushed as its second retry would be (Sidekiq's retry_count 1)
    jid = client.push({"class": "Trace::Fails", "args": [], "retry_count": 1})
    with running_worker(redis_url):
        [consumer] = otel.wait_consumers(1)
        wait_until(lambda: r.zcard("retry") + r.zcard("dead") == 1)
    # Then the span says so, and names the retry
    assert consumer.status.status_code == StatusCode.ERROR
    assert consumer.status.description == "the job raised tracejobs.CardDeclined"
    assert consumer.attributes["error.type"] == "tracejobs.CardDeclined"
    assert consumer.attributes["messaging.sidekiq.retry_count"] == 1
    assert consumer.attributes["messaging.message_id"] == jid
    [event] = [e for e in consumer.events if e.name == "exception"]
    assert event.attributes["exception.message"] == "card declined"


def test_a_job_without_trace_context_gets_a_root_consumer_span(otel: Otel, client: Client, redis_url: str) -> None:
    # Given a job from an untraced client, with values under the trace fields that are not trace context
    client.push({"class": "Trace::Ok", "args": [], "traceparent": 42, "tracestate": ["not", "text"]})
    otel.instrument(propagation="child")
    with running_worker(redis_url):
        [consumer] = otel.wait_consumers(1)
    assert consumer.parent is None and consumer.status.status_code == StatusCode.UNSET


# --- off by default ---------------------------------------------------------------------------------------------


OFF_SCRIPT = """
import json, sys
import pyq
from pyq import middleware
jid = pyq.Client(sys.argv[1]).push({"class": "Trace::Ok", "args": [1]})
print(json.dumps({"tracing_loaded": any(m.startswith("pyq.tracing") for m in sys.modules),
                  "chains": [len(middleware.client_middleware), len(middleware.server_middleware)]}))
"""


def test_off_by_default_nothing_is_loaded_and_pushes_carry_no_trace_fields(r: redis.Redis, redis_url: str) -> None:
    # Given a process that imports pyq and pushes, with an OpenTelemetry request span current
    script = ("from opentelemetry.sdk.trace import TracerProvider\n"
              "span = TracerProvider().get_tracer('t').start_span('request')\n"
              "from opentelemetry import trace\n"
              "token = __import__('opentelemetry.context').context.attach(trace.set_span_in_context(span))\n"
              + OFF_SCRIPT)
    out = subprocess.run([sys.executable, "-c", script, redis_url], capture_output=True, text=True, timeout=60,
                         check=True).stdout
    # Then pyq's tracing was never imported, no middleware was added, and the job has Sidekiq's fields only
    assert json.loads(out) == {"tracing_loaded": False, "chains": [0, 0]}
    [job] = stored(r)
    assert set(job) == {"class", "args", "queue", "retry", "jid", "created_at", "enqueued_at"}


# --- configuration -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [(True, "link"), (False, "off"), ("child", "child"),
                                                 ("none", "none"), ("LINK", "link"), ("off", "off")])
def test_the_tracing_setting(tmp_path: Path, value: Any, expected: str) -> None:
    path = tmp_path / "queue.yml"
    path.write_text(yaml.safe_dump({"tracing": value}))
    assert config.load(path, env={}).tracing == expected
    assert config.load(None, env={}).tracing == "off"
    assert config.load(None, env={"PYQ_TRACING": "child"}).tracing == "child"


def test_a_bad_tracing_setting_names_the_choices(tmp_path: Path) -> None:
    path = tmp_path / "queue.yml"
    path.write_text("tracing: sometimes\n")
    with pytest.raises(ConfigError, match=r"queue\.yml: tracing: expected false, true, link, child or none"):
        config.load(path, env={})


def test_a_pool_config_keeps_a_required_modules_span_naming(otel: Otel) -> None:
    otel.instrument(span_naming="job_class")
    tracing.start_from_config("child")
    assert tracing.options() == {"propagation": "child", "span_naming": "job_class"}
    tracing.start_from_config("off")
    assert tracing.enabled()


def test_tracing_without_opentelemetry_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "pyq.tracing.spans", raising=False)
    monkeypatch.delattr(tracing, "spans", raising=False)
    monkeypatch.setitem(sys.modules, "opentelemetry", None)  # as if it were not installed
    with pytest.raises(ConfigError, match=r"tracing: pyq tracing needs opentelemetry-api: pip install 'pyq\[otel\]'"):
        tracing.start_from_config("link")
    assert not tracing.enabled()


def test_flush_hands_over_what_a_batch_processor_holds(otel: Otel) -> None:
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=600_000))
    tracing.instrument(tracer_provider=provider)
    Client(store=lambda calls: [1 for _ in calls]).push({"class": "Trace::Ok", "args": []})
    assert exporter.get_finished_spans() == ()
    tracing.flush()
    assert [s.name for s in exporter.get_finished_spans()] == ["default publish"]
    provider.shutdown()


def test_the_current_span_outside_a_job_is_left_alone(otel: Otel, client: Client) -> None:
    otel.instrument()
    with otel.tracer.start_as_current_span("request") as request:
        tracejobs.ok.perform_async(1)
        assert trace.get_current_span() is request
