"""Recurring jobs: cron strings, schedule files, the Redis store, and the once-per-tick poller."""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from conftest import run_loop_for
from pyq import payload
from pyq.cron import CronJob, CronPoller, CronStore, load_schedule_file, parse_schedule, to_croniter
from pyq.errors import ConfigError
from pyq.keys import Keys

ROOT = Path(__file__).resolve().parents[1]
K = Keys()
#: 2024-01-01 00:00:00 UTC, a Monday.
T0 = 1704067200.0


def utc(*parts: int) -> float:
    return datetime(*parts, tzinfo=timezone.utc).timestamp()


def queued(r: redis.Redis, queue: str = "default") -> list[dict]:
    return [payload.loads(raw) for raw in reversed(r.lrange(K.queue(queue), 0, -1))]


# --- cron strings -------------------------------------------------------------------------

@pytest.mark.parametrize(("cron", "expected"), [
    ("*/5 * * * *", "*/5 * * * *"),
    ("30 */2 * * * *", "*/2 * * * * 30"),
    ("every 15 minutes", "*/15 * * * *"),
    ("every minute", "* * * * *"),
    ("every hour", "0 * * * *"),
    ("every 2 hours", "0 */2 * * *"),
    ("every day at 2am", "0 2 * * *"),
    ("every day at 14:30", "30 14 * * *"),
    ("every day at 9:15 pm", "15 21 * * *"),
    ("every day at 12am", "0 0 * * *"),
    ("every monday at 9am", "0 9 * * 1"),
    ("every weekday at 8:00", "0 8 * * 1-5"),
    ("hourly", "0 * * * *"),
    ("daily", "0 0 * * *"),
    ("weekly", "0 0 * * 0"),
    ("monthly", "0 0 1 * *"),
    ("every sunday", "0 0 * * 0"),
    ("@daily", "0 0 * * *"),
    ("every 10 seconds", "* * * * * */10"),
])
def test_to_croniter_fields_and_phrases(cron: str, expected: str) -> None:
    assert to_croniter(cron) == (expected, None)


@pytest.mark.parametrize(("cron", "expected"), [
    ("0 2 * * * Europe/Berlin", ("0 2 * * *", "Europe/Berlin")),
    ("0 2 * * * UTC", ("0 2 * * *", "UTC")),
    ("15 0 2 * * * America/New_York", ("0 2 * * * 15", "America/New_York")),
    ("every day at 2am in Europe/Berlin", ("0 2 * * *", "Europe/Berlin")),
])
def test_to_croniter_time_zone_suffix(cron: str, expected: tuple[str, str]) -> None:
    assert to_croniter(cron) == expected


@pytest.mark.parametrize("cron", ["every blue moon", "every day at 25:00", "every 0 minutes", "61 * * * *",
                                  "* * *", "", "0 2 * * * Mars/Olympus"])
def test_to_croniter_rejects_bad_strings(cron: str) -> None:
    with pytest.raises(ConfigError):
        to_croniter(cron)


def test_unknown_phrase_error_names_the_schedule_and_the_phrase() -> None:
    with pytest.raises(ConfigError, match=r"schedule\.yml.*'nightly'.*every blue moon"):
        parse_schedule({"nightly": {"cron": "every blue moon", "class": "X"}}, "schedule.yml")


def test_next_and_last_time_in_utc() -> None:
    job = CronJob("j", "every day at 2am", "X")
    assert job.next_time(T0) == utc(2024, 1, 1, 2)
    assert job.next_time(utc(2024, 1, 1, 2)) == utc(2024, 1, 2, 2)  # strictly after
    assert job.last_time(utc(2024, 1, 1, 2)) == utc(2024, 1, 1, 2)  # at or before
    assert job.last_time(utc(2024, 1, 1, 1, 59)) == utc(2023, 12, 31, 2)


def test_times_follow_the_time_zone_and_seconds_field() -> None:
    berlin = CronJob("j", "0 2 * * * Europe/Berlin", "X")
    assert berlin.next_time(T0) == utc(2024, 1, 1, 1)  # CET = UTC+1
    assert berlin.next_time(utc(2024, 6, 30, 12)) == utc(2024, 7, 1, 0)  # CEST = UTC+2
    seconds = CronJob("s", "*/20 * * * * *", "X")
    assert [seconds.next_time(T0 + d) for d in (0, 19.5, 20)] == [T0 + 20, T0 + 20, T0 + 40]
    assert seconds.last_time(T0 + 59.9) == T0 + 40


# --- schedules from config --------------------------------------------------------------

def test_parse_schedule_map_and_list_forms() -> None:
    as_map = parse_schedule({"a": {"cron": "* * * * *", "class": "A", "args": {"k": 1}, "queue": "low",
                                   "retry": 2, "tags": ["t"], "date_as_argument": "true"}}, "cfg")
    as_list = parse_schedule([{"name": "a", "cron": "* * * * *", "klass": "A", "args": {"k": 1}, "queue": "low",
                               "retry": 2, "tags": ["t"], "date_as_argument": True}], "cfg")
    assert as_map == as_list
    job = as_map[0]
    assert (job.args, job.queue, job.retry, job.date_as_argument) == (({"k": 1},), "low", 2, True)
    assert job.message() == {"queue": "low", "class": "A", "args": [{"k": 1}], "retry": 2, "tags": ["t"]}


@pytest.mark.parametrize(("spec", "field"), [
    ({"class": "A"}, "cron"),
    ({"cron": "* * * * *"}, "class"),
    ({"cron": "* * * * *", "class": "A", "status": "paused"}, "status"),
    ({"cron": "* * * * *", "class": "A", "args": [object()]}, "args"),
    ({"cron": "* * * * *", "class": "A", "queu": "low"}, "queu"),
])
def test_parse_schedule_errors_name_where_job_and_field(spec: dict, field: str) -> None:
    with pytest.raises(ConfigError, match=rf"queue\.yml.*'nightly'.*{field}"):
        parse_schedule({"nightly": spec}, "queue.yml")


def test_load_the_example_schedule_file() -> None:
    jobs = {j.name: j for j in load_schedule_file(str(ROOT / "config" / "schedule.yml"))}
    assert jobs["cleanup_old_records"].next_time(T0) == utc(2024, 1, 1, 2)
    assert jobs["weekly_report"].next_time(T0) == utc(2024, 1, 1, 8)  # Monday 09:00 in Berlin
    assert jobs["heartbeat_probe"].next_time(T0) == T0 + 30


def test_load_schedule_file_rejects_erb_and_missing_files(tmp_path: Path) -> None:
    erb = tmp_path / "schedule.yml"
    erb.write_text("a:\n  cron: <%= ENV['X'] %>\n  class: A\n")
    with pytest.raises(ConfigError, match="ERB"):
        load_schedule_file(str(erb))
    with pytest.raises(ConfigError, match="cannot read"):
        load_schedule_file(str(tmp_path / "nope.yml"))


# --- store ---------------------------------------------------------------------------------

def test_store_round_trip_v2_layout(r: redis.Redis) -> None:
    store = CronStore(r, K)
    job = CronJob("nightly", "daily", "Cleanup", queue="low", args=[1, "a"], description="d", retry=False,
                  namespace="ops", extra={"tags": ["x"]})
    store.save(job, now_s=T0)
    fields = {k.decode(): v.decode() for k, v in r.hgetall("cron_job:ops:nightly").items()}
    assert r.smembers("cron_jobs:ops") == {b"cron_job:ops:nightly"}
    assert fields["cron"] == "@daily" and fields["active_job"] == "0" and fields["symbolize_args"] == "0"
    assert fields["retry"] == "false" and fields["last_enqueue_time"] == "" and fields["namespace"] == "ops"
    assert json.loads(fields["message"]) == {"queue": "low", "class": "Cleanup", "args": [1, "a"], "retry": False,
                                             "tags": ["x"]}
    loaded = store.get("nightly", namespace="ops")
    assert loaded == CronJob("nightly", "@daily", "Cleanup", queue="low", args=(1, "a"), description="d",
                             retry=False, namespace="ops", extra={"tags": ["x"]})
    assert store.all() == [loaded]


def test_store_v1_layout_and_seeded_tick(r: redis.Redis) -> None:
    store = CronStore(r, K, version=1)
    store.save(CronJob("j", "*/5 * * * *", "K", date_as_argument=True), now_s=T0 + 7)
    assert r.smembers("cron_jobs") == {b"cron_job:j"}
    assert r.hget("cron_job:j", "date_as_argument") == b"true"
    assert r.hget("cron_job:j", "namespace") is None
    assert r.zrange("cron_job:j:enqueued", 0, -1, withscores=True) == [(b"2024-01-01T00:00:00Z", T0 + 7)]


def test_sync_removes_schedule_jobs_that_left_the_file(r: redis.Redis) -> None:
    store = CronStore(r, K)
    store.sync([CronJob("a", "* * * * *", "A"), CronJob("b", "* * * * *", "B")], now_s=T0)
    store.save(CronJob("made_at_runtime", "* * * * *", "C", source="dynamic"), now_s=T0)
    r.lpush(store.history_key("b"), "{}")
    store.sync([CronJob("a", "* * * * *", "A2")], now_s=T0)
    assert sorted(j.name for j in store.all()) == ["a", "made_at_runtime"]
    assert store.get("a").klass == "A2"
    assert not r.exists("cron_job:default:b", "cron_job:default:b:enqueued", "cron_job:default:b:jid_history")


def test_unreadable_hash_is_skipped_not_fatal(r: redis.Redis, caplog: pytest.LogCaptureFixture) -> None:
    store = CronStore(r, K)
    store.save(CronJob("good", "* * * * *", "A"), now_s=T0)
    r.sadd("cron_jobs:default", "cron_job:default:bad")
    r.hset("cron_job:default:bad", mapping={"name": "bad", "cron": "every blue moon", "klass": "B"})
    assert [j.name for j in store.all()] == ["good"]
    assert "bad" in caplog.text


# --- poller -------------------------------------------------------------------------------

@pytest.fixture
def poller(r: redis.Redis, client) -> CronPoller:
    return CronPoller(r, K, client)


def test_saved_job_does_not_fire_at_once_then_fires_once_per_tick(r: redis.Redis, poller: CronPoller) -> None:
    poller.store.save(CronJob("m", "* * * * *", "MinuteJob", args=[7]), now_s=T0 + 10)
    assert poller.tick(T0 + 10) == []
    [(name, jid)] = poller.tick(T0 + 61)
    assert poller.tick(T0 + 62) == []
    assert CronPoller(r, K, poller.client).tick(T0 + 63) == []  # a second poller, same tick
    [job] = queued(r)
    assert (name, job["jid"], job["class"], job["args"]) == ("m", jid, "MinuteJob", [7])
    assert poller.store.last_enqueue_time("m") == T0 + 61
    assert json.loads(r.lindex(poller.store.history_key("m"), 0)) == {"jid": jid, "enqueued":
                                                                       "2024-01-01 00:01:01 UTC"}


def test_missed_tick_inside_grace_runs_once_older_is_skipped(r: redis.Redis, poller: CronPoller) -> None:
    poller.store.save(CronJob("h", "0 * * * *", "Hourly"), now_s=T0 - 600)
    # Given the 01:00 tick was missed; when a poller wakes 50 s late, it still runs it, once.
    assert len(poller.tick(T0 + 3600 + 50)) == 1
    assert poller.tick(T0 + 3600 + 55) == []
    # When the next poller wakes 61 s after 02:00, that tick is past the grace period: skipped.
    assert poller.tick(T0 + 7200 + 61) == []
    assert len(queued(r)) == 1


def test_disabled_job_is_skipped_until_enabled(r: redis.Redis, poller: CronPoller) -> None:
    poller.store.save(CronJob("d", "* * * * *", "D"), now_s=T0)
    poller.store.disable("d")
    assert poller.tick(T0 + 60) == []
    poller.store.enable("d")
    assert len(poller.tick(T0 + 120)) == 1
    with pytest.raises(KeyError, match="nope"):
        poller.store.enable("nope")


def test_date_as_argument_and_history_and_trim(r: redis.Redis, poller: CronPoller) -> None:
    poller.store.save(CronJob("s", "* * * * *", "S", args=["x"], date_as_argument=True), now_s=T0)
    r.zadd(poller.store.enqueued_key("s"), {"old": T0 - 90000})
    for minute in range(1, 13):
        poller.tick(T0 + 60 * minute)
    jobs = queued(r)
    assert [j["args"] for j in jobs[:2]] == [["x", T0 + 60], ["x", T0 + 120]]
    assert isinstance(jobs[0]["args"][1], float)
    assert r.llen(poller.store.history_key("s")) == 10
    assert r.zscore(poller.store.enqueued_key("s"), "old") is None


def test_active_job_envelope(r: redis.Redis, poller: CronPoller) -> None:
    poller.store.save(CronJob("aj", "* * * * *", "ReportJob", queue="mail", args=[1], active_job=True), now_s=T0)
    poller.tick(T0 + 60)
    [job] = queued(r, "mail")
    assert (job["class"], job["wrapped"], job["queue"]) == (
        "ActiveJob::QueueAdapters::SidekiqAdapter::JobWrapper", "ReportJob", "mail")
    envelope = job["args"][0]
    assert envelope["arguments"] == [1] and envelope["queue_name"] == "mail" and envelope["executions"] == 0
    assert envelope["provider_job_id"] is None and envelope["exception_executions"] == {}
    assert len(envelope["job_id"]) == 36 and envelope["enqueued_at"].startswith("2024-01-01T00:01:00.")
    assert len(envelope["enqueued_at"]) == len("2024-01-01T00:01:00.000000000Z")
    assert payload.unwrap_activejob(job) == ("ReportJob", [1], {})


def test_enqueue_now(r: redis.Redis, poller: CronPoller) -> None:
    poller.store.save(CronJob("n", "0 0 1 1 *", "Yearly", args=[3]), now_s=T0)
    jid = poller.enqueue_now("n")
    assert [(j["jid"], j["args"]) for j in queued(r)] == [(jid, [3])]
    assert poller.store.last_enqueue_time("n") == pytest.approx(time.time(), abs=5)
    with pytest.raises(KeyError):
        poller.enqueue_now("missing")


def test_run_polls_and_stops(r: redis.Redis, client) -> None:
    store = CronStore(r, K)
    store.save(CronJob("sec", "* * * * * *", "Tick"), now_s=time.time() - 5)
    stop = threading.Event()
    poller = CronPoller(r, K, client, poll_interval_s=0.05)
    thread = threading.Thread(target=poller.run, args=(stop,), daemon=True)
    thread.start()
    deadline = time.monotonic() + 5
    while not r.llen(K.queue("default")) and time.monotonic() < deadline:
        time.sleep(0.02)
    stop.set()
    thread.join(2)
    assert not thread.is_alive() and r.llen(K.queue("default")) >= 1


def test_run_logs_a_redis_outage_once(client, caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    dead = redis.Redis(port=closed_port, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
    poller = CronPoller(dead, K, client, poll_interval_s=0.02)
    with caplog.at_level(logging.ERROR, logger="pyq.cron.poller"):
        assert run_loop_for(poller.run, 0.4)
    assert len([rec for rec in caplog.records if rec.levelno == logging.ERROR]) == 1


def test_random_interval_matches_sidekiq_spread() -> None:
    poller = CronPoller(None, K, None, poll_interval_s=30)
    small = [poller.random_interval_s(3) for _ in range(500)]
    large = [poller.random_interval_s(12) for _ in range(500)]
    assert min(small) >= 15 and max(small) <= 45 and min(large) < 15 and 45 < max(large) <= 60


# --- exactly once across processes -----------------------------------------------------------

_CHILD = """
import json, random, sys, time
import redis
import pyq
from pyq.cron import CronPoller
from pyq.keys import Keys
url, t0, seed, start_at = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
conn = redis.Redis.from_url(url)
poller = CronPoller(conn, Keys(), pyq.Client(url))
rng = random.Random(seed)
time.sleep(max(0.0, start_at - time.time()))
pushed = []
for i in range(100):
    time.sleep(rng.random() * 0.003)
    pushed += [(t0 + i, name, jid) for name, jid in poller.tick(t0 + i)]
print(json.dumps(pushed))
"""


def test_five_poller_processes_enqueue_each_tick_exactly_once(r: redis.Redis, redis_url: str) -> None:
    store = CronStore(r, K)
    for name in ("every_second", "also_every_second"):
        store.save(CronJob(name, "* * * * * *", "Tick", date_as_argument=True), now_s=T0 - 1)
    start_at = time.time() + 1.5
    procs = [subprocess.Popen([sys.executable, "-c", _CHILD, redis_url, repr(T0), str(seed), repr(start_at)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT) for seed in range(5)]
    try:
        outputs = [p.communicate(timeout=30) for p in procs]
    finally:
        for p in procs:
            p.kill()
            p.wait(5)
    assert all(p.returncode == 0 for p in procs), [err.decode()[-500:] for _, err in outputs]
    pushes = [tuple(x) for out, _ in outputs for x in json.loads(out)]
    per_process = [len(json.loads(out)) for out, _ in outputs]
    assert sorted((tick, name) for tick, name, _ in pushes) == sorted(
        (T0 + i, n) for i in range(100) for n in ("every_second", "also_every_second"))
    assert sum(1 for p in per_process if p) >= 2, per_process  # the work really was shared
    fired = sorted(j["args"][0] for j in queued(r))
    assert fired == sorted([T0 + i for i in range(100)] * 2)


def test_all_finds_every_namespace(r: redis.Redis) -> None:
    reader = CronStore(r, K)
    assert reader.all() == []
    CronStore(r, K).save(CronJob("a", "* * * * *", "A", namespace="billing"), now_s=T0)
    CronStore(r, K).save(CronJob("b", "* * * * *", "B"), now_s=T0)
    assert sorted((j.namespace, j.name) for j in CronStore(r, K).all()) == [("billing", "a"), ("default", "b")]


def test_one_failing_push_does_not_stop_the_others(r: redis.Redis, redis_url: str,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    import pyq

    def refuse_bad(job: dict, call_next):
        if job["class"] == "Bad":
            raise ValueError("refused")
        return call_next(job)

    poller = CronPoller(r, K, pyq.Client(redis_url, middleware=[refuse_bad]))
    for name in ("bad", "good"):
        poller.store.save(CronJob(name, "* * * * *", name.title()), now_s=T0)
    assert [name for name, _ in poller.tick(T0 + 60)] == ["good"]
    assert "could not enqueue bad" in caplog.text
