"""docs/operations.md's Tracing example, run as written: a traced push here, a traced run in a real pool."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml

from pool import running_pool, wait_until

PAGE = (Path(__file__).resolve().parents[1] / "docs" / "operations.md").read_text()
SECTION = PAGE.split("\n## Tracing\n", 1)[1].split("\n## ", 1)[0]


def blocks(language: str) -> list[str]:
    return [part.split("```", 1)[0] for part in SECTION.split(f"```{language}\n")[1:]]


def console_spans(text: str) -> dict[str, dict[str, Any]]:
    """The spans ConsoleSpanExporter printed (one JSON object each, among other output), by name."""
    decoder, found, at = json.JSONDecoder(), {}, 0
    while (at := text.find("{\n", at)) != -1:
        try:
            span, end = decoder.raw_decode(text, at)
        except json.JSONDecodeError:
            at += 1
            continue
        if isinstance(span, dict) and "context" in span:
            found[span["name"]] = span
        at = end
    return found


@pytest.mark.slow
def test_the_tracing_example_puts_the_run_in_the_requests_trace(tmp_path: Path, r: redis.Redis, redis_url: str,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PYTHONUNBUFFERED", raising=False)  # the pool's output as it is outside the test runner
    # Given the page's telemetry and jobs modules, its config and its web snippet
    telemetry, jobs, web = blocks("python")
    [settings] = blocks("yaml")
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "__init__.py").write_text("")
    (tmp_path / "app" / "telemetry.py").write_text(telemetry)
    (tmp_path / "app" / "jobs.py").write_text(jobs)
    env = {**os.environ, "PYQ_REDIS_URL": redis_url}
    with running_pool(tmp_path, redis_url, processes=1, **yaml.safe_load(settings)) as pool:
        wait_until(lambda: r.scard("processes") == 1, 30)
        # When the snippet pushes inside its request span, and the pool runs the job and is stopped
        pushed = subprocess.run([sys.executable, "-c", web], cwd=tmp_path, env=env, capture_output=True, text=True,
                                timeout=60, check=True).stdout
        log = tmp_path / "pool.log"
        wait_until(lambda: r.get("stat:processed") == b"1", 30)
        pool.send_signal(signal.SIGTERM)
        assert pool.wait(30) == 0
    # Then one trace holds the request, the push and the run, each the child of the one before
    web_spans, pool_spans = console_spans(pushed), console_spans(log.read_text())
    request, push = web_spans["POST /orders"], web_spans["default publish"]
    run = pool_spans["default process"]
    assert push["parent_id"] == request["context"]["span_id"]
    assert run["parent_id"] == push["context"]["span_id"]
    assert run["context"]["trace_id"] == push["context"]["trace_id"] == request["context"]["trace_id"]
    assert run["attributes"]["messaging.system"] == "sidekiq"
