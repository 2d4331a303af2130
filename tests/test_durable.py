"""``durable_enqueue``: a push waits for replicas (``WAIT``) and raises NotDurable when too few have it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

import pyq
from conftest import RedisServer
from pyq.config import load
from pyq.errors import ConfigError
from pyq.keys import Keys

QUEUE = Keys().queue("default")


@pytest.fixture(scope="module")
def replicated() -> Iterator[tuple[RedisServer, RedisServer]]:
    """A primary with one replica in sync."""
    primary = RedisServer(None, "--repl-diskless-sync-delay", "0").start()
    replica = RedisServer(None, "--replicaof", "127.0.0.1", str(primary.port)).start()
    conn = redis.Redis(port=primary.port)
    try:
        while conn.wait(1, 1000) < 1:
            conn.incr("test:sync")
        yield primary, replica
    finally:
        replica.stop()
        primary.stop()


def test_a_durable_push_returns_once_the_replica_has_it(replicated: tuple[RedisServer, RedisServer]) -> None:
    primary, replica = replicated
    client = pyq.Client(primary.url, durable_enqueue=1, durable_enqueue_timeout_s=2)
    jid = client.push({"class": "Record", "args": ["d"]})
    jids = client.push_bulk({"class": "Record", "args": [["a"], ["b"]]})
    # WAIT returned: the replica has every job already, no polling needed
    on_replica = redis.Redis(port=replica.port).lrange(QUEUE, 0, -1)
    assert all(j.encode() in b"".join(on_replica) for j in [jid, *jids])


def test_a_push_that_too_few_replicas_hold_raises_and_is_still_queued(
        replicated: tuple[RedisServer, RedisServer]) -> None:
    primary, _ = replicated
    conn = redis.Redis(port=primary.port)
    conn.delete(QUEUE)
    client = pyq.Client(primary.url, durable_enqueue=2, durable_enqueue_timeout_s=0.2)
    with pytest.raises(pyq.NotDurable, match="1 of 2 replica") as err:
        client.push({"class": "Record", "args": ["x"]})
    assert (err.value.acked, err.value.wanted) == (1, 2)
    assert conn.llen(QUEUE) == 1  # stored on the primary: durable or not, it may run


def test_without_durable_enqueue_a_push_never_waits(redis_url: str, r: redis.Redis) -> None:
    r.config_resetstat()
    client = pyq.Client(redis_url)  # a server without replicas: WAIT 1 would fail
    client.push({"class": "Record", "args": ["x"]})
    assert r.llen(QUEUE) == 1
    assert r.info("commandstats").get("cmdstat_wait") is None


def test_the_config_keys_reach_the_pool_client() -> None:
    config = load(None, overrides={"durable_enqueue": 1, "durable_enqueue_timeout": 0.25}, env={})
    client = pyq.Client.for_config(config, connection=object())
    assert (client.durability.replicas, client.durability.timeout_s) == (1, 0.25)
    with pytest.raises(ConfigError, match="durable_enqueue"):
        load(None, overrides={"durable_enqueue": -1}, env={})
