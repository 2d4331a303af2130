"""Failures pyq stores are Sidekiq's: Ruby's RetrySet/DeadSet read them, and a Ruby "retry" runs in pyq."""

from __future__ import annotations

import json
from pathlib import Path

import redis

import pyq
from pool import running_pool, running_worker, wait_until
from rubyhelp import requires_ruby, ruby_run
from test_processor import IDENTITY, KEYS, a_job, fetched, make_processor

RAN: list[str] = []

READ_SETS = """
def show(entry)
  { "klass" => entry.klass, "display_class" => entry.display_class, "jid" => entry.jid, "args" => entry.args,
    "queue" => entry.queue, "error_class" => entry["error_class"], "error_message" => entry["error_message"],
    "retry_count" => entry["retry_count"], "failed_at" => entry["failed_at"], "at" => entry.at.to_f,
    "backtrace" => entry.error_backtrace }
end
puts JSON.generate("retry" => Sidekiq::RetrySet.new.map { |e| show(e) },
                   "dead" => Sidekiq::DeadSet.new.map { |e| show(e) })
"""


@pyq.job(name="Interop::Flaky", backtrace=True)
def flaky(token: str) -> None:
    if token.startswith("fail"):
        raise ValueError(f"flaky {token} " + "é" * 3)
    RAN.append(token)


def fail_once(r: redis.Redis, raw: str) -> None:
    processor = make_processor(r)
    processor.run(processor.prepare(fetched(r, raw)))


@requires_ruby
def test_ruby_retry_and_dead_sets_read_pyq_failures(redis_url: str, r: redis.Redis) -> None:
    # Given one job pyq sent to the retry set and one to the dead set, both with backtraces
    fail_once(r, a_job("Interop::Flaky", ["fail-retry"], backtrace=True))
    fail_once(r, a_job("Interop::Flaky", ["fail-dead"], backtrace=2, retry=0))
    # When Ruby Sidekiq's API reads them
    seen = json.loads(ruby_run(READ_SETS, redis_url))
    # Then every error field comes through, and the backtrace decodes in Ruby
    [retried], [dead] = seen["retry"], seen["dead"]
    for entry, args in ((retried, ["fail-retry"]), (dead, ["fail-dead"])):
        assert (entry["klass"], entry["display_class"], entry["args"]) == ("Interop::Flaky", "Interop::Flaky", args)
        assert entry["error_class"] == "ValueError" and entry["error_message"] == f"flaky {args[0]} ééé"
        assert entry["retry_count"] == 0 and isinstance(entry["failed_at"], float)
        assert entry["backtrace"][0].endswith(":in `flaky'") and "test_interop_retry.py:" in entry["backtrace"][0]
    assert len(dead["backtrace"]) == 2
    assert 15 <= retried["at"] - retried["failed_at"] <= 25


@requires_ruby
def test_a_ruby_retry_of_a_pyq_entry_runs_again_in_pyq(redis_url: str, r: redis.Redis) -> None:
    RAN.clear()
    # Given a pyq job in the retry set, whose next run will succeed (its args were fixed)
    fail_once(r, a_job("Interop::Flaky", ["fail-then-fixed"]))
    raw = r.zrange("retry", 0, -1)[0]
    fixed = json.loads(raw)
    fixed["args"] = ["fixed"]
    r.zadd("retry", {json.dumps(fixed): r.zscore("retry", raw)})
    r.zrem("retry", raw)
    # When Ruby presses "retry" on it (Sidekiq::SortedEntry#retry)
    ruby_run("Sidekiq::RetrySet.new.first.retry", redis_url)
    pushed = json.loads(r.lindex("queue:default", 0))
    assert (pushed["jid"], pushed["retry_count"]) == (fixed["jid"], -1)
    # Then a real pyq worker runs it and acknowledges it
    with running_worker(redis_url, IDENTITY):
        wait_until(lambda: "fixed" in RAN)
    assert r.zcard("retry") == 0 and r.llen("queue:default") == 0 and r.llen(KEYS.inflight(IDENTITY)) == 0


PUSH_NULL_RETRY = """
%w[Interop::NoRetry Interop::NeverRetry Interop::Failing].each do |klass|
  Sidekiq::Client.push("class" => klass, "args" => [klass], "retry" => nil)
end
"""


@requires_ruby
def test_a_ruby_push_with_retry_nil_follows_the_retry_option_declared_in_python(
        tmp_path: Path, redis_url: str, r: redis.Redis) -> None:
    # Given a Ruby client that pushes three jobs with `retry: nil`, for jobs declared in Python with
    # retry=0, retry=False and no retry option
    ruby_run(PUSH_NULL_RETRY, redis_url)
    assert {json.loads(raw)["retry"] for raw in r.lrange("queue:default", 0, -1)} == {None}
    # When a real pyq pool runs them and each one fails
    with running_pool(tmp_path, redis_url, processes=1):
        wait_until(lambda: int(r.get("stat:failed") or 0) == 3)
    # Then as in Sidekiq's JobRetry: retry=0 dies at once, carrying its declared retry; retry=False is dropped;
    # the job that declares nothing is retried
    [dead] = [json.loads(raw) for raw in r.zrange("dead", 0, -1)]
    [retried] = [json.loads(raw) for raw in r.zrange("retry", 0, -1)]
    assert (dead["class"], dead["retry"], dead["retry_count"]) == ("Interop::NoRetry", 0, 0)
    assert (retried["class"], retried["retry"]) == ("Interop::Failing", True)
    assert r.llen("queue:default") == 0
