"""client.py and the enqueue half of the job model (pyq/job/): what lands in Redis for every way of pushing a job."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import redis

import pyq
from pyq import client as client_module
from pyq.client import WAKE_CAP, Client
from pyq.errors import UnknownJob
from pyq.job import resolve
from pyq.job.registry import _registry

JID = re.compile(r"^[0-9a-f]{24}$")


@pyq.job
def add(a: int, b: int) -> int:
    return a + b


@pyq.job(queue="critical", retry=5, name="Orders::ChargeJob", tags=["billing"])
def charge(order_id: int) -> None:
    return None


class Report(pyq.Job):
    queue = "reports"
    retry = 3

    def perform(self, report_id: int) -> None:
        return None


class BuildReport(pyq.Job, name="Reports::Build"):
    def perform(self) -> None:
        return None


def queued(r: redis.Redis, queue: str = "default") -> list[dict[str, Any]]:
    """Jobs in a queue, oldest first (the order a worker takes them)."""
    return [json.loads(raw) for raw in reversed(r.lrange(f"queue:{queue}", 0, -1))]


def scheduled(r: redis.Redis) -> list[tuple[dict[str, Any], float]]:
    return [(json.loads(raw), score) for raw, score in r.zrange("schedule", 0, -1, withscores=True)]


# --- perform_async and friends -------------------------------------------------------------------------


def test_perform_async_pushes_a_sidekiq_job(client: Client, r: redis.Redis) -> None:
    before = time.time()
    jid = add.perform_async(1, 2)
    [job] = queued(r)
    assert JID.match(jid) and job["jid"] == jid
    assert job["class"] == add.name == f"{__name__}.add"
    assert job["args"] == [1, 2] and job["queue"] == "default" and job["retry"] is True
    assert type(job["created_at"]) is float and type(job["enqueued_at"]) is float
    assert before <= job["created_at"] <= job["enqueued_at"] <= time.time()
    assert "at" not in job
    assert r.smembers("queues") == {b"default"}


def test_payload_bytes_are_compact_json(client: Client, r: redis.Redis) -> None:
    add.perform_async("é/x", 1.0)
    raw = r.lindex("queue:default", 0).decode()
    assert raw.startswith('{"class":') and ": " not in raw and ', "' not in raw
    assert '"args":["é/x",1.0]' in raw


@pytest.mark.parametrize("interval", [120, 120.0, timedelta(minutes=2)])
def test_perform_in_schedules_without_at_or_enqueued_at(client: Client, r: redis.Redis, interval: Any) -> None:
    jid = add.perform_in(interval, 1, 2)
    [(job, score)] = scheduled(r)
    assert job["jid"] == jid and job["args"] == [1, 2]
    assert score == pytest.approx(time.time() + 120, abs=2)
    assert "at" not in job and "enqueued_at" not in job and type(job["created_at"]) is float
    assert r.llen("queue:default") == 0 and r.llen("pyq:wake:default") == 0


@pytest.mark.parametrize("when", [lambda t: t, lambda t: datetime.fromtimestamp(t, timezone.utc)])
def test_perform_at_epoch_or_datetime(client: Client, r: redis.Redis, when: Any) -> None:
    due = time.time() + 3600.25
    add.perform_at(when(due), 3, 4)
    [(job, score)] = scheduled(r)
    assert score == pytest.approx(due, abs=1e-3) and "at" not in job


@pytest.mark.parametrize("due", [0, -5.0])
def test_due_time_in_the_past_pushes_now(client: Client, r: redis.Redis, due: float) -> None:
    add.perform_at(time.time() + due, 1, 1)
    assert r.zcard("schedule") == 0 and len(queued(r)) == 1


def test_set_overrides_queue_and_retry(client: Client, r: redis.Redis) -> None:
    add.set(queue="urgent", retry=False).perform_async(1, 2)
    [job] = queued(r, "urgent")
    assert job["queue"] == "urgent" and job["retry"] is False
    assert r.smembers("queues") == {b"urgent"}


def test_set_wait_and_wait_until(client: Client, r: redis.Redis) -> None:
    add.set(wait=timedelta(seconds=60)).perform_async(1, 1)
    add.set(wait_until=time.time() + 7200, queue="later").perform_async(2, 2)
    entries = sorted(scheduled(r), key=lambda e: e[1])
    assert [e[1] - time.time() for e in entries] == [pytest.approx(60, abs=2), pytest.approx(7200, abs=2)]
    assert entries[1][0]["queue"] == "later"
    assert all(not {"wait", "wait_until", "at"} & set(job) for job, _ in entries)


def test_set_chains_and_keeps_earlier_overrides(client: Client, r: redis.Redis) -> None:
    add.set(queue="q1").set(retry=2).perform_async(0, 0)
    [job] = queued(r, "q1")
    assert job["retry"] == 2


def test_job_options_enter_the_payload(client: Client, r: redis.Redis) -> None:
    charge.perform_async(9)
    [job] = queued(r, "critical")
    assert job["class"] == "Orders::ChargeJob"
    assert job["retry"] == 5 and job["tags"] == ["billing"]


def test_job_subclass_enqueues_under_its_import_path(client: Client, r: redis.Redis) -> None:
    Report.perform_async(7)
    BuildReport.set(queue="other").perform_async()
    [job] = queued(r, "reports")
    assert job["class"] == f"{__name__}.Report" and job["args"] == [7] and job["retry"] == 3
    assert queued(r, "other")[0]["class"] == "Reports::Build"


def test_time_style_ms_writes_integer_milliseconds(redis_url: str, r: redis.Redis) -> None:
    Client(redis_url, time_style="ms").push({"class": "X", "args": []})
    [job] = queued(r)
    assert type(job["created_at"]) is int and job["created_at"] > 10**12
    assert type(job["enqueued_at"]) is int


def test_namespace_prefixes_every_key(redis_url: str, r: redis.Redis) -> None:
    ns = Client(redis_url, namespace="app")
    ns.push({"class": "X", "args": [1]})
    ns.push({"class": "X", "args": [2], "at": time.time() + 60})
    assert sorted(r.keys("*")) == [b"app:pyq:wake:default", b"app:queue:default", b"app:queues", b"app:schedule"]


# --- bulk ---------------------------------------------------------------------------------------------------


@pytest.fixture
def round_trips(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Counts socket writes by redis-py (each one is a round trip: requests go out, replies come back)."""
    counter = [0]
    original = redis.connection.AbstractConnection.send_packed_command

    def counting(self: Any, *args: Any, **kwargs: Any) -> Any:
        counter[0] += 1
        return original(self, *args, **kwargs)

    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", counting)
    yield counter


def evalsha_calls(r: redis.Redis) -> int:
    return int(r.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0))


def warm_up(client: Client) -> None:
    """Connect and load the enqueue script, so that counts show the steady state."""
    client.push({"class": "Warm", "args": [], "queue": "warm"})


def test_perform_bulk_chunks_in_one_round_trip(client: Client, r: redis.Redis, round_trips: list[int]) -> None:
    warm_up(client)
    round_trips[0], calls_before = 0, evalsha_calls(r)
    jids = add.perform_bulk([(i, i) for i in range(2500)])
    assert round_trips[0] == 1
    assert evalsha_calls(r) - calls_before == 3  # 1000 + 1000 + 500
    assert len(set(jids)) == 2500 and all(JID.match(j) for j in jids)
    jobs = queued(r)
    assert [j["jid"] for j in jobs] == jids and [j["args"] for j in jobs] == [[i, i] for i in range(2500)]


def test_perform_bulk_batch_size(client: Client, r: redis.Redis) -> None:
    warm_up(client)
    calls_before = evalsha_calls(r)
    add.set(queue="b").perform_bulk([[1, 1]] * 10, batch_size=3)
    assert evalsha_calls(r) - calls_before == 4 and r.llen("queue:b") == 10


def test_push_bulk_with_one_at_schedules_all(client: Client, r: redis.Redis) -> None:
    due = time.time() + 600
    jids = client.push_bulk({"class": "HardJob", "args": [[1], [2], [3]], "at": due})
    entries = scheduled(r)
    assert sorted(j["jid"] for j, _ in entries) == sorted(jids)
    assert all(score == pytest.approx(due, abs=1e-3) and "at" not in job for job, score in entries)


def test_push_bulk_with_a_list_of_at(client: Client, r: redis.Redis) -> None:
    now = time.time()
    jids = client.push_bulk({"class": "HardJob", "args": [[1], [2], [3]], "at": [now + 100, now - 1, now + 300]})
    by_jid = {job["jid"]: score for job, score in scheduled(r)}
    assert by_jid == {jids[0]: pytest.approx(now + 100, abs=1e-3), jids[2]: pytest.approx(now + 300, abs=1e-3)}
    assert [j["jid"] for j in queued(r)] == [jids[1]]


def test_push_bulk_refuses_a_jid_and_keeps_other_fields(client: Client, r: redis.Redis) -> None:
    jids = client.push_bulk({"class": "HardJob", "args": [[1], [2]], "jid": "f" * 24, "custom": {"x": 1}})
    jobs = queued(r)
    assert len(set(jids)) == 2 and "f" * 24 not in jids
    assert all(job["custom"] == {"x": 1} for job in jobs)


@pytest.mark.parametrize(("item", "error"), [
    ({"class": "X", "args": [1, 2]}, TypeError),
    ({"class": "X", "args": "abc"}, TypeError),
    ({"class": "X", "args": [[1], [2]], "at": [1.0]}, ValueError),
    ({"class": "X", "args": [[1], [object()]]}, TypeError),
])
def test_push_bulk_validation_stores_nothing(client: Client, r: redis.Redis, item: dict[str, Any],
                                             error: type[Exception]) -> None:
    with pytest.raises(error):
        client.push_bulk(item)
    assert r.dbsize() == 0


# --- raw pushes ---------------------------------------------------------------------------------------------


def test_push_keeps_unknown_fields_and_ruby_class_names(client: Client, r: redis.Redis) -> None:
    jid = client.push({"class": "Billing::HardJob", "args": [{"a": [1, None]}], "bid": "B1",
                       "cattr": {"tenant": 7}, "lock": "until_executed", "created_at": 1700000000.5})
    [job] = queued(r)
    assert job["jid"] == jid and job["class"] == "Billing::HardJob"
    assert (job["bid"], job["cattr"], job["lock"]) == ("B1", {"tenant": 7}, "until_executed")
    assert job["created_at"] == 1700000000.5


def test_push_keeps_a_given_jid(client: Client, r: redis.Redis) -> None:
    assert client.push({"class": "X", "args": [], "jid": "abc"}) == "abc"
    assert queued(r)[0]["jid"] == "abc"


def test_push_accepts_a_job_definition_or_class(client: Client, r: redis.Redis) -> None:
    client.push({"class": add, "args": [1, 2]})
    client.push({"class": Report, "args": [1], "queue": "default"})
    assert [j["class"] for j in queued(r)] == [add.name, f"{__name__}.Report"]


@pytest.mark.parametrize(("item", "message"), [
    ({"args": []}, "'class' must be a class name string"),
    ({"class": "", "args": []}, "'class' must be a class name string"),
    ({"class": 5, "args": []}, "'class' must be a class name string"),
    ({"class": "X"}, "'args' must be a list"),
    ({"class": "X", "args": (1,)}, "'args' must be a list"),
    ({"class": "X", "args": [datetime(2025, 1, 1)]}, "args[0]: datetime is not JSON-native"),
    ({"class": "X", "args": [], "queue": 5}, "'queue' must be a string"),
    ({"class": "X", "args": [], "tags": "a"}, "'tags' must be a list"),
    ({"class": "X", "args": [], "at": "tomorrow"}, "'at' must be epoch seconds"),
    ({"class": "X", "args": [], "at": True}, "'at' must be epoch seconds"),
    ({"class": "X", "args": [], "at": float("nan")}, "'at' must be a finite time"),
])
def test_push_validation_names_the_field_and_stores_nothing(client: Client, r: redis.Redis,
                                                            item: dict[str, Any], message: str) -> None:
    with pytest.raises((TypeError, ValueError)) as caught:
        client.push(item)
    assert message in str(caught.value)
    assert r.dbsize() == 0


def test_perform_async_refuses_non_json_args(client: Client, r: redis.Redis) -> None:
    with pytest.raises(TypeError, match=re.escape('args[1]["when"]: datetime is not JSON-native')):
        add.perform_async(1, {"when": datetime.now()})
    assert r.dbsize() == 0


def test_redis_errors_are_raised_not_dropped(client: Client, r: redis.Redis) -> None:
    r.set("queue:default", "not a list")
    with pytest.raises(redis.ResponseError):
        client.push({"class": "X", "args": []})
    with pytest.raises(redis.ResponseError):
        add.perform_bulk([(1, 2)])


def test_middleware_can_change_or_stop_a_push(redis_url: str, r: redis.Redis) -> None:
    def tag(job: dict[str, Any], call_next: Any) -> Any:
        return call_next({**job, "tenant": "t1"})

    def drop_odd(job: dict[str, Any], call_next: Any) -> Any:
        return None if job["args"][0] % 2 else call_next(job)

    c = Client(redis_url, middleware=[tag, drop_odd])
    assert c.push({"class": "X", "args": [1]}) is None
    jids = c.push_bulk({"class": "X", "args": [[1], [2], [4]]})
    assert len(jids) == 2 and [(j["args"], j["tenant"]) for j in queued(r)] == [([2], "t1"), ([4], "t1")]


# --- wake markers ---------------------------------------------------------------------------------------------


def test_wake_markers_are_capped(client: Client, r: redis.Redis) -> None:
    add.perform_async(1, 1)
    assert r.llen("pyq:wake:default") == 1
    add.perform_bulk([(i, i) for i in range(100)])
    for _ in range(40):
        add.perform_async(1, 1)
    assert r.llen("pyq:wake:default") == WAKE_CAP


# --- connection defaults -----------------------------------------------------------------------------------------


def test_default_url_reads_pyq_redis_url_then_redis_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PYQ_REDIS_URL", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)
    assert client_module.default_url() == "redis://localhost:6379/0"
    monkeypatch.setenv("REDIS_URL", "redis://r:1/2")
    assert client_module.default_url() == "redis://r:1/2"
    monkeypatch.setenv("PYQ_REDIS_URL", "redis://p:1/3")
    assert client_module.default_url() == "redis://p:1/3"


def test_default_client_uses_the_environment(monkeypatch: pytest.MonkeyPatch, redis_url: str,
                                             r: redis.Redis) -> None:
    monkeypatch.setenv("PYQ_REDIS_URL", redis_url)
    monkeypatch.setattr(client_module, "_default", None)
    monkeypatch.setattr(client_module, "_default_options", {})
    assert Client().url == redis_url
    add.perform_async(5, 6)
    assert queued(r)[0]["args"] == [5, 6]
    client_module.default_client().redis.close()


# --- resolving wire names -------------------------------------------------------------------------------------


def test_resolve_by_registry_and_by_import_path(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve("Orders::ChargeJob") is charge
    monkeypatch.delitem(_registry, add.name)
    assert resolve(add.name) is add
    assert resolve(f"{__name__}.Report") is Report._definition
    plain = resolve("json.dumps")
    assert plain.func is json.dumps and plain.name == "json.dumps"


@pytest.mark.parametrize("name", ["HardJob", "Billing::HardJob", "no_such_module.job", f"{__name__}.missing",
                                  f"{__name__}.JID"])
def test_resolve_unknown_names(name: str) -> None:
    with pytest.raises(UnknownJob):
        resolve(name)


def test_bulk_payloads_are_byte_for_byte_what_single_pushes_write(client, r):
    # Given the same job pushed once by push and many times by push_bulk (shared template)
    item = {"class": "Tpl::Job", "queue": "tpl", "retry": 3, "tags": ["x"], "extra": {"k": "é/ü"}}
    client.push({**item, "args": [0, "a"], "created_at": 1.5, "jid": "f" * 24})
    single = json.loads(r.lpop("queue:tpl"))
    jids = client.push_bulk({**item, "args": [[i, "a"] for i in range(3)], "created_at": 1.5})
    # Then every bulk payload equals the single one but for args and jid, keys in the same order
    raws = list(reversed(r.lrange("queue:tpl", 0, -1)))
    for i, raw in enumerate(raws):
        job = json.loads(raw)
        assert list(job) == list(single)
        assert {**job, "args": None, "jid": None, "enqueued_at": None} == \
               {**single, "args": None, "jid": None, "enqueued_at": None}
        assert job["args"] == [i, "a"] and job["jid"] == jids[i]
    assert len(set(jids)) == 3 and all(len(j) == 24 for j in jids)


def test_bulk_names_the_bad_argument_of_the_bad_job(client, r):
    with pytest.raises(TypeError, match=r'args\[1\]\[0\]\["when"\]: datetime'):
        client.push_bulk({"class": "Tpl::Job", "args": [[1], [{"when": datetime.now()}]]})
    assert r.dbsize() == 0
