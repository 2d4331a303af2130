"""pyq's producer side against real Ruby Sidekiq 6.4: Ruby reads and runs what pyq pushes, pyq reads what Ruby pushes.

Ruby prints JSON, Python asserts. The payloads Ruby's own client writes are kept
in ``tests/fixtures/ruby_payloads.json`` (made by ``tests/ruby/capture_payloads.rb``);
one test captures them again and checks the golden file still has the same shape.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import redis

import pyq
from pyq import payload, scripts
from pyq.client import Client
from pyq.keys import Keys
from rubyhelp import RubyError, requires_ruby, ruby_run, sidekiq_server

GOLDEN = Path(__file__).resolve().parent / "fixtures" / "ruby_payloads.json"
#: Values that differ on every capture; their type is still compared.
VOLATILE = {"jid", "created_at", "enqueued_at", "job_id", "score"}


@pyq.job(name="Interop::RecordJob", queue="interop")
def record(*args: Any) -> None:
    return None


def read_from_ruby(redis_url: str, queue: str) -> dict[str, Any]:
    return json.loads(ruby_run("read_jobs.rb", redis_url, queue))


# --- Ruby reads pyq's jobs -----------------------------------------------------------------------------------


@requires_ruby
def test_ruby_api_reads_jobs_pyq_pushed(client: Client, redis_url: str) -> None:
    # Given jobs pushed by pyq: a defined job, a raw hash with odd values, and a bulk
    jid = record.perform_async(1, "two", {"k": [None, 2.5]})
    raw_jid = client.push({"class": "Billing::HardJob", "args": ["café/ü"], "queue": "interop", "bid": "B1"})
    bulk = record.perform_bulk([[i] for i in range(3)])
    # When Ruby's Sidekiq::Queue reads the queue
    seen = read_from_ruby(redis_url, "interop")
    # Then Ruby sees every job with its class, args, jid, queue and numeric times (Ruby lists newest first)
    jobs = seen["queue"][::-1]
    assert seen["size"] == 5 and isinstance(seen["latency"], float) and 0 <= seen["latency"] < 60
    assert [j["jid"] for j in jobs] == [jid, raw_jid, *bulk]
    assert jobs[0]["klass"] == "Interop::RecordJob" and jobs[0]["args"] == [1, "two", {"k": [None, 2.5]}]
    assert jobs[1]["klass"] == "Billing::HardJob" and jobs[1]["args"] == ["café/ü"] and jobs[1]["item"]["bid"] == "B1"
    assert all(j["queue"] == "interop" for j in jobs)
    for job in jobs:
        assert isinstance(job["created_at"], float) and isinstance(job["enqueued_at"], float)
        assert abs(job["enqueued_at"] - time.time()) < 60 and job["created_at"] <= job["enqueued_at"]


@requires_ruby
def test_ruby_scheduled_set_reads_pyq_scheduled_jobs(client: Client, redis_url: str) -> None:
    due = time.time() + 3600.5
    jid = record.perform_at(due, 7)
    [entry] = read_from_ruby(redis_url, "interop")["scheduled"]
    assert entry["jid"] == jid and entry["klass"] == "Interop::RecordJob" and entry["args"] == [7]
    assert entry["queue"] == "interop" and entry["score"] == pytest.approx(due, abs=1e-3)
    assert entry["at"] == pytest.approx(due, abs=1e-3)
    assert "at" not in entry["item"] and "enqueued_at" not in entry["item"]
    assert isinstance(entry["created_at"], float)


@requires_ruby
def test_pyq_promotes_a_ruby_scheduled_job_that_ruby_then_reads(redis_url: str, r: redis.Redis) -> None:
    jid = ruby_run('puts Sidekiq::Client.push("class" => "HardJob", "args" => [1], "queue" => "late", "at" => '
                   'Time.now.to_f + 0.05)', redis_url).strip()
    time.sleep(0.1)
    now = time.time()
    assert scripts.promote(Keys(), "schedule", now_s=now, limit=10, enqueued_at=now).run(r) == 1
    [job] = read_from_ruby(redis_url, "late")["queue"]
    assert job["jid"] == jid and job["enqueued_at"] == pytest.approx(now, abs=1e-3)


# --- a Ruby Sidekiq server runs pyq's jobs ---------------------------------------------------------------------


def wait_recorded(r: redis.Redis, count: int, timeout_s: float) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout_s
    while r.llen("test:recorded") < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return [json.loads(raw) for raw in r.lrange("test:recorded", 0, -1)]


@pytest.mark.slow
@requires_ruby
def test_ruby_sidekiq_server_runs_jobs_pushed_by_pyq(redis_url: str, r: redis.Redis) -> None:
    client = Client(redis_url)
    with sidekiq_server("record_worker.rb", redis_url, "interop"):
        # Given one job pushed now and one scheduled 1.5 s ahead (Sidekiq's own poller must promote it)
        now_jid = client.push({"class": "RecordJob", "args": [1, "é", {"k": 2.5}], "queue": "interop"})
        later_jid = client.push({"class": "Interop::RecordJob", "args": ["later"], "queue": "interop",
                                 "at": time.time() + 1.5})
        # Then Ruby runs both, with the args intact
        recorded = {entry["jid"]: entry for entry in wait_recorded(r, 2, timeout_s=20)}
    assert recorded.keys() == {now_jid, later_jid}
    assert recorded[now_jid]["args"] == [1, "é", {"k": 2.5}] and recorded[now_jid]["class"] == "RecordJob"
    assert recorded[later_jid]["args"] == ["later"] and recorded[later_jid]["class"] == "Interop::RecordJob"
    assert r.zcard("schedule") == 0 and r.zcard("retry") == 0 and r.zcard("dead") == 0


# --- pyq reads Ruby's jobs ---------------------------------------------------------------------------------------


def golden() -> dict[str, Any]:
    return json.loads(GOLDEN.read_text())


def all_jobs(captured: dict[str, Any]) -> list[dict[str, Any]]:
    return [captured["normal"], captured["scheduled"]["job"], *captured["bulk"], captured["activejob"],
            captured["activejob_scheduled"]["job"]]


def check_ruby_payloads(captured: dict[str, Any]) -> None:
    """Every field of Ruby's payloads survives pyq's decoder, and the times read as seconds."""
    for job in all_jobs(captured):
        assert payload.loads(payload.dumps(job).encode()) == job
        created = payload.to_epoch_s(job["created_at"])
        assert isinstance(job["created_at"], float) and created is not None and created > 1_600_000_000
        assert ("enqueued_at" in job) == (job not in (captured["scheduled"]["job"],
                                                      captured["activejob_scheduled"]["job"]))
        assert "at" not in job
    normal = captured["normal"]
    assert normal["class"] == "HardJob" and normal["args"] == [1, "two", 3.5, {"k": [None, True]}, "café/ü"]
    assert (normal["retry"], normal["backtrace"], normal["tags"]) == (5, True, ["alpha"])
    assert captured["scheduled"]["score"] - payload.to_epoch_s(captured["scheduled"]["job"]["created_at"]) \
        == pytest.approx(3600, abs=5)
    assert [b["args"] for b in captured["bulk"]] == [[1], [2]]
    assert len({b["jid"] for b in captured["bulk"]}) == 2
    check_activejob(captured)


def check_activejob(captured: dict[str, Any]) -> None:
    job = captured["activejob"]
    assert payload.is_activejob(job) and payload.display_class(job) == "GreetJob"
    assert payload.unwrap_activejob(job) == ("GreetJob", ["bob", {"sym": 1, "str": "s"}],
                                             {"greeting": "hi", "count": 2})
    later = captured["activejob_scheduled"]["job"]
    assert payload.unwrap_activejob(later) == ("GreetJob", ["later", {}], {"greeting": "yo"})


def shape(value: Any, key: str = "") -> Any:
    """The structure of a payload: keys and JSON types, with volatile values reduced to their type."""
    if isinstance(value, dict):
        return {k: shape(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(v, key) for v in value]
    return type(value).__name__ if key in VOLATILE or not isinstance(value, str) else value


def test_golden_ruby_payloads_decode_in_pyq() -> None:
    check_ruby_payloads(golden())


@requires_ruby
def test_fresh_ruby_payloads_decode_and_match_the_golden_shape(redis_url: str) -> None:
    captured = json.loads(ruby_run("capture_payloads.rb", redis_url))
    check_ruby_payloads(captured)
    fresh, kept = shape(captured), shape(golden())
    assert fresh == kept
    assert fresh["normal"]["created_at"] == "float" and fresh["bulk"][0]["jid"] == "str"


@requires_ruby
def test_pyq_bulk_and_ruby_bulk_have_the_same_fields(client: Client, redis_url: str, r: redis.Redis) -> None:
    client.push_bulk({"class": "BulkJob", "queue": "golden_bulk", "args": [[1], [2]]})
    ours = [json.loads(raw) for raw in reversed(r.lrange("queue:golden_bulk", 0, -1))]
    theirs = golden()["bulk"]
    assert [sorted(j) for j in ours] == [sorted(j) for j in theirs]
    assert [{k: type(v) for k, v in j.items()} for j in ours] == [{k: type(v) for k, v in j.items()} for j in theirs]


@requires_ruby
def test_the_deepest_args_pyq_accepts_are_the_deepest_ruby_can_parse(client, r, redis_url):
    def nested(depth: int) -> object:
        value: object = 1
        for _ in range(depth):
            value = [value]
        return value

    deepest = max(d for d in range(90, 110) if _accepted([nested(d)]))
    client.push({"class": "Deep", "args": [nested(deepest)], "queue": "deep"})
    out = ruby_run('puts Sidekiq::Queue.new("deep").first.args.flatten.inspect', redis_url)
    assert out.strip() == "[1]"
    r.lpush("queue:deep", payload.dumps({"class": "Deep", "args": [nested(deepest + 1)]}))
    with pytest.raises(RubyError, match="NestingError"):
        ruby_run('JSON.parse(Sidekiq.redis { |c| c.lindex("queue:deep", 0) })', redis_url)


def _accepted(args: list) -> bool:
    try:
        payload.check_json_native(args)
    except ValueError:
        return False
    return True
