"""Unique jobs: payload fields, the atomic lock-and-push, conflict strategies, server lock types."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import time
from types import SimpleNamespace
from typing import Any

import pytest
import redis

import pyq
from pyq import unique
from pyq.keys import Keys

K = Keys()


def item(lock: str = "until_executed", args: list[Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {"class": "Sync::User", "args": [7] if args is None else args, "lock": lock, **extra}


def queued(r: redis.Redis, queue: str = "default") -> list[dict[str, Any]]:
    return [json.loads(raw) for raw in r.lrange(f"queue:{queue}", 0, -1)]


def ctx_for(r: redis.Redis, job: dict[str, Any]) -> SimpleNamespace:
    return SimpleNamespace(job=job, raw=json.dumps(job).encode(), redis=r, keys=K, dead=None)


def lock_holders(r: redis.Redis, digest: str) -> list[bytes]:
    return r.hkeys(f"{digest}:LOCKED")


# --- client side -----------------------------------------------------------------------------------
def test_push_adds_the_gem_fields_and_locks_in_the_gem_layout(client: pyq.Client, r: redis.Redis) -> None:
    # Given a unique job pushed once
    jid = client.push(item(args=[7, "x"]))
    # Then the payload carries the gem's fields, in the gem's order, with the digest of its lock_args
    job = queued(r)[0]
    fields = [k for k in job if k.startswith("lock")]
    assert fields == ["lock", "lock_timeout", "lock_ttl", "lock_prefix", "lock_args", "lock_digest"]
    assert (job["lock_timeout"], job["lock_ttl"], job["lock_args"]) == (0, None, [7, "x"])
    digest = job["lock_digest"]
    assert digest == unique.digest({"class": "Sync::User", "queue": "default", "lock_args": [7, "x"]})
    # And the lock is held in the gem's keys, without expiry (no lock_ttl)
    assert r.get(digest) == jid.encode()
    assert lock_holders(r, digest) == [jid.encode()]
    assert abs(r.zscore("uniquejobs:digests", digest) - time.time()) < 5
    assert r.pttl(f"{digest}:LOCKED") == -1


def test_a_duplicate_is_dropped_and_returns_no_jid(client: pyq.Client, r: redis.Redis) -> None:
    first = client.push(item())
    assert client.push(item()) is None
    assert client.push(item(args=[8])) is not None  # other args, other digest
    assert [j["jid"] for j in queued(r)][-1] == first
    assert r.llen("queue:default") == 2


def test_unique_across_queues_and_workers_drop_queue_and_class(client: pyq.Client, r: redis.Redis) -> None:
    assert client.push(item(queue="a", unique_across_queues=True))
    assert client.push(item(queue="b", unique_across_queues=True)) is None
    assert client.push(item(queue="c")) is not None  # queue is part of its digest
    assert client.push({**item(unique_across_workers=True), "class": "A"})
    assert client.push({**item(unique_across_workers=True), "class": "B"}) is None


def test_lock_args_policy_picks_the_arguments_that_count(client: pyq.Client, r: redis.Redis) -> None:
    @pyq.job(name="Sync::ByUser", lock="until_executed", lock_args=lambda args: [args[0]])
    def sync_user(user_id: int, reason: str) -> None: ...

    assert sync_user.perform_async(1, "signup")
    assert sync_user.perform_async(1, "login") == ""
    assert sync_user.perform_async(2, "login")
    assert [j["lock_args"] for j in queued(r)] == [[2], [1]]


def test_lock_args_policy_must_return_a_list(client: pyq.Client, r: redis.Redis) -> None:
    @pyq.job(name="Sync::Bad", lock="until_executed", lock_args=lambda args: args[0])
    def bad(x: int) -> None: ...

    with pytest.raises(TypeError, match="lock_args must return a list"):
        bad.perform_async(1)
    assert r.keys("*") == []


def test_scheduled_lock_ttl_includes_the_delay(client: pyq.Client, r: redis.Redis) -> None:
    # Given a job with lock_ttl 60 s scheduled 100 s ahead
    at_s = time.time() + 100
    client.push(item(lock_ttl=60, at=at_s))
    # Then lock_ttl covers the wait, the lock keys expire then, and the digest is scored by run time
    [(raw, _)] = r.zrange("schedule", 0, -1, withscores=True)
    job = json.loads(raw)
    assert job["lock_ttl"] in (159, 160, 161)
    assert 158_000 < r.pttl(f"{job['lock_digest']}:LOCKED") <= 161_000
    assert r.pttl(job["lock_digest"]) > 158_000
    assert r.zscore("uniquejobs:digests", job["lock_digest"]) == pytest.approx(at_s, abs=1e-3)
    assert client.push(item(lock_ttl=60, at=at_s + 5)) is None


@pytest.mark.slow
def test_lock_ttl_expiry_frees_the_digest(client: pyq.Client, r: redis.Redis) -> None:
    assert client.push(item(lock="until_expired", lock_ttl=1))
    assert client.push(item(lock="until_expired", lock_ttl=1)) is None
    time.sleep(1.1)
    assert client.push(item(lock="until_expired", lock_ttl=1))
    assert r.zcard("uniquejobs:expiring_digests") == 1


def test_bad_lock_options_raise_and_write_nothing(client: pyq.Client, r: redis.Redis) -> None:
    with pytest.raises(ValueError, match="unknown lock 'until_lunch'"):
        client.push(item(lock="until_lunch"))
    with pytest.raises(ValueError, match="unknown on_conflict 'shrug'"):
        client.push(item(on_conflict="shrug"))
    with pytest.raises(ValueError, match="lock_ttl must be seconds"):
        client.push(item(lock_ttl="soon"))
    assert r.keys("*") == []


def test_bulk_push_locks_each_job(client: pyq.Client, r: redis.Redis) -> None:
    jids = client.push_bulk({"class": "Sync::User", "lock": "until_executed", "args": [[1], [2], [1], [3], [2]]})
    assert len(jids) == 3
    assert sorted(j["args"][0] for j in queued(r)) == [1, 2, 3]


# --- conflict strategies ------------------------------------------------------------------------------
def test_raise_names_the_digest(client: pyq.Client, r: redis.Redis) -> None:
    first = client.push(item(on_conflict="raise"))
    with pytest.raises(unique.LockConflict, match=r"uniquejobs:[0-9a-f]{32} is locked by jid " + first):
        client.push(item(on_conflict="raise"))
    assert r.llen("queue:default") == 1


def test_reject_sends_the_duplicate_to_dead(client: pyq.Client, r: redis.Redis) -> None:
    client.push(item(on_conflict="reject"))
    assert client.push(item(on_conflict="reject")) is None
    [dead] = [json.loads(raw) for raw in r.zrange("dead", 0, -1)]
    assert dead["class"] == "Sync::User" and dead["lock"] == "until_executed"
    assert r.llen("queue:default") == 1


def test_replace_swaps_the_queued_holder_for_the_new_job(client: pyq.Client, r: redis.Redis) -> None:
    old = client.push(item(on_conflict="replace", args=[7], tags=["old"]))
    new = client.push(item(on_conflict="replace", args=[7], tags=["new"]))
    assert new and new != old
    assert [j["tags"] for j in queued(r)] == [["new"]]
    assert lock_holders(r, queued(r)[0]["lock_digest"]) == [new.encode()]


def test_replace_swaps_a_scheduled_holder(client: pyq.Client, r: redis.Redis) -> None:
    client.push(item(on_conflict="replace", at=time.time() + 60))
    new = client.push(item(on_conflict="replace"))
    assert r.zcard("schedule") == 0
    assert [j["jid"] for j in queued(r)] == [new]


def test_replace_without_a_found_holder_drops_the_job(client: pyq.Client, r: redis.Redis) -> None:
    # The holder is running (not in a queue or set): nothing to replace
    first = client.push(item(on_conflict="replace"))
    r.delete("queue:default")
    assert client.push(item(on_conflict="replace")) is None
    assert lock_holders(r, unique.digest({"class": "Sync::User", "queue": "default", "lock_args": [7]})) == [
        first.encode()]


def test_reschedule_pushes_a_copy_five_seconds_later(client: pyq.Client, r: redis.Redis) -> None:
    first = client.push(item(on_conflict="reschedule"))
    again = client.push(item(on_conflict="reschedule"))
    assert again and again != first
    [(raw, score)] = r.zrange("schedule", 0, -1, withscores=True)
    assert json.loads(raw)["jid"] == again
    assert score == pytest.approx(time.time() + unique.RESCHEDULE_IN_S, abs=1)
    assert r.llen("queue:default") == 1


# --- server side ------------------------------------------------------------------------------------------
def pushed(client: pyq.Client, r: redis.Redis, lock: str, **extra: Any) -> dict[str, Any]:
    jid = client.push(item(lock=lock, **extra))
    return next(j for j in queued(r, extra.get("queue", "default")) if j["jid"] == jid)


def boom() -> None:
    raise RuntimeError("boom")


def test_no_lock_field_costs_nothing() -> None:
    ctx = SimpleNamespace(job={"class": "X", "args": []}, raw=b"", redis=None, keys=K, dead=None)
    assert unique.server_middleware(ctx, lambda: 42) == 42


def test_until_executing_releases_before_the_run(client: pyq.Client, r: redis.Redis) -> None:
    job = pushed(client, r, "until_executing")
    digest = job["lock_digest"]
    seen: dict[str, Any] = {}

    def run() -> str:
        seen["holders"] = lock_holders(r, digest)
        seen["dup"] = client.push(item(lock="until_executing"))
        return "ok"

    assert unique.server_middleware(ctx_for(r, job), run) == "ok"
    assert seen["holders"] == [] and seen["dup"]
    # The release left the gem's wake-up token for blocked Ruby lockers
    assert r.lrange(f"{digest}:QUEUED", 0, -1) == [b"1"] and 0 < r.pttl(f"{digest}:QUEUED") <= 5000


def test_until_executing_locks_again_when_the_run_fails(client: pyq.Client, r: redis.Redis) -> None:
    job = pushed(client, r, "until_executing")
    with pytest.raises(RuntimeError):
        unique.server_middleware(ctx_for(r, job), boom)
    assert lock_holders(r, job["lock_digest"]) == [job["jid"].encode()]


def test_until_executed_holds_during_the_run_and_releases_after_success(client: pyq.Client, r: redis.Redis) -> None:
    job = pushed(client, r, "until_executed")
    digest = job["lock_digest"]
    during = unique.server_middleware(ctx_for(r, job), lambda: lock_holders(r, digest))
    assert during == [job["jid"].encode()]
    assert r.exists(digest, f"{digest}:LOCKED") == 0
    assert r.zscore("uniquejobs:digests", digest) is None


def test_until_executed_keeps_the_lock_after_a_failure(client: pyq.Client, r: redis.Redis) -> None:
    job = pushed(client, r, "until_executed")
    with pytest.raises(RuntimeError):
        unique.server_middleware(ctx_for(r, job), boom)
    assert lock_holders(r, job["lock_digest"]) == [job["jid"].encode()]
    assert client.push(item()) is None


def test_until_executed_skips_a_job_whose_lock_another_job_holds(client: pyq.Client, r: redis.Redis) -> None:
    job = pushed(client, r, "until_executed")
    intruder = {**job, "jid": "f" * 24}
    ran: list[int] = []
    assert unique.server_middleware(ctx_for(r, intruder), lambda: ran.append(1)) is None
    assert ran == [] and lock_holders(r, job["lock_digest"]) == [job["jid"].encode()]


def test_until_expired_is_never_released_by_the_run(client: pyq.Client, r: redis.Redis) -> None:
    job = pushed(client, r, "until_expired", lock_ttl=30)
    unique.server_middleware(ctx_for(r, job), lambda: None)
    assert lock_holders(r, job["lock_digest"]) == [job["jid"].encode()]
    assert r.zscore("uniquejobs:expiring_digests", job["lock_digest"]) > time.time()


def test_while_executing_takes_no_client_lock_and_runs_one_at_a_time(
        client: pyq.Client, r: redis.Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(unique.server, "RUN_LOCK_MIN_WAIT_S", 0.05)
    first, second = pushed(client, r, "while_executing"), pushed(client, r, "while_executing")
    assert first["jid"] != second["jid"] and r.llen("queue:default") == 2
    run_digest = first["lock_digest"] + ":RUN"
    inner: list[Any] = []

    def run_first() -> None:
        inner.append(lock_holders(r, run_digest))
        inner.append(unique.server_middleware(ctx_for(r, second), lambda: "second ran"))

    unique.server_middleware(ctx_for(r, first), run_first)
    assert inner == [[first["jid"].encode()], None]
    assert r.exists(f"{run_digest}:LOCKED") == 0
    assert unique.server_middleware(ctx_for(r, second), lambda: "second ran") == "second ran"


def test_while_executing_releases_after_a_failure(client: pyq.Client, r: redis.Redis) -> None:
    job = pushed(client, r, "while_executing")
    with pytest.raises(RuntimeError):
        unique.server_middleware(ctx_for(r, job), boom)
    assert r.exists(f"{job['lock_digest']}:RUN:LOCKED") == 0


@pytest.mark.parametrize("strategy", ["raise", "reject", "reschedule"])
def test_while_executing_server_strategies(client: pyq.Client, r: redis.Redis, monkeypatch: pytest.MonkeyPatch,
                                           strategy: str) -> None:
    monkeypatch.setattr(unique.server, "RUN_LOCK_MIN_WAIT_S", 0.05)
    holder = pushed(client, r, "while_executing", on_conflict={"client": "log", "server": strategy})
    other = {**holder, "jid": "e" * 24}
    with pytest.raises(unique.LockConflict) if strategy == "raise" else _no_error():
        unique.server_middleware(ctx_for(r, holder), lambda: unique.server_middleware(ctx_for(r, other), boom))
    if strategy == "reject":
        assert json.loads(r.zrange("dead", 0, -1)[0])["jid"] == other["jid"]
    if strategy == "reschedule":
        assert json.loads(r.zrange("schedule", 0, -1)[0])["lock_digest"] == holder["lock_digest"]


class _no_error:  # noqa: N801 - a context manager used like pytest.raises
    def __enter__(self) -> None: ...

    def __exit__(self, *exc: Any) -> None: ...


def test_until_and_while_executing_swaps_the_client_lock_for_a_run_lock(client: pyq.Client, r: redis.Redis) -> None:
    job = pushed(client, r, "until_and_while_executing")
    digest = job["lock_digest"]
    assert client.push(item(lock="until_and_while_executing")) is None
    seen: list[Any] = []

    def run() -> None:
        seen.append((lock_holders(r, digest), lock_holders(r, digest + ":RUN")))
        seen.append(client.push(item(lock="until_and_while_executing")))

    unique.server_middleware(ctx_for(r, job), run)
    assert seen[0] == ([], [job["jid"].encode()]) and seen[1]
    assert r.exists(f"{digest}:RUN:LOCKED") == 0


def test_until_and_while_executing_locks_again_after_a_failure(client: pyq.Client, r: redis.Redis) -> None:
    job = pushed(client, r, "until_and_while_executing")
    with pytest.raises(RuntimeError):
        unique.server_middleware(ctx_for(r, job), boom)
    assert lock_holders(r, job["lock_digest"]) == [job["jid"].encode()]
    assert r.exists(f"{job['lock_digest']}:RUN:LOCKED") == 0


def test_async_jobs_release_after_the_awaited_run(client: pyq.Client, r: redis.Redis) -> None:
    job = pushed(client, r, "until_executed")
    digest = job["lock_digest"]

    async def body() -> list[bytes]:
        await asyncio.sleep(0)
        return lock_holders(r, digest)

    result = unique.server_middleware(ctx_for(r, job), body)
    assert lock_holders(r, digest) == [job["jid"].encode()]  # not yet run
    assert asyncio.run(result) == [job["jid"].encode()]
    assert lock_holders(r, digest) == []


def test_a_lock_is_released_only_by_its_holder(client: pyq.Client, r: redis.Redis) -> None:
    job = pushed(client, r, "until_executing")
    stranger = {**job, "jid": "d" * 24}
    unique.server_middleware(ctx_for(r, stranger), lambda: None)
    assert lock_holders(r, job["lock_digest"]) == [job["jid"].encode()]


def test_on_death_deletes_both_key_families(client: pyq.Client, r: redis.Redis) -> None:
    job = pushed(client, r, "until_and_while_executing")
    digest = job["lock_digest"]
    r.hset(f"{digest}:RUN:LOCKED", "x", "1")
    r.set(f"{digest}:RUN", "x")
    r.zadd("uniquejobs:digests", {f"{digest}:RUN": 1})
    unique.on_death(r, K, job)
    assert r.keys("uniquejobs:*") == []
    unique.on_death(r, K, {"class": "X", "args": []})  # no lock: nothing to do


def test_release_for_recovery_frees_the_run_lock_and_relocks_the_queued_job(client: pyq.Client,
                                                                              r: redis.Redis) -> None:
    # Given a job killed mid-run: client lock released, run lock held
    job = pushed(client, r, "until_and_while_executing")
    digest = job["lock_digest"]
    assert unique.Lock(r, K, job).release()
    assert unique.Lock(r, K, job, ":RUN").take()[0]
    # When recovery pushes it back
    unique.release_for_recovery(r, K, job)
    # Then the run lock is free and the queued job holds its client lock again
    assert r.exists(f"{digest}:RUN:LOCKED") == 0
    assert lock_holders(r, digest) == [job["jid"].encode()]


# --- races ------------------------------------------------------------------------------------------------
def _enqueue_many(url: str, count: int, start: Any, results: Any) -> None:
    c = pyq.Client(url)
    start.wait(10)
    won = sum(1 for _ in range(count) if c.push(item(args=["race"])))
    results.put(won)


def test_concurrent_enqueues_from_many_processes_accept_exactly_one(client: pyq.Client, r: redis.Redis) -> None:
    # Given 4 processes each pushing the same unique job 250 times, released together
    ctx = multiprocessing.get_context("fork")
    start, results = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_enqueue_many, args=(client.url, 250, start, results)) for _ in range(4)]
    try:
        for p in procs:
            p.start()
        start.set()
        won = [results.get(timeout=30) for _ in procs]
    finally:
        for p in procs:
            p.join(5)
            if p.is_alive():
                p.kill()
                p.join()
    # Then exactly one of the 1,000 enqueues won
    assert sum(won) == 1
    assert r.llen("queue:default") == 1
