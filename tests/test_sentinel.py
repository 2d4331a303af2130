"""Sentinel failover against real servers: a master, a replica and three sentinels on loopback.

Workers and clients reach Redis through a ``redis+sentinel://`` URL. When the master moves (``SENTINEL
FAILOVER``, or a SIGKILL of the master) they follow it: running jobs finish, nothing crashes, and each
loop logs the outage once and then its end. Replication is asynchronous, so an acknowledged push can be
lost when the master dies; ``durable_enqueue`` equal to the number of replicas (``WAIT`` for all of them
after each push) closes that window, whichever replica Sentinel promotes.
"""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import redis

import pyq
from hajobs import RAN_LOG
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


def waiting(conn: redis.Redis) -> set[str]:
    """Tokens of jobs that still wait in a queue, the retry set or an in-flight list."""
    raws = list(conn.lrange(KEYS.queue("default"), 0, -1)) + list(conn.zrange(KEYS.retry, 0, -1))
    for key in conn.scan_iter("pyq:inflight:*"):
        raws += conn.lrange(key, 0, -1)
    return {m.group(1).decode() for raw in raws if (m := re.search(rb'"args":\s*\["([0-9]+)"\]', raw))}


def ran(tmp_path: Path) -> set[str]:
    """Tokens of jobs that ran, from ``hajobs.RAN_LOG`` (a failover can drop their records in Redis)."""
    return set((tmp_path / RAN_LOG).read_text().split())


def never_ran(tmp_path: Path, acked: list[str], waits: set[str]) -> int:
    """Acknowledged pushes that neither ran nor wait (``waits``, from :func:`waiting`): jobs lost."""
    return len(set(acked) - ran(tmp_path) - waits)


def pool_log(tmp_path: Path) -> str:
    return (tmp_path / "pool.log").read_text(errors="replace")


@pytest.mark.slow
@pytest.mark.timeout(150)
@pytest.mark.parametrize("move", ["failover", "kill"])
def test_pool_and_client_follow_the_new_master(tmp_path: Path, ha: SentinelSet, move: str) -> None:
    # Given a pool and a producer whose pushes wait for every replica, both reaching Redis through the
    # Sentinels. Sentinel may promote either replica (a planned failover picks one while the other still
    # follows the old master; after a crash it goes by the offsets it last read, which can predate the
    # last writes), so only a push that every replica holds is safe from both.
    client = pyq.Client(ha.url, durable_enqueue=ha.replicas, durable_enqueue_timeout_s=0.5)
    producer = Producer(client, batch=20, limit=10**9, pause_s=0.02)
    with running_pool(tmp_path, ha.url, require=["hajobs"], processes=2, concurrency=5,
                      heartbeat_interval=1) as proc:
        producer.start()
        wait_until(lambda: ha.master().scard(DONE) >= 200, timeout=30)
        workers = wait_until(lambda: len(pids := child_pids(proc.pid)) == 2 and pids)
        # When the master moves while jobs are being pushed and run
        old_port, refused = ha.master_port(), producer.errors.get("NotDurable", 0)
        ha.failover() if move == "failover" else ha.kill_master()
        new_master = ha.master()
        ran_before = wait_until(lambda: ha.master_role_settled() and new_master.scard(DONE) + 1, timeout=30) - 1
        if move == "kill":
            # one replica is left: no push is acknowledged until the crashed server is back (as a replica)
            wait_until(lambda: producer.errors.get("NotDurable", 0) >= refused + 3, timeout=30)
            ha.restart_old_master(old_port)
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
    lost = never_ran(tmp_path, producer.acked, waiting(new_master))
    print(f"durable pushes lost in a {move}: {lost} of {len(producer.acked)}")
    assert lost == 0


#: How far behind the replicas fall just before the master dies (they are frozen that long).
REPLICA_LAG_S = 0.3


class FailoverLosses(NamedTuple):
    never_ran: int  #: acknowledged pushes that neither ran nor wait on the new master: jobs lost
    missing: int  #: acknowledged pushes the new master has no trace of (some ran on the old master)
    errors: dict[str, int]  #: what the pushes met, by exception class


def lost_in_a_failover(tmp_path: Path, ha: SentinelSet, durable: int, jobs: int) -> FailoverLosses:
    """Push ``jobs`` jobs while a pool runs them; half way, let the replicas fall ``REPLICA_LAG_S`` behind and
    SIGKILL the master, then start it again."""
    client = pyq.Client(ha.url, durable_enqueue=durable, durable_enqueue_timeout_s=0.5)
    producer = Producer(client, batch=50, limit=jobs, pause_s=0.02)  # ~2,500 jobs/s: still pushing at the kill
    with running_pool(tmp_path, ha.url, require=["hajobs"], processes=2, concurrency=10) as proc:
        wait_until(lambda: ha.master().scard(KEYS.processes) == 2, timeout=30)
        producer.start()
        wait_until(lambda: len(producer.acked) >= jobs // 2, timeout=60, interval=0.001)
        old_port = ha.master_port()
        ha.kill_master(lag_s=REPLICA_LAG_S)
        ha.restart_old_master(old_port)  # pushes that wait for every replica go on once it is back
        producer.join(60)
        new_master = ha.master()
        assert len(producer.acked) == jobs
        wait_until(lambda: new_master.llen(KEYS.queue("default")) == 0, timeout=60)
        stop_pool(proc)
    waits = waiting(new_master)
    done = {t.decode() for t in new_master.smembers(DONE)}
    return FailoverLosses(never_ran(tmp_path, producer.acked, waits),
                          len(set(producer.acked) - done - waits), producer.errors)


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_failover_loses_no_durable_push(tmp_path: Path, ha: SentinelSet) -> None:
    losses = lost_in_a_failover(tmp_path, ha, durable=ha.replicas, jobs=20_000)
    print(f"with durable_enqueue: {ha.replicas}, of 20000 acknowledged pushes {losses.never_ran} never ran, "
          f"{losses.missing} left no trace on the new master ({losses.errors})")
    assert losses.never_ran == 0
    assert losses.errors.get("NotDurable", 0) > 0  # the pushes made while the replicas were cut off or one was gone


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_failover_loses_pushes_that_are_not_durable(tmp_path: Path, ha: SentinelSet) -> None:
    losses = lost_in_a_failover(tmp_path, ha, durable=0, jobs=20_000)
    print(f"without durable_enqueue, of 20000 acknowledged pushes {losses.never_ran} never ran, "
          f"{losses.missing} left no trace on the new master")
    # what the master acknowledged while its replicas lagged is gone; the jobs it ran meanwhile ran once
    assert 0 < losses.missing < 20_000


@pytest.mark.slow
def test_the_documented_sentinel_config_runs_a_pool(tmp_path: Path, ha: SentinelSet) -> None:
    # Given the example of docs/operations.md, pointed at these Sentinels
    example = doc_config("sentinel")
    hosts = ",".join(f"127.0.0.1:{port}" for port in ha.sentinel_ports)
    example["redis_url"] = (example["redis_url"].replace(":${REDIS_PASSWORD:-}@", "")
                            .replace("sentinel-1:26379,sentinel-2:26379,sentinel-3:26379", hosts))
    assert example["redis_url"] == ha.url and example["durable_enqueue"] == ha.replicas
    # Then a pool with those settings runs a job its durable client pushed
    settings = {k: v for k, v in example.items() if k != "redis_url"}
    with running_pool(tmp_path, example["redis_url"], require=["hajobs"], processes=1, **settings):
        config = load(tmp_path / "pool.yml", env={})
        assert (config.durable_enqueue, config.durable_enqueue_timeout_s) == (ha.replicas, 0.5)
        pyq.Client.for_config(config).push({"class": "HARecord", "args": ["documented"]})
        wait_until(lambda: ha.master().sismember(DONE, "documented"), timeout=30)
