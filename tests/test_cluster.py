"""pyq on a real Redis Cluster (3 primaries on loopback, ``cluster: true``): the worker, retries, scheduled
jobs, cron, unique locks, batches, results, cancellation, recovery and the admin side, through real pools.

Every key is ``{pyq}:...``, so all of them live in one slot of one primary; the test jobs record what they
did in the cluster too (``workerjobs.conn`` is a cluster client under ``PYQ_CLUSTER``).
"""

from __future__ import annotations

import html
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from redis.crc import key_slot
from redis.exceptions import RedisError

import batchjobs
import pyq
from chaosjobs import RESULTS_KEY
from cluster import ClusterServers
from conftest import free_port
from iterjobs import DONE, SEEN, Recording
from pool import child_pids, http_get, kill_group, running_pool, wait_until
from pyq import Batch, job_progress
from pyq.api import Api
from pyq.config import Config
from pyq.cron import CronJob, CronPoller, CronStore
from pyq.keys import Keys
from pyq.metrics.collector import RedisCollector
from pyq.web import build, make_server
from test_batches import fires, flaky_batch, runs

pytestmark = pytest.mark.slow

K = Keys(cluster=True)
#: Fast pollers and beats, so that retries, schedules and recovery happen within a test.
FAST = {"cluster": True, "average_scheduled_poll_interval": 0.2, "poll_interval_average": 0.2,
        "heartbeat_interval": 1}


#: What a pool logs when something other than a job fails: a worker or a thread of it dying, or redis-py's
#: cluster client refusing a command.
CRASHES = ("unexpected error", "exited with status", "Exception in thread", "RedisClusterException")


@pytest.fixture(autouse=True)
def clean_pool_logs(tmp_path):
    """No pool of these tests may crash anywhere but in a job."""
    yield
    for log in tmp_path.rglob("pool.log"):
        text = log.read_text()
        for crash in CRASHES:
            assert crash not in text, text[text.index(crash) - 300:][:3000]


def done_tokens(rc) -> list[str]:
    return [t.decode() for t in rc.lrange("test:done", 0, -1)]


def pyq_keys(rc) -> list[str]:
    return sorted(k.decode() for k in rc.scan_iter(match="*") if not k.startswith(b"test:"))


def test_every_key_of_a_run_is_hash_tagged_and_lives_on_one_primary(tmp_path, rc, redis_cluster, cluster_client,
                                                                    cluster_url):
    # Given a pool on the cluster serving two queues (so idle workers wait on the wake lists)
    with running_pool(tmp_path, cluster_url, queues=["default", "other"], **FAST) as proc:
        wait_until(lambda: rc.scard(K.processes) == 2)
        # When jobs are pushed to both queues, sync and async
        cluster_client.push({"class": "Record", "args": ["a"]})
        cluster_client.push({"class": "AsyncRecord", "args": ["b"], "queue": "other"})
        cluster_client.push_bulk({"class": "Record", "args": [[str(i)] for i in range(200)]})
        # Then they run, are counted, and the processes beat in Sidekiq's layout under the tag
        wait_until(lambda: len(done_tokens(rc)) == 202)
        wait_until(lambda: rc.get(K.stat("processed")) == b"202")
        identities = {m.decode() for m in rc.smembers(K.processes)}
        assert {int(i.split(":")[1]) for i in identities} == set(child_pids(proc.pid))
        for identity in identities:
            assert float(rc.hget(K.process(identity), "beat")) > time.time() - 10
    # And every key pyq wrote carries the one tag, so all of them sit in its slot on one primary
    keys = pyq_keys(rc)
    assert keys and all(k.startswith("{pyq}:") for k in keys), keys
    assert {key_slot(k.encode()) for k in keys} == {key_slot(b"{pyq}")}
    holders = [n for n in redis_cluster.nodes if pyq.connection.connect(n.url).dbsize()]
    assert len(holders) == 2  # the tag's primary, and the one holding the test's own test:done


def test_a_failing_job_is_retried_by_the_poller_then_dies(tmp_path, rc, cluster_client, cluster_url):
    with running_pool(tmp_path, cluster_url, **FAST):
        jid = cluster_client.push({"class": "AlwaysFails", "args": ["f"], "retry": 1})
        (entry,) = wait_until(lambda: rc.zrange(K.retry, 0, -1))
        assert json.loads(entry)["retry_count"] == 0 and json.loads(entry)["jid"] == jid
        rc.zadd(K.retry, {entry: time.time()}, xx=True)  # due now: the poller promotes it
        wait_until(lambda: rc.zcard(K.dead) == 1)
    assert rc.lrange("test:failed", 0, -1) == [b"f", b"f"]
    assert rc.zcard(K.retry) == 0 and rc.get(K.stat("failed")) == b"2"


def test_a_scheduled_job_runs_when_due(tmp_path, rc, cluster_client, cluster_url):
    from workerjobs import record

    with running_pool(tmp_path, cluster_url, **FAST):
        record.set(client=cluster_client).perform_in(1.0, "later")
        assert rc.zcard(K.schedule) == 1 and done_tokens(rc) == []
        wait_until(lambda: done_tokens(rc) == ["later"])
    assert rc.zcard(K.schedule) == 0


def test_a_unique_lock_drops_the_duplicate_and_is_released_after_the_run(tmp_path, rc, cluster_client, cluster_url):
    job = {"class": "Record", "args": ["u"], "lock": "until_executed"}
    first = cluster_client.push(job)
    assert first and cluster_client.push(job) is None  # the lock is held: the duplicate is dropped
    digest = json.loads(rc.lindex(K.queue("default"), 0))["lock_digest"]
    assert rc.zrange(K.unique_digests, 0, -1) == [K.unique(digest).encode()]
    assert rc.exists(K.unique(digest), K.unique(digest, "LOCKED")) == 2
    with running_pool(tmp_path, cluster_url, **FAST):
        wait_until(lambda: done_tokens(rc) == ["u"])
        wait_until(lambda: not rc.exists(K.unique(digest, "LOCKED")))
        assert cluster_client.push(job)  # free again
        wait_until(lambda: done_tokens(rc) == ["u", "u"])


def test_a_batch_fires_complete_once_then_success_once_after_the_retries(tmp_path, rc, cluster_client,
                                                                        cluster_url):
    with running_pool(tmp_path, cluster_url, require=["batchjobs"], processes=2, concurrency=10, **FAST):
        batch = flaky_batch(cluster_client, 200, 5)
        wait_until(lambda: fires(rc, "b", "success"), timeout=60)
        time.sleep(0.5)  # a second push of either callback would have run by now
    complete, success = runs(rc, "b", "complete"), runs(rc, "b", "success")
    assert len(complete) == 1 and len(success) == 1
    assert complete[0]["attempted"] == 200 and complete[0]["failures"] == 5
    assert success[0]["succeeded"] == 200 and success[0]["pending"] == 0
    status = Batch.status(batch.bid, client=cluster_client)
    assert (status.total, status.pending, status.failures) == (200, 0, 0) and status.success
    assert rc.exists(K.batch(batch.bid)) and rc.zscore(K.batches, batch.bid)


def test_results_are_stored_and_read_back(tmp_path, rc, cluster_client, cluster_url):
    with running_pool(tmp_path, cluster_url, require=["batchjobs"], **FAST):
        handles = [batchjobs.batch_result.set(client=cluster_client).perform_async(i) for i in range(5)]
        assert [h.result(timeout=15) for h in handles] == [0, 1, 4, 9, 16]
    assert rc.llen(K.result(handles[3].jid)) == 1 and 0 < rc.ttl(K.result(handles[3].jid)) <= 600


def test_a_running_job_is_cancelled_through_pubsub(tmp_path, rc, cluster_client, cluster_url):
    with running_pool(tmp_path, cluster_url, require=["limitjobs"], processes=1, **FAST):
        jid = cluster_client.push({"class": "Cooperative", "args": ["c"]})
        wait_until(lambda: rc.llen("test:started") == 1)
        asked = time.monotonic()
        assert pyq.cancel(jid, cluster_client) == "running"
        wait_until(lambda: rc.llen("test:stopped") == 1, timeout=5)
        assert time.monotonic() - asked < 2.0  # the pub/sub message, not a poll, stopped it
        assert rc.lindex("test:stopped", 0).decode().endswith(":1")  # ctx.cancelled
        wait_until(lambda: not any(rc.llen(K.inflight(i.decode())) for i in rc.smembers(K.processes)))
    assert rc.zcard(K.retry) == 0 and rc.zcard(K.dead) == 0
    assert [e.jid for e in pyq.cancelled_jobs(cluster_client)] == [jid]


def test_sigterm_puts_a_long_job_back_and_leaves_no_owner(tmp_path, rc, cluster_client, cluster_url):
    with running_pool(tmp_path, cluster_url, processes=1, timeout=1, **FAST) as proc:
        cluster_client.push({"class": "Sleepy", "args": ["long", 30]})
        wait_until(lambda: rc.llen("test:started") == 1)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
    (back,) = rc.lrange(K.queue("default"), 0, -1)
    assert json.loads(back)["args"] == ["long", 30]
    assert rc.scard(K.inflight_owners) == 0 and rc.scard(K.processes) == 0  # release_ownership's WATCH held


def test_a_killed_pool_s_jobs_are_recovered_by_the_next_pool(tmp_path, rc, cluster_client, cluster_url):
    # Given a whole pool SIGKILLed while it runs long jobs (no supervisor left to put them back)
    settings = {**FAST, "processes": 1, "recovery_timeout": 2}
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with running_pool(tmp_path / "a", cluster_url, **settings) as proc:
        for i in range(3):
            cluster_client.push({"class": "Sleepy", "args": [f"s{i}", 0.5 if i else 30]})
        wait_until(lambda: rc.llen("test:started") >= 1)
        kill_group(proc)
    (owner,) = (m.decode() for m in rc.smembers(K.inflight_owners))
    held = rc.llen(K.inflight(owner))
    assert held >= 1
    # When another pool starts, it finds the silent owner and pushes its jobs back
    with running_pool(tmp_path / "b", cluster_url, **settings):
        wait_until(lambda: {"s1", "s2"} <= set(done_tokens(rc)), timeout=30)
        wait_until(lambda: not rc.exists(K.inflight(owner)), timeout=30)
        assert owner.encode() not in rc.smembers(K.inflight_owners)


def test_an_iterable_job_stopped_by_sigterm_resumes_at_its_cursor(tmp_path, rc, cluster_client, cluster_url):
    # Given an iterable job of 2,000 items, its state hash (it-JID) under the tag
    settings = {**FAST, "processes": 1, "concurrency": 2, "timeout": 10, "require": ["iterjobs"]}
    jid = Recording.set(client=cluster_client).perform_async(2_000, 0.001).jid
    for run in ("a", "b"):
        (tmp_path / run).mkdir()
    with running_pool(tmp_path / "a", cluster_url, **settings) as proc:
        wait_until(lambda: rc.hlen(SEEN) >= 500, timeout=60)
        # When the pool is stopped mid-run
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    cursor = json.loads(rc.hget(K.iteration(jid), "c"))
    assert 500 <= cursor < 2_000 and rc.llen(K.queue("default")) == 1
    # Then the next pool resumes at the saved cursor and every item runs exactly once
    with running_pool(tmp_path / "b", cluster_url, **settings):
        wait_until(lambda: rc.llen(DONE) == 2_000, timeout=60)
    assert {int(v) for v in rc.hvals(SEEN)} == {1} and rc.hlen(SEEN) == 2_000


def test_cron_enqueues_each_tick_once_across_two_pollers(rc, cluster_client):
    # Given a per-second schedule saved in sidekiq-cron's layout under the tag
    store = CronStore(rc, K)
    store.save(CronJob("sec", "* * * * * *", "Record", args=["cron"]), now_s=time.time() - 5)
    assert [j.name for j in store.all()] == ["sec"]  # found by SCAN over every primary
    # When two pollers race on it for about three seconds
    stop = threading.Event()
    pollers = [CronPoller(rc, K, cluster_client, poll_interval_s=0.05) for _ in range(2)]
    threads = [threading.Thread(target=p.run, args=(stop,), daemon=True) for p in pollers]
    for thread in threads:
        thread.start()
    time.sleep(3.2)
    stop.set()
    for thread in threads:
        thread.join(5)
    # Then each second was enqueued once: as many jobs as distinct ticks recorded
    pushed = rc.llen(K.queue("default"))
    ticks = rc.zcard(K.cron_enqueued("sec"))
    assert 2 <= pushed <= 5 and pushed == ticks - 1  # the seeded tick at save time never fires
    assert len(rc.lrange(K.cron_jid_history("sec"), 0, -1)) == pushed


def test_the_api_and_the_admin_cli_read_and_change_the_cluster(tmp_path, rc, cluster_client, cluster_url):
    cluster_client.push_bulk({"class": "Record", "args": [["q1"], ["q2"]]})
    failed = {"class": "Record", "args": ["r"], "queue": "default", "jid": "a" * 24, "retry": True,
              "retry_count": 0, "error_class": "RuntimeError", "error_message": "x", "failed_at": time.time(),
              "created_at": time.time()}
    rc.zadd(K.retry, {json.dumps(failed): time.time() + 3600})
    overview = Api(rc, K).overview()
    assert (overview.retries, overview.enqueued, [q.name for q in overview.queues]) == (1, 2, ["default"])
    # The dashboard's pages and the Prometheus collector read the same keys
    server = make_server(build(Config(redis_url=cluster_url, cluster=True), None, None), "127.0.0.1", free_port())
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        pages = {path: http_get(base + path) for path in ("/", "/queues", "/queues/default", "/busy", "/retries",
                                                          "/scheduled", "/dead", "/cron", "/processes", "/batches",
                                                          "/limits", "/progress")}
        link = re.search(r"href='(/job\?[^']+)'", pages["/retries"][1])
        assert link is not None, pages["/retries"][1]
        pages["/job"] = http_get(base + html.unescape(link.group(1)))
    finally:
        server.shutdown()
        server.server_close()
    assert {path: status for path, (status, _) in pages.items() if status != 200} == {}
    assert "a" * 24 in pages["/retries"][1] and "default" in pages["/queues"][1] and "a" * 24 in pages["/job"][1]
    registry = CollectorRegistry()
    registry.register(RedisCollector(rc, K))
    scraped = generate_latest(registry).decode()
    assert 'pyq_queue_size{queue="default"} 2.0' in scraped and "pyq_retry_set_size 1.0" in scraped
    env = {**os.environ, "PYQ_REDIS_URL": cluster_url, "PYQ_CLUSTER": "true"}

    def cli(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "pyq", *args], capture_output=True, text=True, env=env,
                              timeout=30)
        assert done.returncode == 0, (args, done.stderr)
        return done.stdout

    shown = json.loads(cli("stats", "--json"))
    assert shown["retries"] == 1 and shown["enqueued"] == 2, shown
    cli("retry", "retry", "a" * 24)
    assert rc.zcard(K.retry) == 0 and rc.llen(K.queue("default")) == 3  # moved under WATCH/MULTI
    CronStore(rc, K).save(CronJob("tick", "0 * * * *", "Record", args=["cron"]))
    assert "tick" in cli("cron", "list")
    cli("cron", "run", "tick")
    assert rc.llen(K.queue("default")) == 4 and rc.llen(K.cron_jid_history("tick")) == 1
    jid = json.loads(rc.lindex(K.queue("default"), 0))["jid"]
    assert json.loads(cli("cancel", jid, "--json")) == {"jid": jid, "was": "queued"}
    cli("queue", "clear", "default", "--yes")  # UNLINK and SREM in one MULTI
    assert not rc.exists(K.queue("default")) and not rc.sismember(K.queues, "default")


@pytest.fixture
def cluster_with_replicas(monkeypatch: pytest.MonkeyPatch):
    """A cluster of its own (3 primaries, one replica each): the test kills one of its primaries."""
    servers = ClusterServers(replicas=1).start()
    monkeypatch.setenv("PYQ_CLUSTER", "true")
    yield servers
    servers.stop()


def _push_until_accepted(client: pyq.Client, item: dict, timeout_s: float = 60.0) -> float:
    """Push ``item``, trying again while the cluster has no primary for the slot; seconds it took."""
    started = time.monotonic()
    while True:
        try:
            client.push(item)
            return time.monotonic() - started
        except RedisError:
            if time.monotonic() - started > timeout_s:
                raise
            time.sleep(0.1)


@pytest.mark.timeout(180)
def test_the_pool_and_the_client_follow_a_failover_to_the_replica(tmp_path, cluster_with_replicas, r, redis_url,
                                                                  monkeypatch):
    # Given a pool on a cluster whose primaries each have a replica; runs are counted outside the cluster
    monkeypatch.setenv("CHAOS_RESULTS_URL", redis_url)
    servers, url = cluster_with_replicas, cluster_with_replicas.url
    client = pyq.Client(url, cluster=True)
    with running_pool(tmp_path, url, require=["chaosjobs"], **FAST) as proc:
        client.push_bulk({"class": "ChaosToken", "args": [[f"before-{i}"] for i in range(100)]})
        wait_until(lambda: r.hlen(RESULTS_KEY) == 100, timeout=30)
        # When the primary holding pyq's slot is SIGKILLed
        victim = servers.primary_of(K.queue("default"))
        servers.kill(victim)
        killed_at = time.monotonic()
        # Then pushes are accepted again once its replica took over, and the pool runs them all
        waited = [_push_until_accepted(client, {"class": "ChaosToken", "args": [f"after-{i}"]}) for i in range(100)]
        wait_until(lambda: r.hlen(RESULTS_KEY) == 200, timeout=60)
        outage_s = time.monotonic() - killed_at
        # And each worker logged the outage of its fetcher once, then its end
        log = tmp_path / "pool.log"
        wait_until(lambda: log.read_text().count("fetcher: Redis is back") == 2, timeout=30)
        assert log.read_text().count("fetcher: Redis unavailable") == 2
        assert proc.poll() is None and len(child_pids(proc.pid)) == 2  # nothing crashed
    print(f"failover: first push accepted after {waited[0]:.1f} s, all 200 jobs done {outage_s:.1f} s after the kill")
    assert servers.primary_of(K.queue("default")).port != victim.port


LIMITED_JOBS = '''
import time

import pyq
from workerjobs import conn

CGW = pyq.limiter.concurrent("cgw", 3, lock_timeout=30, wait_timeout=30)
#: Holders now and the most seen, under one hash tag so that one script can touch both on the cluster.
ENTER = """
local n = redis.call('INCR', KEYS[1])
if n > tonumber(redis.call('GET', KEYS[2]) or '0') then redis.call('SET', KEYS[2], n) end
return n
"""


@pyq.job(name="ClusterGateway", limits=[CGW])
def gateway(token, seconds):
    r = conn()
    r.eval(ENTER, 2, "{test}:holders", "{test}:max_holders")
    pyq.current().progress(1, 2, "holding")
    time.sleep(seconds)
    r.decr("{test}:holders")
    r.rpush("test:done", token)
'''


def test_a_concurrent_limiter_holds_across_processes_and_a_window_reschedules(tmp_path, rc, cluster_client,
                                                                             cluster_url, monkeypatch):
    # Given concurrent("cgw", 3) on 2 processes x 10 slots, and window("mail", 20 per 1 s)
    monkeypatch.setenv("TEST_MAIL_COUNT", "20")
    monkeypatch.setenv("TEST_MAIL_SECONDS", "1")
    (tmp_path / "clusterlimited.py").write_text(LIMITED_JOBS)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, (str(tmp_path), os.environ.get("PYTHONPATH")))))
    from limiterjobs import mail

    with running_pool(tmp_path, cluster_url, require=["clusterlimited", "limiterjobs"], processes=2,
                      concurrency=10, **FAST):
        gateway = pyq.job(name="ClusterGateway")(lambda *a: None).set(client=cluster_client)
        gateway.perform_bulk([(f"g{i}", 0.05) for i in range(60)])
        mail.set(client=cluster_client).perform_bulk([(str(i),) for i in range(60)])
        # (a running holder's progress is found by the dashboard's SCAN, sent to the slot's node)
        wait_until(lambda: any(p.message == "holding" for p in job_progress.recent(rc, K)[0]), timeout=30)
        wait_until(lambda: rc.llen("test:done") == 60 and rc.llen("test:sent") == 60, timeout=60)
    # Then at most 3 held the lease at once, and 3 did
    assert rc.get("{test}:max_holders") == b"3"
    # And the window let 20 a second through, rescheduling the rest, none failed
    sent = sorted(json.loads(x)[0] for x in rc.lrange("test:sent", 0, -1))
    assert sum(1 for at in sent if at < sent[0] + 1.0) <= 20 < len(sent)
    assert int(rc.get(K.over_limit_count)) >= 1 and rc.hget(K.limiter_over, "mail") == rc.get(K.over_limit_count)
    assert rc.get(K.stat("failed")) is None and rc.zcard(K.retry) == 0
    env = {**os.environ, "PYQ_REDIS_URL": cluster_url, "PYQ_CLUSTER": "true"}
    listed = subprocess.run([sys.executable, "-m", "pyq", "limits", "--json"], capture_output=True, text=True,
                            env=env, timeout=30)
    rows = {row["name"]: row for row in json.loads(listed.stdout)["limiters"]}
    assert rows["cgw"]["limit"] == 3 and rows["mail"]["over_limit"] >= 1


def test_higher_priority_jobs_run_first(tmp_path, rc, cluster_client, cluster_url):
    from limiterjobs import blocker, ordered

    levels = [(i * 7) % 5 - 2 for i in range(50)]
    with running_pool(tmp_path, cluster_url, require=["limiterjobs"], processes=1, concurrency=1, prefetch=0,
                      **FAST):
        blocker.set(client=cluster_client).perform_async(2)
        wait_until(lambda: rc.llen("test:blocker") == 1)
        for i, level in enumerate(levels):  # pushed behind the blocker, so they wait together
            ordered.set(client=cluster_client, priority=level).perform_async(str(i))
        assert rc.zcard(K.prio("default")) == sum(1 for level in levels if level) and rc.llen("test:order") == 0
        wait_until(lambda: rc.llen("test:order") == 50, timeout=60)
    expected = [str(i) for i in sorted(range(50), key=lambda i: (-levels[i], i))]
    assert [t.decode() for t in rc.lrange("test:order", 0, -1)] == expected
