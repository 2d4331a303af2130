"""Batches (Sidekiq Pro's model): real pools and worker processes, a real Redis, SIGKILLs and races."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
import redis

import batchjobs
import pyq
from pool import child_pids, fetch_order, running_pool, wait_until
from pyq import Batch, Client, NoSuchBatch, scripts
from pyq.keys import Keys
from rubyhelp import requires_ruby, sidekiq_server

POOL = {"require": ["batchjobs"], "processes": 2, "concurrency": 10, "average_scheduled_poll_interval": 0.2,
        "poll_interval_average": 0.2, "heartbeat_interval": 1}


def fired(r: redis.Redis, tag: str) -> list[dict[str, Any]]:
    """The runs of a callback job recorded under ``tag``, one entry per run."""
    return [json.loads(x) for x in r.lrange(f"test:fired:{tag}", 0, -1)]


def fires(r: redis.Redis, tag: str, event: str) -> list[dict[str, Any]]:
    """The pushes of ``event``'s callback. A job run again after its worker was killed is the same push
    (the same payload: jid and enqueued_at); a second push of the callback has its own enqueued_at."""
    firsts: dict[tuple[str, Any], dict[str, Any]] = {}
    for run in fired(r, tag):
        if run["event"] == event:
            firsts.setdefault((run["jid"], run["enqueued_at"]), run)
    return list(firsts.values())


def runs(r: redis.Redis, tag: str, event: str) -> list[dict[str, Any]]:
    """Every run of ``event``'s callback (where no worker is killed, one push is one run)."""
    return [run for run in fired(r, tag) if run["event"] == event]


def flaky_batch(client: Client, n: int, flaky: int, *, seconds: float = 0.0, tag: str = "b") -> Batch:
    """A batch of ``n`` jobs, the first ``flaky`` of them failing twice before they succeed."""
    work = batchjobs.batch_work.set(client=client)
    with Batch(f"{n} jobs", on_complete=(batchjobs.batch_callback, [tag]),
               on_success=(batchjobs.batch_callback, [tag]), client=client) as batch:
        work.perform_bulk([[i, 2 if i < flaky else 0, seconds] for i in range(n)])
    return batch


def test_a_batch_of_1000_fires_complete_once_after_every_job_ran_and_success_once_after_the_last_retry(
        tmp_path: Path, redis_url: str, r: redis.Redis, client: Client) -> None:
    with running_pool(tmp_path, redis_url, **POOL):
        batch = flaky_batch(client, 1000, 10)
        wait_until(lambda: fires(r, "b", "success"), timeout=60)
        time.sleep(0.5)  # a second push of either callback would have run by now
    complete, success = runs(r, "b", "complete"), runs(r, "b", "success")
    assert len(complete) == 1 and len(success) == 1
    # on_complete: every job had run once, the 10 flaky ones had failed and not yet succeeded
    assert complete[0]["attempted"] == 1000
    assert complete[0]["failures"] == 10 and complete[0]["pending"] == 10
    # on_success: after the last retry succeeded
    assert success[0]["succeeded"] == 1000 and success[0]["pending"] == 0 and success[0]["failures"] == 0
    assert complete[0]["at"] <= success[0]["at"]
    assert all(int(r.get(f"test:attempts:{i}")) == 3 for i in range(10))
    status = Batch.status(batch.bid, client=client)
    assert (status.total, status.pending, status.failures, status.failed_jids) == (1000, 0, 0, [])
    assert status.complete and status.success and not status.is_open
    assert status.description == "1000 jobs" and status.created_at <= status.complete_at <= status.success_at


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_callbacks_fire_once_while_a_worker_is_sigkilled_every_second(tmp_path: Path, redis_url: str,
                                                                      r: redis.Redis, client: Client) -> None:
    with running_pool(tmp_path, redis_url, **POOL) as proc:
        wait_until(lambda: len(child_pids(proc.pid)) == 2)
        batch = flaky_batch(client, 1000, 10, seconds=0.06)
        kills, deadline = 0, time.monotonic() + 120
        while not fires(r, "b", "success") and time.monotonic() < deadline:
            time.sleep(1)
            workers = child_pids(proc.pid)
            if workers and r.scard("test:attempted") > 0:
                os.kill(workers[kills % len(workers)], signal.SIGKILL)
                kills += 1
        wait_until(lambda: fires(r, "b", "success"), timeout=30)
        time.sleep(1)
    print(f"\n{kills} SIGKILLs of a worker while the batch ran")
    assert kills >= 3, "the run ended before the workers were killed a few times"
    complete, success = fires(r, "b", "complete"), fires(r, "b", "success")
    assert len(complete) == 1 and len(success) == 1, (complete, success)
    assert complete[0]["attempted"] == 1000
    assert success[0]["succeeded"] == 1000
    status = Batch.status(batch.bid, client=client)
    assert (status.pending, status.failures, status.total) == (0, 0, 1000)
    assert r.zcard("dead") == 0 and r.zcard("retry") == 0


def test_a_nested_batch_counts_for_its_parent_which_waits_for_its_callbacks(
        tmp_path: Path, redis_url: str, r: redis.Redis, client: Client) -> None:
    with running_pool(tmp_path, redis_url, **POOL):
        with Batch("parent", on_complete=(batchjobs.batch_callback, ["parent"]),
                   on_success=(batchjobs.batch_callback, ["parent"]), client=client) as parent:
            batchjobs.batch_fan_out.set(client=client).perform_async("n", 20)
        wait_until(lambda: fires(r, "parent", "success"), timeout=30)
        time.sleep(0.5)
    child_success = runs(r, "n-child", "success")
    assert len(child_success) == 1 and child_success[0]["succeeded"] == 20
    assert len(runs(r, "parent", "success")) == 1 and len(runs(r, "parent", "complete")) == 1
    # the parent fired only after the child's own callback job had run, as a member of the parent
    assert child_success[0]["in_batch"] == parent.bid
    assert fires(r, "parent", "success")[0]["at"] >= child_success[0]["at"]
    child = Batch.status(child_success[0]["bid"], client=client)
    assert child.parent == parent.bid and child.success and child.total == 20
    status = Batch.status(parent.bid, client=client)
    assert status.kids == 0 and status.success
    assert status.total == 2  # the fan-out job and the child's success callback


def test_a_job_of_a_batch_adds_jobs_to_it_and_success_waits_for_them(
        tmp_path: Path, redis_url: str, r: redis.Redis, client: Client) -> None:
    with running_pool(tmp_path, redis_url, **POOL):
        with Batch(on_success=(batchjobs.batch_callback, ["more"]), client=client) as batch:
            batchjobs.batch_adds_more.set(client=client).perform_async(30)
        wait_until(lambda: fires(r, "more", "success"), timeout=30)
    assert [run["succeeded"] for run in runs(r, "more", "success")] == [30]
    assert Batch.status(batch.bid, client=client).total == 31


def test_a_job_that_dies_fires_on_death_once_and_complete_but_never_success(
        tmp_path: Path, redis_url: str, r: redis.Redis, client: Client) -> None:
    callback = (batchjobs.batch_callback, ["d"])
    with running_pool(tmp_path, redis_url, **POOL):
        with Batch(on_complete=callback, on_success=callback, on_death=callback, client=client) as batch:
            batchjobs.batch_work.set(client=client).perform_bulk([[i, 0] for i in range(5)])
            dying = batchjobs.batch_dies.set(client=client, retry=0).perform_async(99)
            batchjobs.batch_dies.set(client=client, retry=0).perform_async(98)
        wait_until(lambda: fires(r, "d", "death") and fires(r, "d", "complete"), timeout=30)
        time.sleep(1.0)
    assert len(runs(r, "d", "death")) == 1 and len(runs(r, "d", "complete")) == 1
    assert runs(r, "d", "success") == []
    status = Batch.status(batch.bid, client=client)
    assert status.complete and not status.success and status.death_at is not None
    assert (status.pending, status.failures, status.total) == (2, 2, 7)
    assert dying in status.failed_jids and dying in status.dead_jids and len(status.dead_jids) == 2


def test_a_success_callback_reads_its_jobs_results(tmp_path: Path, redis_url: str, r: redis.Redis,
                                                  client: Client) -> None:
    with running_pool(tmp_path, redis_url, **POOL):
        with Batch(on_success=(batchjobs.batch_sum_results, ["sq"]), client=client):
            batchjobs.batch_result.set(client=client).perform_bulk([[i] for i in range(50)])
        wait_until(lambda: r.get("test:sum:sq") is not None, timeout=30)
    assert int(r.get("test:results:sq")) == 50
    assert int(r.get("test:sum:sq")) == sum(i * i for i in range(50))


def test_a_batch_is_held_open_while_its_block_pushes(tmp_path: Path, redis_url: str, r: redis.Redis,
                                                     client: Client) -> None:
    with running_pool(tmp_path, redis_url, **POOL):
        with Batch(on_success=(batchjobs.batch_callback, ["open"]), client=client) as batch:
            batchjobs.batch_work.set(client=client).perform_async(1, 0)
            # its only job finishes while the block is still open: nothing fires yet
            wait_until(lambda: r.sismember("test:succeeded", 1) and Batch.status(batch.bid, client=client).pending == 0)
            time.sleep(0.3)
            assert Batch.status(batch.bid, client=client).is_open and not Batch.status(batch.bid, client=client).success
            batchjobs.batch_work.set(client=client).perform_async(2, 0)
        wait_until(lambda: fires(r, "open", "success"), timeout=30)
    assert [run["succeeded"] for run in runs(r, "open", "success")] == [2]


def test_an_empty_batch_succeeds_when_its_block_ends(r: redis.Redis, client: Client) -> None:
    with Batch(on_complete=(batchjobs.batch_callback, ["e"]), on_success=(batchjobs.batch_callback, ["e"]),
               callback_queue="callbacks", client=client) as batch:
        pass
    status = Batch.status(batch.bid, client=client)
    assert status.complete and status.success and status.total == 0
    queued = [json.loads(raw) for raw in r.lrange("queue:callbacks", 0, -1)]
    assert sorted(job["batch_callback"]["event"] for job in queued) == ["complete", "success"]
    assert all(job["class"] == "BatchCallback" and job["args"] == ["e"] and "enqueued_at" in job for job in queued)


def test_jobs_pushed_in_a_batch_carry_its_bid_as_sidekiq_pro_payloads_do(r: redis.Redis, client: Client) -> None:
    with Batch(client=client) as batch:
        one = batchjobs.batch_work.set(client=client).perform_async(1, 0)
        many = batchjobs.batch_work.set(client=client).perform_bulk([[i, 0] for i in range(3)])
        later = batchjobs.batch_work.set(client=client).perform_in(60, 9, 0)
    plain = batchjobs.batch_work.set(client=client).perform_async(5, 0)
    queued = {json.loads(raw)["jid"]: json.loads(raw) for raw in r.lrange("queue:default", 0, -1)}
    assert all(queued[jid]["bid"] == batch.bid for jid in [one, *many])
    assert "bid" not in queued[plain]
    assert json.loads(r.zrange("schedule", 0, -1)[0])["bid"] == batch.bid
    assert r.smembers(f"b-{batch.bid}-jids") == {j.encode() for j in [one, *many, later]}
    assert Batch.status(batch.bid, client=client).total == 5


def test_a_unique_job_whose_lock_is_taken_does_not_join_the_batch(r: redis.Redis, client: Client) -> None:
    unique = pyq.job(name="BatchUnique", lock="until_executed")(lambda i: None).set(client=client)
    first = unique.perform_async(1)
    with Batch(client=client) as batch:
        assert not unique.perform_async(1)  # the lock is taken: not pushed
        second = unique.perform_async(2)
    assert first and second
    assert r.smembers(f"b-{batch.bid}-jids") == {second.encode()}
    assert Batch.status(batch.bid, client=client).total == 1


def test_a_batch_and_every_key_of_it_expire(r: redis.Redis, client: Client) -> None:
    with Batch(expires_in=2, client=client) as batch:
        batchjobs.batch_dies.set(client=client).perform_async(1)
    keys = Keys()
    raw = r.rpoplpush("queue:default", "pyq:inflight:test:1:x")
    scripts.fail(keys, "test:1:x", raw=raw, target="dead", score=time.time(), job=raw.decode(), now_s=time.time(),
                 dead=scripts.DeadLimits(9999, 9999), bid=batch.bid, jid=json.loads(raw)["jid"]).run(r)
    names = [keys.batch(batch.bid), keys.batch_jids(batch.bid), keys.batch_failed(batch.bid),
             keys.batch_died(batch.bid)]
    assert all(0 < r.ttl(name) <= 3 for name in names), [r.ttl(n) for n in names]
    assert Batch.list(client)[0] == 1
    wait_until(lambda: not any(r.exists(name) for name in names), timeout=5)
    with pytest.raises(NoSuchBatch):
        Batch.status(batch.bid, client=client)
    assert Batch.list(client) == (0, [])
    with pytest.raises(NoSuchBatch), Batch.reopen(batch.bid, client=client):
        pass


def test_a_job_buried_for_crashing_its_workers_dies_in_its_batch(r: redis.Redis, client: Client) -> None:
    with Batch(on_death=(batchjobs.batch_callback, ["crash"]), callback_queue="callbacks", client=client) as batch:
        batchjobs.batch_work.set(client=client).perform_async(1, 0)
    keys, identity = Keys(), "gone:1:abc"
    raw = r.rpoplpush("queue:default", keys.inflight(identity))
    r.sadd(keys.inflight_owners, identity)
    scripts.recover(keys, identity, now_s=time.time(), stale_after_s=0, max_crashes=1, crash_ttl_s=60,
                    dead=scripts.DeadLimits(9999, 9999)).run(r)
    status = Batch.status(batch.bid, client=client)
    assert status.dead_jids == [json.loads(raw)["jid"]] and status.complete and not status.success
    assert [json.loads(x)["batch_callback"]["event"] for x in r.lrange("queue:callbacks", 0, -1)] == ["death"]


def test_a_callback_must_be_a_job_with_arguments_it_accepts(client: Client) -> None:
    with pytest.raises(TypeError):
        Batch(on_success=(batchjobs.batch_callback, ["a", "b", "c"]), client=client).__enter__()
    with pytest.raises(ValueError):
        Batch(expires_in=0, client=client)


# --- two processes settling the last two jobs of a batch at the same instant ----------------------------

ROUNDS = 300


def _settle_side(redis_url: str, side: int, rounds: list[tuple[str, str, str, str]], barrier: Any) -> None:
    """One racer: for each round, wait at the barrier, then ack (or fail) its job of that round's batch."""
    conn, keys = redis.Redis.from_url(redis_url), Keys()
    identity = f"racer:{side}:x"
    for bid, jid_a, jid_b, outcome_b in rounds:
        jid = jid_a if side == 0 else jid_b
        barrier.wait()
        if side == 1 and outcome_b == "failed":
            scripts.fail(keys, identity, raw=b"-", target="discard", score=time.time(), job="{}", now_s=time.time(),
                         dead=scripts.DeadLimits(9999, 9999), bid=bid, jid=jid).run(conn)
        else:
            scripts.ack(keys, identity, batch_members=[(bid, jid, "succeeded")], raws=[b"-"]).run(conn)


def test_two_processes_finishing_the_last_two_jobs_at_once_fire_each_callback_once(
        redis_url: str, r: redis.Redis, client: Client) -> None:
    rounds = []
    work = batchjobs.batch_work.set(client=client, queue="nobody")
    for i in range(ROUNDS):
        with Batch(on_complete=(batchjobs.batch_callback, ["race"]), on_success=(batchjobs.batch_callback, ["race"]),
                   callback_queue="callbacks", client=client) as batch:
            jid_a, jid_b = work.perform_bulk([[1, 0], [2, 0]])
        rounds.append((batch.bid, jid_a, jid_b, "failed" if i % 3 == 0 else "succeeded"))
    fork = multiprocessing.get_context("fork")
    barrier = fork.Barrier(2)
    racers = [fork.Process(target=_settle_side, args=(redis_url, side, rounds, barrier)) for side in (0, 1)]
    for p in racers:
        p.start()
    for p in racers:
        p.join(120)
        assert p.exitcode == 0
    pushed: dict[tuple[str, str], int] = {}
    for raw in r.lrange("queue:callbacks", 0, -1):
        cb = json.loads(raw)["batch_callback"]
        pushed[(cb["bid"], cb["event"])] = pushed.get((cb["bid"], cb["event"]), 0) + 1
    for bid, _, _, outcome_b in rounds:
        assert pushed.pop((bid, "complete")) == 1
        if outcome_b == "succeeded":
            assert pushed.pop((bid, "success")) == 1
    assert pushed == {}, "callbacks fired that should not have"


# --- pyq batches and the dashboard -------------------------------------------------------------------------


def test_pyq_batches_lists_batches_and_shows_one(redis_url: str, r: redis.Redis, client: Client) -> None:
    from click.testing import CliRunner

    from pyq.cli import main

    work = batchjobs.batch_work.set(client=client, queue="nobody")
    with Batch("first <import>", client=client) as first:
        work.perform_bulk([[i, 0] for i in range(3)])
    with Batch("second", client=client) as second:
        work.perform_async(1, 0)

    def run(*args: str) -> str:
        result = CliRunner().invoke(main, ["batches", *args, "--redis-url", redis_url])
        assert result.exit_code == 0, result.output
        return result.output

    listed = json.loads(run("--json"))
    assert listed["count"] == 2
    assert [b["bid"] for b in listed["batches"]] == [second.bid, first.bid]  # newest first
    assert listed["batches"][1]["total"] == 3 and listed["batches"][1]["state"] == "running"
    assert first.bid in run() and "first <import>" in run()
    one = json.loads(run(first.bid, "--json"))
    assert (one["pending"], one["failures"], one["complete"], one["success"]) == (3, 0, False, False)
    assert "pending: 3" in run(first.bid)
    missing = CliRunner().invoke(main, ["batches", "nope", "--redis-url", redis_url])
    assert missing.exit_code == 2 and "no batch 'nope'" in missing.output


def test_the_dashboard_lists_batches_escaped(redis_url: str, r: redis.Redis, client: Client) -> None:
    from pyq.config import Config
    from pyq.web import Dashboard, Settings
    from webhelp import call

    with Batch("<b>report</b>", client=client) as batch:
        batchjobs.batch_work.set(client=client, queue="nobody").perform_async(1, 0)
    page = call(Dashboard(Settings(r, Keys()), None), "/batches", password=None)[2]
    section = page.split("id='count'>", 1)[1]
    assert "1 batches" in section and batch.bid in section and "running" in section
    assert "&lt;b&gt;report&lt;/b&gt;" in section and "<b>report" not in section
    assert Config().batch_expiry_s == 30 * 24 * 3600


# --- Ruby --------------------------------------------------------------------------------------------------


@requires_ruby
def test_a_ruby_sidekiq_worker_runs_a_batch_job_but_it_does_not_count_for_the_batch(
        redis_url: str, r: redis.Redis, client: Client) -> None:
    record = pyq.job(name="RecordJob", queue="interop")(lambda token: None).set(client=client)
    with Batch(on_success=(batchjobs.batch_callback, ["ruby"]), client=client) as batch:
        jid = record.perform_async("from-a-batch")
    with sidekiq_server("record_worker.rb", redis_url, "interop"):
        ran = wait_until(lambda: r.lrange("test:recorded", 0, -1), timeout=20)
    assert json.loads(ran[0])["jid"] == jid  # the payload with its bid is a valid Sidekiq job
    status = Batch.status(batch.bid, client=client)
    assert status.pending == 1 and not status.success  # as docs/ruby-interop.md says


def test_a_cancelled_queued_job_counts_as_failed_in_its_batch(r: redis.Redis, client: Client) -> None:
    with Batch(on_complete=(batchjobs.batch_callback, ["cx"]), callback_queue="callbacks", client=client) as batch:
        jid = batchjobs.batch_work.set(client=client, queue="nobody").perform_async(1, 0)
    assert pyq.cancel(jid, client) == "queued"
    status = Batch.status(batch.bid, client=client)
    assert status.failed_jids == [jid] and status.complete and not status.success
    assert [json.loads(x)["batch_callback"]["event"] for x in r.lrange("queue:callbacks", 0, -1)] == ["complete"]


def test_a_prioritised_job_of_a_batch_goes_to_its_priority_set_and_is_a_member(r: redis.Redis,
                                                                               client: Client) -> None:
    with Batch(client=client) as batch:
        jid = batchjobs.batch_work.set(client=client, queue="nobody", priority=5).perform_async(1, 0)
    assert r.llen("queue:nobody") == 0
    assert json.loads(r.zrange("pyq:prio:nobody", 0, -1)[0])["bid"] == batch.bid
    assert r.smembers(f"b-{batch.bid}-jids") == {jid.encode()}


@pyq.job(name="UrgentCallback", priority=7)
def urgent_callback(tag: str) -> None:
    return None


def test_a_callback_job_with_a_priority_is_pushed_at_it_and_runs_before_the_queues_other_jobs(
        r: redis.Redis, client: Client) -> None:
    batchjobs.batch_work.set(client=client, queue="callbacks").perform_async(1, 0)  # waiting before it
    with Batch(on_complete=(urgent_callback, ["u"]), on_success=(batchjobs.batch_callback, ["u"]),
               callback_queue="callbacks", client=client):
        pass
    # the default-priority callback joins the plain list, the prioritised one the queue's priority set
    [urgent] = [json.loads(raw) for raw in r.zrange("pyq:prio:callbacks", 0, -1)]
    assert (urgent["class"], urgent["priority"], urgent["batch_callback"]["event"]) == ("UrgentCallback", 7, "complete")
    assert "enqueued_at" in urgent
    assert [job["class"] for job in fetch_order(r, "callbacks")] == ["UrgentCallback", "BatchWork", "BatchCallback"]

