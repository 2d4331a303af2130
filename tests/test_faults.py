"""Faults for real: Redis restarted, missing, paused or full; the supervisor killed; jobs that kill their worker."""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from collections.abc import Iterator

import pytest
import redis

import pyq
from chaosjobs import RESULTS_KEY, STARTED_KEY
from conftest import RedisServer, free_port
from pool import child_pids, outage_lines, running_pool, wait_until
from pyq.keys import Keys
from pyq.scheduler import MAX_CRASHES, recover_process


def dedicated(*extra: str, port: int | None = None) -> RedisServer:
    return RedisServer(port, *extra)


@pytest.fixture
def results(monkeypatch: pytest.MonkeyPatch) -> Iterator[redis.Redis]:
    """The tally Redis (chaosjobs writes there), apart from whatever Redis the test breaks."""
    server = RedisServer().start()
    monkeypatch.setenv("CHAOS_RESULTS_URL", server.url)
    conn = redis.Redis.from_url(server.url)
    yield conn
    conn.close()
    server.stop()
    shutil.rmtree(server.dir, ignore_errors=True)


@pytest.fixture
def servers() -> Iterator[list[RedisServer]]:
    """Dedicated servers a test starts and stops at will; all stopped afterwards."""
    started: list[RedisServer] = []
    yield started
    for server in started:
        server.stop()
        shutil.rmtree(server.dir, ignore_errors=True)


def done(results: redis.Redis) -> dict[str, int]:
    return {k.decode(): int(v) for k, v in results.hgetall(RESULTS_KEY).items()}


def push_tokens(url: str, n: int, sleep_ms: float = 0, prefix: str = "") -> None:
    client = pyq.Client(url)
    client.push_bulk({"class": "ChaosToken", "args": [[f"{prefix}{i}", sleep_ms] for i in range(n)]})
    client.redis.close()


def pool(tmp_path, url: str, **settings):
    return running_pool(tmp_path, url, **{"require": ["chaosjobs"], "heartbeat_interval": 1, **settings})


def inflight_total(r: redis.Redis) -> int:
    return sum(r.llen(Keys().inflight(o.decode())) for o in r.smembers(Keys().inflight_owners))


# --- crash counter (recover.lua) ------------------------------------------------------------------

def _in_flight(r: redis.Redis, identity: str, job: dict) -> bytes:
    raw = json.dumps(job, separators=(",", ":")).encode()
    r.lpush(Keys().inflight(identity), raw)
    r.sadd(Keys().inflight_owners, identity)
    return raw


def test_a_job_recovered_fewer_than_max_times_goes_back_and_its_count_expires(r: redis.Redis) -> None:
    job = {"class": "X", "args": [], "queue": "default", "jid": "j1"}
    for n in range(1, MAX_CRASHES):
        raw = _in_flight(r, f"h:{n}:a", job)
        assert recover_process(r, Keys(), f"h:{n}:a") == 1
        assert r.lpop("queue:default") == raw
        assert int(r.get(Keys().crashes("j1"))) == n
    assert 0 < r.ttl(Keys().crashes("j1")) <= 86_400
    assert r.zcard("dead") == 0


def test_the_max_th_recovery_buries_the_job_as_worker_crashed_with_its_bytes_kept(r: redis.Redis) -> None:
    job = {"class": "X", "args": [], "queue": "q", "jid": "j2", "created_at": 1700000000.123456, "retry": 2}
    innocent = {"class": "Y", "args": [1], "queue": "q", "jid": "j3"}
    r.set(Keys().crashes("j2"), MAX_CRASHES - 1)
    _in_flight(r, "h:1:a", job)
    innocent_raw = _in_flight(r, "h:1:a", innocent)
    assert recover_process(r, Keys(), "h:1:a", now_s=1700000100.5) == 1
    assert r.lrange("queue:q", 0, -1) == [innocent_raw]
    [(dead_raw, score)] = r.zrange("dead", 0, -1, withscores=True)
    dead = json.loads(dead_raw)
    assert score == 1700000100.5 and dead["failed_at"] == 1700000100.5
    assert dead["error_class"] == "pyq.WorkerCrashed" and f"{MAX_CRASHES} times" in dead["error_message"]
    assert {k: dead[k] for k in job} == job  # the float keeps every digit: the JSON was not re-encoded
    assert not r.exists(Keys().crashes("j2"))
    # And it counts as a failed (and processed) job, as Sidekiq's stats count failures
    day = time.strftime("%Y-%m-%d", time.gmtime(1700000100.5))
    counters = ("stat:failed", f"stat:failed:{day}", "stat:processed", f"stat:processed:{day}")
    assert [r.get(k) for k in counters] == [b"1"] * 4
    assert r.ttl(f"stat:failed:{day}") > 0


def test_a_previous_error_class_is_overridden_for_every_json_reader(r: redis.Redis) -> None:
    job = {"class": "X", "args": [], "jid": "j4", "error_class": "KeyError", "error_message": "old"}
    r.set(Keys().crashes("j4"), MAX_CRASHES - 1)
    _in_flight(r, "h:1:a", job)
    recover_process(r, Keys(), "h:1:a")
    assert json.loads(r.zrange("dead", 0, -1)[0])["error_class"] == "pyq.WorkerCrashed"


@pytest.mark.slow
@pytest.mark.timeout(60)
@pytest.mark.parametrize("job_class", ["ChaosExit", "ChaosSegfault"])
def test_a_job_that_kills_its_worker_is_buried_after_max_crashes_and_the_pool_goes_on(
        tmp_path, r, client, redis_url, results, job_class):
    with pool(tmp_path, redis_url, processes=1, concurrency=1, prefetch=0) as proc:
        # Given a job that ends its worker process
        client.push({"class": job_class, "args": ["poison"]})
        # Then each death is seen, the job comes back, and after MAX_CRASHES it is dead
        wait_until(lambda: r.zcard("dead") == 1, timeout=30)
        assert results.llen(STARTED_KEY) == MAX_CRASHES
        dead = json.loads(r.zrange("dead", 0, -1)[0])
        assert dead["class"] == job_class and dead["error_class"] == "pyq.WorkerCrashed"
        # And the replacement worker still runs ordinary jobs
        push_tokens(redis_url, 3)
        wait_until(lambda: len(done(results)) == 3, timeout=30)
        assert len(child_pids(proc.pid)) == 1
    how = "signal 11" if job_class == "ChaosSegfault" else "status 1"
    assert (tmp_path / "pool.log").read_text().count(how) == MAX_CRASHES
    assert r.llen("queue:default") == 0 and inflight_total(r) == 0


# --- supervisor faults ----------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.timeout(60)
def test_workers_of_a_sigkilled_supervisor_put_their_jobs_back_and_a_new_pool_finishes_them(
        tmp_path, r, redis_url, results):
    # Given two workers busy with long jobs
    with pool(tmp_path, redis_url, processes=2, concurrency=2, timeout=1) as proc:
        wait_until(lambda: len(child_pids(proc.pid)) == 2)
        workers = child_pids(proc.pid)
        push_tokens(redis_url, 40, sleep_ms=300)
        wait_until(lambda: inflight_total(r) >= 4)
        # When the supervisor is SIGKILLed
        os.kill(proc.pid, signal.SIGKILL)
        # Then every worker notices within a poll, stops and exits by itself
        wait_until(lambda: not [p for p in workers if _alive(p)], timeout=10)
    assert inflight_total(r) == 0, "jobs of the orphaned workers were left in flight"
    log = (tmp_path / "pool.log").read_text()
    assert log.count("is gone: stopping") == 2
    # And a fresh pool finishes every job
    with pool(tmp_path, redis_url, processes=2, concurrency=4):
        wait_until(lambda: len(done(results)) == 40, timeout=30)
    assert r.llen("queue:default") == 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie no longer runs: its parent (init) reaps it soon
        return f.read().rsplit(")", 1)[1].split()[0] != "Z"


def registered_pids(r: redis.Redis) -> list[int]:
    """Pids of the worker processes registered in Sidekiq's ``processes`` set (identity host:pid:nonce)."""
    return [int(identity.split(b":")[1]) for identity in r.smembers("processes")]


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_a_worker_that_ran_jobs_for_seconds_is_restarted_promptly_after_repeated_kills(tmp_path, r, redis_url):
    with running_pool(tmp_path, redis_url, processes=1, heartbeat_interval=1) as proc:
        killed: list[int] = []
        for _ in range(5):
            # the worker that registered in Redis since the last kill (a child pid alone may be one still dying)
            pid = wait_until(lambda: [p for p in registered_pids(r) if p not in killed and p in child_pids(proc.pid)],
                             timeout=5)[0]
            time.sleep(2)  # it works for two seconds: not a crash at start-up
            assert pid in child_pids(proc.pid), (tmp_path / "pool.log").read_text()
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
            # Then a new worker is forked within 2 s (no crash-loop backoff for a worker that had been working)
            wait_until(lambda: [p for p in child_pids(proc.pid) if p not in killed], timeout=2)


# --- Redis faults ---------------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.timeout(90)
def test_redis_restarted_mid_run_with_aof_loses_nothing(tmp_path, results, servers):
    server = dedicated("--appendonly", "yes", "--appendfsync", "always").start()
    servers.append(server)
    r = redis.Redis.from_url(server.url)
    with pool(tmp_path, server.url, processes=2, concurrency=4):
        push_tokens(server.url, 600, sleep_ms=20)
        wait_until(lambda: len(done(results)) >= 100, timeout=30)
        # When Redis restarts (its AOF holds every acknowledged write)
        server.stop()
        time.sleep(1.5)
        server.start()
        # Then the workers reconnect and every job completes
        wait_until(lambda: len(done(results)) == 600, timeout=60)
        wait_until(lambda: inflight_total(r) == 0 and r.llen("queue:default") == 0, timeout=15)
    assert r.zcard("retry") == 0 and r.zcard("dead") == 0
    log = (tmp_path / "pool.log").read_text()
    assert "Traceback" not in log, log[-3000:]
    # And each worker's loops logged the restart once and its end once, the cancel listener among them
    lines = outage_lines(log)
    assert {what for _, what in lines} >= {"fetcher", "cancel listener"}, lines
    assert all(counts == (1, 1) for counts in lines.values()), lines


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_pool_started_before_redis_logs_retries_then_works_when_redis_appears(tmp_path, results, servers):
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    with pool(tmp_path, url, processes=1) as proc:
        wait_until(lambda: "retrying" in (tmp_path / "pool.log").read_text(), timeout=10)
        assert proc.poll() is None
        server = dedicated(port=port).start()
        servers.append(server)
        push_tokens(url, 5)
        wait_until(lambda: len(done(results)) == 5, timeout=30)
    log = (tmp_path / "pool.log").read_text()
    assert f"127.0.0.1:{port}" in log and "Traceback" not in log


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_redis_paused_longer_than_the_heartbeat_then_jobs_continue(tmp_path, r, redis_url, results):
    with pool(tmp_path, redis_url, processes=2, concurrency=2) as proc:
        wait_until(lambda: r.scard("processes") == 2)
        push_tokens(redis_url, 200, sleep_ms=30)
        wait_until(lambda: len(done(results)) >= 20)
        # When every client is paused for 8 s (heartbeat every 1 s)
        r.execute_command("CLIENT", "PAUSE", 8000, "ALL")
        time.sleep(8.5)
        # Then the same workers finish every job, none declared dead
        wait_until(lambda: len(done(results)) == 200, timeout=30)
        assert len(child_pids(proc.pid)) == 2
    assert set(done(results).values()) == {1}
    assert "killed by" not in (tmp_path / "pool.log").read_text()


def test_full_redis_refuses_enqueue_with_the_oom_error_and_leaves_no_half_write(servers):
    server = dedicated("--maxmemory", "2mb", "--maxmemory-policy", "noeviction").start()
    servers.append(server)
    r = redis.Redis.from_url(server.url)
    client = pyq.Client(server.url)
    blob = "x" * 100_000
    pushed = 0
    with pytest.raises(redis.exceptions.OutOfMemoryError, match="maxmemory"):
        for _ in range(200):
            client.push({"class": "Big", "args": [blob]})
            pushed += 1
    assert 0 < pushed < 200
    assert r.llen("queue:default") == pushed and r.smembers("queues") == {b"default"}
    client.redis.close()


def test_bulk_push_into_filling_redis_stores_whole_chunks_only(servers):
    server = dedicated("--maxmemory", "2mb", "--maxmemory-policy", "noeviction").start()
    servers.append(server)
    r = redis.Redis.from_url(server.url)
    client = pyq.Client(server.url)
    # When 5,000 jobs of 1 kB (5 chunks of 1,000) meet a 2 MB limit
    with pytest.raises(redis.exceptions.OutOfMemoryError, match="maxmemory"):
        client.push_bulk({"class": "Small", "args": [["y" * 1000, i] for i in range(5000)]})
    # Then each chunk went in whole or not at all, and the queues set agrees with the lists
    stored = r.llen("queue:default")
    assert stored % 1000 == 0 and stored < 5000
    assert r.smembers("queues") == ({b"default"} if stored else set())
    client.redis.close()


# --- passwords ---------------------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.timeout(60)
@pytest.mark.parametrize("password", ["wrong-pa55", "s3cret-pa55"])
def test_the_redis_password_appears_in_no_log_line(tmp_path, servers, results, password):
    server = dedicated().start()
    servers.append(server)
    redis.Redis(port=server.port).config_set("requirepass", "s3cret-pa55")
    url = f"redis://:{password}@127.0.0.1:{server.port}/0"
    with pool(tmp_path, url, processes=1, log_level="debug") as proc:
        if password == "s3cret-pa55":
            push_tokens(url, 3)
            wait_until(lambda: len(done(results)) == 3, timeout=20)
        else:  # a wrong password stops the pool at once, with one line
            assert proc.wait(timeout=15) == 2
    log = (tmp_path / "pool.log").read_text()
    assert "pa55" not in log, [line for line in log.splitlines() if "pa55" in line]
    assert f":***@127.0.0.1:{server.port}" in log
