"""api/sets.py: admin changes to the retry, dead and schedule sets, each atomic and at most once."""

from __future__ import annotations

import json
import threading

import pytest
import redis

from pyq.api import Api
from pyq.keys import Keys
from pyq.payload import dumps
from pyq.scripts import DeadLimits

NOW = 1_755_400_000.0


def failed(jid: str, **fields) -> str:
    return dumps({"class": "X", "args": [jid], "queue": "mail", "jid": jid, "retry": True, "retry_count": 3,
                  "created_at": NOW - 100, "failed_at": NOW - 90, "error_class": "E", "error_message": "m", **fields})


def queued(r: redis.Redis, queue: str = "mail") -> list[dict]:
    return [json.loads(raw) for raw in r.lrange(f"queue:{queue}", 0, -1)]


@pytest.mark.parametrize("name", ["retry", "dead"])
def test_retry_now_requeues_with_one_retry_given_back(r: redis.Redis, name: str) -> None:
    r.zadd(name, {failed("a", unknown={"kept": True}): NOW, failed("b"): NOW + 1})
    api = Api(r)
    entry = api.set_entries(name)[0]
    assert api.set_retry(name, entry, now_s=NOW + 5) is True
    [job] = queued(r)
    assert (job["jid"], job["retry_count"], job["enqueued_at"], job["unknown"]) == ("a", 2, NOW + 5, {"kept": True})
    assert job["error_class"] == "E" and job["created_at"] == NOW - 100
    assert [e.jid for e in api.set_entries(name)] == ["b"]
    assert r.sismember("queues", "mail") and r.llen("pyq:wake:mail") == 1
    assert api.set_retry(name, entry) is False and len(queued(r)) == 1  # already gone: nothing pushed


def test_retry_now_by_jid_keeps_sidekiq8_millisecond_style(r: redis.Redis) -> None:
    r.zadd("retry", {failed("ms", created_at=1755400000000, retry_count=0): NOW})
    assert Api(r).set_retry("retry", "ms", now_s=NOW) is True
    [job] = queued(r)
    assert (job["retry_count"], job["enqueued_at"]) == (-1, int(NOW * 1000))
    assert Api(r).set_retry("retry", "missing") is False


def test_scheduled_job_enqueued_now_keeps_its_count(r: redis.Redis) -> None:
    r.zadd("schedule", {dumps({"class": "X", "args": [], "jid": "s", "queue": "q", "retry_count": 1}): NOW + 99})
    assert Api(r).set_retry("schedule", "s", now_s=NOW) is True
    assert queued(r, "q")[0]["retry_count"] == 1 and r.zcard("schedule") == 0


def test_an_unreadable_entry_is_refused_and_kept(r: redis.Redis) -> None:
    r.zadd("dead", {b"garbage{": NOW})
    api = Api(r)
    with pytest.raises(ValueError, match="not a job"):
        api.set_retry("dead", api.set_entries("dead")[0])
    assert r.zcard("dead") == 1 and api.set_retry_all("dead") == 0 and r.zcard("dead") == 1


def test_two_admins_racing_on_one_entry_push_it_once(r: redis.Redis) -> None:
    r.zadd("retry", {failed(f"j{i}"): NOW + i for i in range(50)})
    api = Api(r)
    entries = api.set_entries("retry")
    results: list[int] = []

    def admin() -> None:
        conn = redis.Redis(connection_pool=r.connection_pool)
        results.append(sum(Api(conn).set_retry("retry", e) for e in entries))

    threads = [threading.Thread(target=admin) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert sum(results) == 50 and len(queued(r)) == 50 and r.zcard("retry") == 0
    assert sorted(job["jid"] for job in queued(r)) == sorted(f"j{i}" for i in range(50))


def test_retry_all_delete_and_clear(r: redis.Redis) -> None:
    r.zadd("retry", {failed(f"r{i}"): NOW + i for i in range(3)})
    r.zadd("dead", {failed(f"d{i}"): NOW + i for i in range(4)})
    api = Api(r)
    assert api.set_retry_all("retry") == 3 and r.zcard("retry") == 0 and len(queued(r)) == 3
    assert api.set_delete("dead", "d1") is True and api.set_delete("dead", "d1") is False
    assert api.set_delete("dead", api.set_entries("dead")[0]) is True
    assert api.set_clear("dead") == 2 and r.exists("dead") == 0 and api.set_clear("dead") == 0


def test_kill_moves_a_retry_entry_to_dead_and_trims(r: redis.Redis) -> None:
    r.zadd("retry", {failed("k"): NOW + 60})
    r.zadd("dead", {"ancient": NOW - 1000, "a": NOW - 3, "b": NOW - 2})
    api = Api(r)
    assert api.set_kill("k", now_s=NOW, dead=DeadLimits(timeout_s=500, max_jobs=3)) is True
    assert r.zcard("retry") == 0 and r.zrange("dead", 0, -1) == [b"b", failed("k").encode()]
    assert r.zscore("dead", failed("k")) == NOW
    assert api.set_kill("k", dead=DeadLimits(timeout_s=500, max_jobs=3)) is False


def test_namespaced_sets(r: redis.Redis) -> None:
    r.zadd("ns:retry", {failed("n"): NOW})
    api = Api(r, Keys("ns"))
    assert api.set_retry("retry", "n") is True
    assert r.llen("ns:queue:mail") == 1 and r.sismember("ns:queues", "mail") and r.exists("queue:mail") == 0
