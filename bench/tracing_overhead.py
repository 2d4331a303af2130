"""What tracing costs per push and per run, against pyq with tracing off in the same run.

``python bench/tracing_overhead.py [--n 20000]`` prints microseconds per push and its ratio to tracing
off, and the microseconds tracing adds to a run (off, the run's chain is empty: its own time is
noise), for: off (the default), on with no SDK (OpenTelemetry's no-op provider), and on with
the SDK recording every span into a batch processor whose exporter drops them (the cost of pyq's
spans, not of an exporter). A push here stops at the client's store (no Redis round trip, which
would hide the difference); a run is the server chain around a job that does nothing.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from pyq import middleware, tracing
from pyq.client import Client
from pyq.context import JobContext
from pyq.keys import Keys


class Dropped(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def per_op_us(op: Callable[[], Any], n: int) -> float:
    op()  # warm up
    started = time.perf_counter()
    for _ in range(n):
        op()
    return (time.perf_counter() - started) / n * 1e6


def measure(n: int) -> dict[str, tuple[float, float]]:
    client = Client(store=lambda calls: [1 for _ in calls])
    job = {"class": "Bench::Job", "args": [1, "two"], "queue": "default", "jid": "0" * 24, "created_at": time.time(),
           "enqueued_at": time.time(), "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
    ctx = JobContext(job, b"", "default", None, [1, "two"], {}, None, Keys())  # type: ignore[arg-type]

    def push() -> None:
        client.push({"class": "Bench::Job", "args": [1, "two"]})

    def run() -> None:
        middleware.sync_chain(middleware.server_middleware, ctx, lambda: None)()

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Dropped(), max_queue_size=n * 3))
    setups: dict[str, Callable[[], None]] = {
        "off": tracing.uninstrument,
        "on, no SDK": lambda: tracing.instrument(tracer_provider=None),
        "on, SDK": lambda: tracing.instrument(tracer_provider=provider),
    }
    results = {}
    for name, setup in setups.items():
        setup()
        results[name] = (per_op_us(push, n), per_op_us(run, n))
        tracing.uninstrument()
    provider.shutdown()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000)
    n = parser.parse_args().n
    results = measure(n)
    push_off, run_off = results["off"]
    print(f"{'tracing':<12} {'push us':>9} {'ratio':>6} {'run: added us':>14}   ({n} each)")
    for name, (push_us, run_us) in results.items():
        print(f"{name:<12} {push_us:>9.2f} {push_us / push_off:>6.2f} {run_us - run_off:>14.2f}")


if __name__ == "__main__":
    main()
