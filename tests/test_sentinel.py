"""Sentinel failover against real servers: a master, a replica and three sentinels on loopback.

Workers and clients reach Redis through a ``redis+sentinel://`` URL. When the master moves (``SENTINEL
FAILOVER``, or a SIGKILL of the master) they follow it: running jobs finish, nothing crashes, and each
loop logs the outage once and then its end. Replication is asynchronous, so an acknowledged push can be
lost when the master dies; ``durable_enqueue`` (``WAIT`` after each push) closes that window.
"""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

import pyq
from pool import child_pids, doc_config, outage_lines, running_pool, wait_until
from pyq.config import load
from pyq.keys import Keys
from sentinel import SentinelSet

KEYS = Keys()
DONE = "test:done"


@pytest.fixture(scope="module")
def sentinels() -> Iterator[SentinelSet]:
    deployment = SentinelSet().start()
    yield deployment
    deployment.stop()


@pytest.fixture
def ha(sentinels: SentinelSet) -> SentinelSet:
    """The deployment with an empty master and its replicas in sync (a test may have moved the master)."""
    for port, server in sentinels.servers.items():
        if server.proc is None:
            sentinels.restart_old_master(port, wait=False)
    sentinels.whole()
    sentinels.master().flushall()
    sentinels.whole()
    return sentinels


class Producer(threading.Thread):
    """Pushes batches of HARecord jobs until stopped; a batch that raised is pushed again (same tokens).

    ``acked`` holds the tokens of every push that returned: the jobs a caller was told are enqueued.
    """

    def __init__(self, client: pyq.Client, batch: int, limit: int, pause_s: float = 0.0) -> None:
        super().__init__(daemon=True)
        self.client, self.batch, self.limit, self.pause_s = client, batch, limit, pause_s
        self.acked: list[str] = []
        self.errors: dict[str, int] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        n = 0
        while not self.stop.is_set() and n < self.limit:
            tokens = [str(i) for i in range(n, min(n + self.batch, self.limit))]
            try:
                self.client.push_bulk({"class": "HARecord", "args": [[t] for t in tokens]})
            except (redis.RedisError, pyq.NotDurable) as exc:
                self.errors[type(exc).__name__] = self.errors.get(type(exc).__name__, 0) + 1
                time.sleep(0.02)
                continue
            self.acked.extend(tokens)
            n += len(tokens)
            time.sleep(self.pause_s)


def stop_pool(proc: Any) -> None:
    """SIGTERM: the workers push what they hold back on the queue, so nothing sits in an in-flight list."""
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(60)


def in_redis(conn: redis.Redis) -> set[str]:
    """Tokens of jobs that ran, or still wait in a queue, the retry set or an in-flight list."""
    tokens = {t.decode() for t in conn.smembers(DONE)}
    raws = list(conn.lrange(KEYS.queue("default"), 0, -1)) + list(conn.zrange(KEYS.retry, 0, -1))
    for key in conn.scan_iter("pyq:inflight:*"):
        raws += conn.lrange(key, 0, -1)
    tokens.update(m.group(1).decode() for raw in raws if (m := re.search(rb'"args":\s*\["([0-9]+)"\]', raw)))
    return tokens


def pool_log(tmp_path: Path) -> str:
    return (tmp_path / "pool.log").read_text(errors="replace")


@pytest.mark.slow
@pytest.mark.timeout(120)
@pytest.mark.parametrize(("move", "replicas"), [("failover", 2), ("kill", 1)])
def test_pool_and_client_follow_the_new_master(tmp_path: Path, ha: SentinelSet, move: str, replicas: int) -> None:
    # Given a pool and a durable producer, both reaching Redis through the Sentinels. For a planned
    # failover every replica must hold a push: Sentinel promotes one while the other still follows the
    # old master, which stays writable until it is demoted. After a crash one replica is all there is.
    client = pyq.Client(ha.url, durable_enqueue=replicas, durable_enqueue_timeout_s=0.5)
    producer = Producer(client, batch=20, limit=10**9, pause_s=0.02)
    with running_pool(tmp_path, ha.url, require=["hajobs"], processes=2, concurrency=5,
                      heartbeat_interval=1) as proc:
        producer.start()
        wait_until(lambda: ha.master().scard(DONE) >= 200, timeout=30)
        workers = wait_until(lambda: len(pids := child_pids(proc.pid)) == 2 and pids)
        # When the master moves while jobs are being pushed and run
        ha.failover() if move == "failover" else ha.kill_master()
        new_master = ha.master()
        ran_before = wait_until(lambda: ha.master_role_settled() and new_master.scard(DONE) + 1, timeout=30) - 1
        # Then the pool goes on running new jobs on the new master, with the same worker processes
        wait_until(lambda: new_master.scard(DONE) >= ran_before + 200, timeout=30)
        producer.stop.set()
        producer.join(30)
        assert proc.poll() is None and child_pids(proc.pid) == workers
        # And a loop that saw the outage logged it once, and then its end (each retries every second)
        lines = wait_until(lambda: (found := outage_lines(pool_log(tmp_path))) and all(
            ended >= started for started, ended in found.values()) and found, timeout=20)
        assert all(counts == (1, 1) for counts in lines.values()), lines
        stop_pool(proc)
    assert "Traceback" not in pool_log(tmp_path)
    # And every acknowledged push is still there, run or waiting
    lost = len(set(producer.acked) - in_redis(new_master))
    print(f"durable pushes lost in a {move}: {lost} of {len(producer.acked)}")
    assert lost == 0


#: How far behind the replicas fall just before the master dies (they are frozen that long).
REPLICA_LAG_S = 0.3


def lost_in_a_failover(tmp_path: Path, ha: SentinelSet, durable: int, jobs: int) -> tuple[int, dict[str, int]]:
    """Push ``jobs`` jobs while a pool runs them; half way, let the replicas fall ``REPLICA_LAG_S`` behind and
    SIGKILL the master. Returns how many acknowledged pushes are lost, and the errors the pushes met."""
    client = pyq.Client(ha.url, durable_enqueue=durable, durable_enqueue_timeout_s=0.5)
    producer = Producer(client, batch=50, limit=jobs, pause_s=0.02)  # ~2,500 jobs/s: still pushing at the kill
    with running_pool(tmp_path, ha.url, require=["hajobs"], processes=2, concurrency=10) as proc:
        wait_until(lambda: ha.master().scard(KEYS.processes) == 2, timeout=30)
        producer.start()
        wait_until(lambda: len(producer.acked) >= jobs // 2, timeout=60, interval=0.001)
        ha.kill_master(lag_s=REPLICA_LAG_S)
        producer.join(60)
        new_master = ha.master()
        assert len(producer.acked) == jobs
        wait_until(lambda: new_master.llen(KEYS.queue("default")) == 0, timeout=60)
        stop_pool(proc)
    return len(set(producer.acked) - in_redis(new_master)), producer.errors


@pytest.mark.slow
@pytest.mark.timeout(120)  # the fixture may first wait ~15 s for the last test's killed master to rejoin
def test_a_failover_loses_no_durable_push(tmp_path: Path, ha: SentinelSet) -> None:
    lost, errors = lost_in_a_failover(tmp_path, ha, durable=1, jobs=20_000)
    print(f"acknowledged pushes lost in a failover with durable_enqueue: {lost} of 20000 ({errors})")
    assert lost == 0


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_failover_loses_pushes_that_are_not_durable(tmp_path: Path, ha: SentinelSet) -> None:
    lost, _ = lost_in_a_failover(tmp_path, ha, durable=0, jobs=20_000)
    print(f"acknowledged pushes lost in a failover without durable_enqueue: {lost} of 20000")
    assert 0 < lost < 20_000  # what the master acknowledged while its replicas lagged


@pytest.mark.slow
def test_the_documented_sentinel_config_runs_a_pool(tmp_path: Path, ha: SentinelSet) -> None:
    # Given the example of docs/operations.md, pointed at these Sentinels
    example = doc_config("sentinel")
    hosts = ",".join(f"127.0.0.1:{port}" for port in ha.sentinel_ports)
    example["redis_url"] = (example["redis_url"].replace(":${REDIS_PASSWORD:-}@", "")
                            .replace("sentinel-1:26379,sentinel-2:26379,sentinel-3:26379", hosts))
    assert example["redis_url"] == ha.url and example["durable_enqueue"] == 1
    # Then a pool with those settings runs a job its durable client pushed
    settings = {k: v for k, v in example.items() if k != "redis_url"}
    with running_pool(tmp_path, example["redis_url"], require=["hajobs"], processes=1, **settings):
        config = load(tmp_path / "pool.yml", env={})
        assert (config.durable_enqueue, config.durable_enqueue_timeout_s) == (1, 0.5)
        pyq.Client.for_config(config).push({"class": "HARecord", "args": ["documented"]})
        wait_until(lambda: ha.master().sismember(DONE, "documented"), timeout=30)
