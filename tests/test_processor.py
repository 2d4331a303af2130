"""processor.py: settling jobs, poison payloads in a real Worker, shutdown-caused errors, hooks."""

from __future__ import annotations

import json
import logging
import sys
import time
import types
from collections.abc import Iterator

import pytest
import redis

import pyq
from pool import running_worker, wait_until
from pyq import middleware, payload, scripts
from pyq.config import Config
from pyq.errors import Shutdown
from pyq.fetch import Acker, UnitOfWork
from pyq.keys import Keys
from pyq.processor import Processor, Settings
from pyq.scripts import DeadLimits

IDENTITY = "testhost:1:0123456789ab"
KEYS = Keys()
calls: list[object] = []


@pytest.fixture(autouse=True)
def _clean() -> Iterator[None]:
    calls.clear()
    saved = list(middleware.death_handlers)
    yield
    middleware.death_handlers[:] = saved


@pyq.job(name="Proc::Ok")
def ok(token: str) -> None:
    calls.append(token)


@pyq.job(name="Proc::Boom", backtrace=3)
def boom(token: str) -> None:
    raise ValueError(f"boom {token}")


@pyq.job(name="Proc::InnerTypeError")
def inner_type_error(n: int) -> None:
    return len(n)  # type: ignore[arg-type] - a TypeError raised inside the job


@pyq.job(name="Proc::Stopped")
def stopped() -> None:
    try:
        raise Shutdown()
    except Shutdown:
        raise RuntimeError("cleanup failed while stopping")  # noqa: B904


def _exhausted(job, exc):
    calls.append(("exhausted", job["jid"]))


def _discarded(job, exc):
    calls.append(("after_discard", job["jid"], type(exc).__name__))


@pyq.job(name="Proc::Payment", retry_on={ConnectionError: {"attempts": 2, "wait": 5}}, discard_on=(KeyError,),
         retries_exhausted=_exhausted, after_discard=_discarded)
def payment(kind: str) -> None:
    raise {"gateway": ConnectionError, "card": KeyError}[kind](kind)


class ClassJob(pyq.Job, name="Proc::ClassJob"):
    retry = 0

    def perform(self, x: int) -> None:
        raise ValueError(x)

    def retries_exhausted(self, job, exc) -> str:
        calls.append(("class hook", type(self).__name__, job["args"]))
        return "discard"

    def after_discard(self, job, exc) -> None:
        calls.append(("class after_discard", self.jid))


def make_processor(r: redis.Redis, **kwargs) -> Processor:
    return Processor(r, KEYS, IDENTITY, Acker(r, KEYS, IDENTITY), Settings.from_config(Config()), **kwargs)


def fetched(r: redis.Redis, raw: bytes | str, queue: str = "default") -> UnitOfWork:
    raw = raw.encode() if isinstance(raw, str) else raw
    r.rpush(KEYS.inflight(IDENTITY), raw)
    return UnitOfWork(queue, raw)


def process(r: redis.Redis, raw: bytes | str, processor: Processor | None = None) -> Processor:
    processor = processor or make_processor(r)
    ctx = processor.prepare(fetched(r, raw))
    if ctx is not None:
        processor.run(ctx)
    processor.acker.flush()
    return processor


def a_job(klass: str, args: list, **fields) -> str:
    return payload.dumps({"class": klass, "args": args, "queue": "default", "jid": payload.new_jid(),
                          "retry": True, "created_at": 1755400000.0, **fields})


def only(r: redis.Redis, key: str) -> dict:
    [raw] = r.zrange(key, 0, -1)
    return json.loads(raw)


# --- settling -------------------------------------------------------------------------------


def test_success_acks_and_counts(r: redis.Redis) -> None:
    process(r, a_job("Proc::Ok", ["a"]))
    assert calls == ["a"] and r.llen(KEYS.inflight(IDENTITY)) == 0
    assert (int(r.get("stat:processed")), r.get("stat:failed")) == (1, None)


def test_failure_moves_the_job_as_fetched_to_retry_with_error_fields(r: redis.Redis) -> None:
    def edit(ctx, call_next):
        ctx.job["edited_by_middleware"] = True
        return call_next()

    raw = a_job("Proc::Boom", ["x"], extra={"kept": 1}, backtrace=3)
    process(r, raw, make_processor(r, middleware=[edit]))
    entry = only(r, "retry")
    assert (entry["error_class"], entry["error_message"], entry["retry_count"]) == ("ValueError", "boom x", 0)
    assert entry["extra"] == {"kept": 1} and "edited_by_middleware" not in entry
    assert payload.decode_backtrace(entry["error_backtrace"])[0].endswith("in `boom'")
    assert r.llen(KEYS.inflight(IDENTITY)) == 0
    assert (int(r.get("stat:processed")), int(r.get("stat:failed"))) == (1, 1)


def test_a_type_error_inside_the_job_is_an_ordinary_retry(r: redis.Redis) -> None:
    process(r, a_job("Proc::InnerTypeError", [5]))
    assert only(r, "retry")["error_class"] == "TypeError" and r.zcard("dead") == 0


def test_an_error_caused_by_shutdown_puts_the_job_back_at_the_front_of_its_queue(r: redis.Redis) -> None:
    r.lpush("queue:default", "older")
    raw = a_job("Proc::Stopped", [])
    process(r, raw)
    assert r.llen(KEYS.inflight(IDENTITY)) == 0
    assert r.lrange("queue:default", 0, -1) == [b"older", raw.encode()]  # taken from the right: next
    assert (r.zcard("retry"), r.zcard("dead"), r.get("stat:processed")) == (0, 0, None)


def test_retry_on_discard_on_and_their_hooks(r: redis.Redis) -> None:
    died = []
    processor = make_processor(r, death_handlers=[lambda job, exc: died.append(job["jid"])])
    card = a_job("Proc::Payment", ["card"])
    process(r, card, processor)
    assert (r.zcard("retry"), r.zcard("dead"), died) == (0, 0, [])
    assert calls == [("after_discard", json.loads(card)["jid"], "KeyError")]
    process(r, a_job("Proc::Payment", ["gateway"]), processor)
    entry = only(r, "retry")
    assert entry["error_class"] == "ConnectionError" and r.zscore("retry", payload.dumps(entry)) > time.time() + 4
    r.zrem("retry", payload.dumps(entry))  # promoted, as the poller does
    process(r, payload.dumps(entry), processor)  # second and last attempt
    assert r.zcard("retry") == 0 and only(r, "dead")["retry_count"] == 1
    assert calls[-1] == ("exhausted", entry["jid"]) and died == [entry["jid"]]
    assert r.llen(KEYS.inflight(IDENTITY)) == 0


def test_class_job_hooks_are_bound_methods(r: redis.Redis) -> None:
    raw = a_job("Proc::ClassJob", [7], retry=0)
    process(r, raw)
    assert (r.zcard("retry"), r.zcard("dead")) == (0, 0)
    assert calls == [("class hook", "ClassJob", [7]), ("class after_discard", json.loads(raw)["jid"])]


def test_global_death_handlers_run_and_a_raising_one_is_contained(r: redis.Redis, caplog) -> None:
    @pyq.on_death
    def broken(job, exc):
        raise RuntimeError("handler bug")

    middleware.on_death(lambda job, exc: calls.append(("died", job["error_class"])))
    process(r, a_job("Proc::Boom", ["z"], retry=0))
    assert calls == [("died", "ValueError")] and r.zcard("dead") == 1
    assert "handler bug" in caplog.text


def test_dead_set_insert_trims_by_count_and_age(r: redis.Redis) -> None:
    now = time.time()
    r.zadd("dead", {"ancient": now - 1000, "old": now - 50, "newer": now - 40})
    settings = Settings.from_config(Config(dead_max_jobs=3, dead_timeout_s=100))
    processor = Processor(r, KEYS, IDENTITY, Acker(r, KEYS, IDENTITY), settings)
    process(r, a_job("Proc::Boom", ["1"], retry=0), processor)
    members = r.zrange("dead", 0, -1)
    assert b"ancient" not in members and b"old" not in members and len(members) == 2  # keeps max - 1 older


@pytest.mark.parametrize(("target", "retry_size", "dead_size"), [("retry", 1, 0), ("dead", 0, 1), ("discard", 0, 0)])
def test_fail_script_leaves_in_flight_and_stores_in_one_step(r: redis.Redis, target: str, retry_size: int,
                                                               dead_size: int) -> None:
    r.rpush(KEYS.inflight(IDENTITY), b"other", b"raw", b"raw")
    call = scripts.fail(KEYS, IDENTITY, raw=b"raw", target=target, score=950.5, job='{"jid":"x"}', now_s=1000.0,
                        dead=DeadLimits(timeout_s=100, max_jobs=10), day_ttl_s=60)
    keys = list(call.keys)
    assert call.run(r) == 1
    assert r.lrange(KEYS.inflight(IDENTITY), 0, -1) == [b"other", b"raw"]  # exactly one copy removed
    assert (r.zcard("retry"), r.zcard("dead")) == (retry_size, dead_size)
    assert [int(r.get(k)) for k in keys[3:]] == [1, 1, 1, 1] and 0 < r.ttl(keys[6]) <= 60
    r.delete(KEYS.inflight(IDENTITY))
    assert call.run(r) == 0  # not in flight (recovered meanwhile): stored anyway


# --- poison payloads in a real worker --------------------------------------------------------------

bad_module = types.ModuleType("pyq_test_bad_module")
bad_module.__getattr__ = lambda name: 1 / 0  # type: ignore[attr-defined] - raises on lookup


POISON = [
    ("invalid JSON", b'{"class": "Proc::Ok", "args": [', "dead", "pyq.errors.InvalidPayload", "not valid JSON"),
    ("not UTF-8", b'{"class":"\xff\xfe"}', "dead", "pyq.errors.InvalidPayload", "not valid JSON"),
    ("JSON array", b'["Proc::Ok", 1]', "dead", "pyq.errors.InvalidPayload", "JSON list, expected an object"),
    ("JSON string", b'"hello"', "dead", "pyq.errors.InvalidPayload", "JSON str"),
    ("no class", b'{"args":[1]}', "dead", "pyq.errors.InvalidPayload", "no 'class' string"),
    ("no args", b'{"class":"Proc::Ok"}', "dead", "pyq.errors.InvalidPayload", "no 'args' array"),
    ("args not a list", b'{"class":"Proc::Ok","args":{"a":1}}', "dead", "pyq.errors.InvalidPayload", "'args'"),
    ("deep nesting", b"[" * 100_000 + b"]" * 100_000, "dead", "pyq.errors.InvalidPayload", "recursion"),
    ("too many args", a_job("Proc::Ok", ["a", "b"]).encode(), "dead", "ArgumentError", "cannot take args"),
    ("missing args", a_job("Proc::Ok", []).encode(), "dead", "ArgumentError", "missing a required argument"),
    ("broken ActiveJob", a_job("ActiveJob::QueueAdapters::SidekiqAdapter::JobWrapper", ["x"],
                               wrapped="Proc::Ok").encode(), "dead", "pyq.errors.InvalidPayload", "ActiveJob"),
    ("unknown class", a_job("Nope::Missing", []).encode(), "retry", "pyq.errors.UnknownJob", "Nope::Missing"),
    ("import raises", a_job("pyq_test_bad_module.job", []).encode(), "retry", "ZeroDivisionError", "division"),
    ("NaN args", b'{"class":"Proc::Boom","args":[NaN],"jid":"abc"}', "retry", "pyq.errors.InvalidPayload",
     "cannot be written back"),
]


@pytest.mark.parametrize(("kind", "raw", "where", "error_class", "message"), POISON, ids=[p[0] for p in POISON])
def test_poison_payloads_are_kept_and_the_worker_runs_the_next_job(redis_url: str, r: redis.Redis, caplog, kind: str,
                                                                   raw: bytes, where: str, error_class: str,
                                                                   message: str,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyq_test_bad_module", bad_module)  # gone afterwards: other tests scan modules
    caplog.set_level(logging.INFO)
    # Given garbage written straight into queue:default, then a good job behind it
    r.lpush("queue:default", raw)
    r.lpush("queue:default", a_job("Proc::Ok", ["after"]))
    # When a real worker runs
    with running_worker(redis_url, IDENTITY) as worker:
        wait_until(lambda: calls == ["after"] and r.zcard(where) == 1)
        assert all(t.is_alive() for t in worker._threads.values())
    # Then the garbage sits in its set with a clear error, nothing is left in flight
    entry = only(r, where)
    assert entry["error_class"] == error_class and message in entry["error_message"]
    assert r.llen("queue:default") == 0 and r.llen(KEYS.inflight(IDENTITY)) == 0
    if entry["class"] == "pyq.InvalidPayload" and kind != "not UTF-8":
        assert entry["raw_payload"] == raw.decode()
    if kind == "not UTF-8":
        assert entry["raw_payload_base64"] == "eyJjbGFzcyI6Iv/+In0="
    assert any(getattr(rec, "jid", None) and rec.levelname in ("WARNING", "ERROR") for rec in caplog.records)
    assert int(r.get("stat:failed")) == 1
