"""Traces across processes: a request span here, the job run by a real ``pyq`` pool or by Ruby Sidekiq.

The pool requires ``tracejobs``, whose tracer provider exports the worker's spans to Redis; the test
process exports to the SDK's in-memory exporter. Ruby's side is Sidekiq 6.4 with the trace context
written and read in the job hash by hand, where ``opentelemetry-instrumentation-sidekiq`` puts it
(its gems are not packaged for Debian).
"""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from opentelemetry.trace import SpanKind

import tracejobs
from otelhelp import Otel, memory_tracing, traceparent
from pool import running_pool, wait_until
from pyq.client import Client
from rubyhelp import requires_ruby, ruby_run, sidekiq_server

#: Seconds for a pool (or Sidekiq) to start and run a job on a loaded machine.
RUN_TIMEOUT_S = 30.0


@pytest.fixture
def otel(monkeypatch: pytest.MonkeyPatch, redis_url: str) -> Iterator[Otel]:
    monkeypatch.setenv("TRACE_EXPORT_URL", redis_url)  # the pools started here export their spans there
    with memory_tracing() as tracing_in_memory:
        yield tracing_in_memory


def exported(r: redis.Redis, kind: str | None = None) -> list[dict[str, Any]]:
    spans = [json.loads(raw) for raw in r.lrange(tracejobs.SPANS_KEY, 0, -1)]
    return [s for s in spans if kind is None or s["kind"] == kind]


def consumers(r: redis.Redis, count: int) -> dict[str, dict[str, Any]]:
    """The worker's consumer spans by jid, once ``count`` have arrived."""
    found = wait_until(lambda: len(exported(r, "CONSUMER")) >= count and exported(r, "CONSUMER"), RUN_TIMEOUT_S)
    return {span["attributes"]["messaging.message_id"]: span for span in found}


def ids(span: Any) -> tuple[str, str]:
    context = span.get_span_context()
    return f"{context.trace_id:032x}", f"{context.span_id:016x}"


@pytest.mark.slow
def test_a_request_span_and_the_pools_run_of_its_job_share_one_trace(
        otel: Otel, client: Client, r: redis.Redis, redis_url: str, tmp_path: Path) -> None:
    otel.instrument()
    with running_pool(tmp_path, redis_url, require=["tracejobs"], processes=1, tracing="child"):
        # Given a request span that enqueues a job that succeeds and one that fails
        with otel.tracer.start_as_current_span("POST /orders") as request:
            ok_jid = tracejobs.ok.perform_async("order-1")
            failed_jid = tracejobs.fails.perform_async("order-2")
        # When the pool runs them (the failure is stored just after its span ends)
        spans = consumers(r, 2)
        wait_until(lambda: r.zcard("retry") == 1, RUN_TIMEOUT_S)
    producers = {s.attributes["messaging.message_id"]: s for s in otel.spans(SpanKind.PRODUCER)}
    trace_id, _ = ids(request)
    # Then each consumer span is in the request's trace, a child of its producer span
    for jid in (ok_jid, failed_jid):
        assert spans[jid]["trace_id"] == trace_id
        assert spans[jid]["parent_id"] == ids(producers[jid])[1] and spans[jid]["kind"] == "CONSUMER"
        assert spans[jid]["attributes"]["messaging.system"] == "sidekiq"
        assert spans[jid]["attributes"]["messaging.destination"] == "default"
    assert spans[ok_jid]["name"] == "default process" and spans[ok_jid]["status"] == "UNSET"
    # And the failure shows as an error status with the exception recorded
    failed = spans[failed_jid]
    assert failed["status"] == "ERROR" and failed["attributes"]["error.type"] == "tracejobs.CardDeclined"
    assert [e["attributes"]["exception.message"] for e in failed["events"] if e["name"] == "exception"] == \
        ["card declined"]


@pytest.mark.slow
def test_tracing_true_links_the_run_to_the_producer_as_the_ruby_gem_does(
        otel: Otel, client: Client, r: redis.Redis, redis_url: str, tmp_path: Path) -> None:
    otel.instrument()
    with running_pool(tmp_path, redis_url, require=["tracejobs"], processes=1, tracing=True):
        with otel.tracer.start_as_current_span("POST /orders"):
            jid = tracejobs.ok.perform_async("order-3")
        span = consumers(r, 1)[jid]
    [producer] = otel.spans(SpanKind.PRODUCER)
    producer_trace, producer_span = ids(producer)
    assert span["parent_id"] is None and span["trace_id"] != producer_trace
    assert span["links"] == [{"trace_id": producer_trace, "span_id": producer_span}]


@pytest.mark.slow
def test_spans_a_batch_processor_holds_are_flushed_when_the_worker_stops(
        otel: Otel, client: Client, r: redis.Redis, redis_url: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACE_PROCESSOR", "batch")  # it would export only after ten minutes
    with running_pool(tmp_path, redis_url, require=["tracejobs"], processes=1, tracing="child") as pool:
        jid = tracejobs.ok.perform_async("order-4")
        wait_until(lambda: r.hexists(tracejobs.CURRENT_KEY, jid), RUN_TIMEOUT_S)
        assert exported(r) == []
        # When the pool is stopped as a deploy stops it
        pool.send_signal(signal.SIGTERM)
        assert pool.wait(RUN_TIMEOUT_S) == 0
    # Then the worker handed its span over before it exited
    assert [s["attributes"]["messaging.message_id"] for s in exported(r, "CONSUMER")] == [jid]


@pytest.mark.slow
def test_a_pool_without_tracing_makes_no_spans_even_with_a_provider_set(
        otel: Otel, client: Client, r: redis.Redis, redis_url: str, tmp_path: Path) -> None:
    # Given a pool whose required module sets a tracer provider, and no tracing setting; an untraced client
    with running_pool(tmp_path, redis_url, require=["tracejobs"], processes=1):
        with otel.tracer.start_as_current_span("POST /orders"):
            jid = tracejobs.ok.perform_async("order-5")
        inside = json.loads(wait_until(lambda: r.hget(tracejobs.CURRENT_KEY, jid), RUN_TIMEOUT_S))
    # Then the job ran outside any span and nothing was exported on either side
    assert inside["trace_id"] == "0" * 32 and exported(r) == []
    assert [s.name for s in otel.spans()] == ["POST /orders"]


# --- Ruby Sidekiq on either side -------------------------------------------------------------------------------

#: A Ruby client middleware writing trace context into the job hash as ``OpenTelemetry.propagation.inject(job)``
#: does for the gem's producer span (ARGV: trace id, span id); prints the jid.
RUBY_TRACED_PUSH = """
class InjectTraceContext
  def call(_worker_class, job, _queue, _redis_pool)
    job["traceparent"] = "00-#{ARGV[0]}-#{ARGV[1]}-01"
    job["tracestate"] = "rails=web"
    yield
  end
end
Sidekiq.configure_client { |config| config.client_middleware { |chain| chain.add InjectTraceContext } }
puts Sidekiq::Client.push("class" => "Trace::Ok", "args" => ["from-ruby"])
"""


@pytest.mark.slow
@requires_ruby
def test_a_job_a_ruby_producer_traced_runs_in_a_consumer_span_of_its_trace(
        otel: Otel, r: redis.Redis, redis_url: str, tmp_path: Path) -> None:
    ruby_trace, ruby_span = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    with running_pool(tmp_path, redis_url, require=["tracejobs"], processes=1, tracing="child"):
        # Given a job Ruby pushed from inside its own producer span
        jid = ruby_run(RUBY_TRACED_PUSH, redis_url, ruby_trace, ruby_span).strip()
        # When pyq runs it
        span = consumers(r, 1)[jid]
    # Then its consumer span continues Ruby's trace, under Ruby's span, carrying Ruby's tracestate
    assert (span["trace_id"], span["parent_id"]) == (ruby_trace, ruby_span)
    assert span["trace_state"] == "rails=web" and span["status"] == "UNSET"
    assert span["attributes"]["messaging.sidekiq.job_class"] == "Trace::Ok"


@pytest.mark.slow
@requires_ruby
def test_a_ruby_worker_receives_the_trace_context_pyq_wrote(otel: Otel, client: Client, r: redis.Redis,
                                                           redis_url: str) -> None:
    otel.instrument()
    with sidekiq_server("trace_worker.rb", redis_url, "interop"):
        # Given a job pushed by pyq with tracing on, for a Ruby job class
        with otel.tracer.start_as_current_span("POST /orders"):
            jid = client.push({"class": "RecordJob", "args": [1, "é"], "queue": "interop"})
        # When Ruby Sidekiq runs it
        fields = json.loads(wait_until(lambda: r.hget("test:trace_context", jid), RUN_TIMEOUT_S))
        recorded = json.loads(wait_until(lambda: r.lpop("test:recorded"), RUN_TIMEOUT_S))
    # Then Ruby read the producer's traceparent from the job hash, untouched, and ran the job as usual
    [producer] = otel.spans(SpanKind.PRODUCER)
    assert fields == {"traceparent": traceparent(producer)}
    assert recorded == {"jid": jid, "args": [1, "é"], "class": "RecordJob"}
    assert r.zcard("retry") == 0 and r.zcard("dead") == 0
