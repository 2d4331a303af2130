"""PinnedConnection: the fetcher's and acker's script calls on a connection of their own thread."""

from __future__ import annotations

import os
import threading

import redis

from conftest import RedisServer
from pyq import scripts
from pyq.connection import PinnedConnection, connect
from pyq.keys import Keys

KEYS = Keys()


#: The name this module's connections carry, so other tests' idle connections on the shared Redis are not counted.
NAME = "pinned-test"


def _client_ids(r: redis.Redis) -> set[int]:
    return {c["id"] for c in r.client_list() if c.get("name") == NAME and c.get("cmd") == "evalsha"}


def _pinned(url: str) -> PinnedConnection:
    return PinnedConnection(connect(url, client_name=NAME))


def _ack_nothing(conn: PinnedConnection) -> object:
    """A real pyq script call (an ack of nothing), run through ``conn``."""
    return scripts.ack(KEYS, "host:1:abc", raws=[]).run(conn)


def test_calls_from_the_owning_thread_share_one_connection(r: redis.Redis, redis_url: str) -> None:
    pinned = _pinned(redis_url)
    for _ in range(20):
        _ack_nothing(pinned)
    # Then Redis saw every EVALSHA on one client, and the pool handed out one connection only
    assert len(_client_ids(r)) == 1
    assert len(pinned.client.connection_pool._in_use_connections) == 1


def test_a_call_from_another_thread_goes_through_the_pool(r: redis.Redis, redis_url: str) -> None:
    pinned = _pinned(redis_url)
    _ack_nothing(pinned)
    results: list[object] = []
    worker = threading.Thread(target=lambda: results.append(_ack_nothing(pinned)))
    worker.start()
    worker.join()
    assert len(results) == 1 and not isinstance(results[0], Exception)
    # the other thread's call used a pool connection, which is back in the pool
    assert len(pinned.client.connection_pool._in_use_connections) == 1
    assert len(pinned.client.connection_pool._available_connections) == 1


def test_a_killed_connection_is_replaced_and_the_call_still_runs(r: redis.Redis, redis_url: str) -> None:
    pinned = _pinned(redis_url)
    _ack_nothing(pinned)
    [first] = _client_ids(r)
    r.client_kill_filter(_id=first)
    # When the next call finds its connection closed, it runs anyway, and the one after reconnects
    assert _ack_nothing(pinned) is not None
    _ack_nothing(pinned)
    assert first not in _client_ids(r)


def test_after_a_redis_restart_the_script_is_loaded_again() -> None:
    server = RedisServer().start()
    try:
        pinned = _pinned(server.url)
        _ack_nothing(pinned)
        server.stop()
        server.start()
        # Then the first call after the restart reconnects, gets NOSCRIPT, loads the script and runs it
        assert _ack_nothing(pinned) is not None
    finally:
        server.stop()


def test_a_forked_child_opens_its_own_connection(r: redis.Redis, redis_url: str) -> None:
    pinned = _pinned(redis_url)
    _ack_nothing(pinned)
    done, hold = os.pipe(), os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: calls on the inherited object, then waits to be let go
        ok = all(_ack_nothing(pinned) is not None for _ in range(20))
        os.write(done[1], b"1" if ok else b"0")
        os.read(hold[0], 1)
        os._exit(0)
    try:
        assert os.read(done[0], 1) == b"1"
        _ack_nothing(pinned)
        # Then parent and child each ran their calls on a connection of their own
        assert len(_client_ids(r)) == 2
    finally:
        os.write(hold[1], b"x")
        os.waitpid(pid, 0)


def test_on_a_cluster_the_connection_goes_to_the_slots_node_and_follows_the_slot_when_it_moves(
        redis_cluster, cluster_url: str) -> None:
    # Given a pinned connection on a cluster client, used for a namespace whose slot holds no key yet
    keys = Keys("pinned-moves", cluster=True)
    pinned = PinnedConnection(connect(cluster_url, cluster=True))
    fetch = scripts.fetch(keys, "host:1:abc", ["default"], count=1)
    assert fetch.run(pinned) == []
    slot = pinned.client.keyslot(keys.queue("default"))
    first = pinned.client.nodes_manager.get_node_from_slot(slot)
    assert pinned._conn.port == first.port
    # When the slot is handed to another primary (empty, so no key has to migrate)
    other = next(n for n in pinned.client.get_primaries() if n.name != first.name)
    other_id = pinned.client.cluster_myid(other)
    for node in redis_cluster.nodes:
        redis.Redis(port=node.port).execute_command("CLUSTER", "SETSLOT", slot, "NODE", other_id)
    # Then the old node's MOVED reply is followed: the call runs, and the next one is pinned to the new node
    assert scripts.enqueue(keys, "default", at_s=None, payloads=['{"class":"X","args":[]}']).run(pinned.client) == 1
    assert len(fetch.run(pinned)) == 2  # [queue index, raw]: the job pushed on the new node
    assert fetch.run(pinned) == [] and pinned._conn.port == other.port
