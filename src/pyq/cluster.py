"""Redis Cluster (``cluster: true``): the client, and the questions code asks about the client it was given.

Every key of a cluster deployment carries one hash tag (:class:`pyq.keys.Keys` with ``cluster``), so
all of pyq's state lives in one slot: scripts, ``MULTI``/``WATCH`` transactions and multi-key commands
work unchanged, routed by redis-py's cluster client to the primary that owns the slot and following
it when the slot moves (a failover, a resharding). The fetch fast path
(``connection.PinnedConnection``) keeps one connection to the node serving the slot
(:func:`slot_pool`); push tracking (``pushwatch``, which asks :func:`is_cluster`) is not used.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis.cluster import ClusterPipeline, RedisCluster
from redis.exceptions import AskError, ClusterDownError, MovedError, TryAgainError

#: Replies saying that a slot is served elsewhere now, or for a moment by no one; redis-py's cluster
#: client follows them (and refreshes its slot map), a connection pinned to one node cannot.
REROUTED = (MovedError, AskError, TryAgainError, ClusterDownError)


def cluster_client(url: str, options: dict[str, Any]) -> Any:
    """A cluster client started from the node ``url`` names (it discovers the rest with CLUSTER SLOTS)."""
    return RedisCluster.from_url(url, **options)


def is_cluster(client: Any) -> bool:
    """True for a cluster client or one of its pipelines (a ``ClusterPipeline`` is a ``RedisCluster``)."""
    return isinstance(client, RedisCluster)


def route(client: Any, keys: Sequence[str]) -> dict[str, Any]:
    """Options that send a pipelined script call straight to the node serving its first key's slot.

    A cluster pipeline otherwise asks a server (``COMMAND GETKEYS``, on the client's first node) where
    each EVALSHA goes: a round trip per call, and, while that node is down, an error redis-py's
    pipeline never heals, since it refreshes its slot map only when the target node fails. With the
    target given, a failed node refreshes the map, and a moved slot answers MOVED, which redis-py
    follows. ``{}`` for a plain client.
    """
    if not keys or not isinstance(client, RedisCluster):
        return {}
    return {"target_nodes": client.get_node_from_key(keys[0])}


def slot_pool(client: Any, key: Any) -> Any:
    """The connection pool of the node serving ``key``'s slot, on a cluster client; None on any other."""
    if key is None or not isinstance(client, RedisCluster) or isinstance(client, ClusterPipeline):
        return None
    return client.get_node_from_key(key).redis_connection.connection_pool


def slot_client(client: Any, key: str) -> Any:
    """Where to send a command that names no key but is about pyq's keys (``SCAN``): on a cluster, the plain
    client of the node serving ``key``'s slot, which holds every pyq key; any other client is itself."""
    if isinstance(client, RedisCluster) and not isinstance(client, ClusterPipeline):
        return client.get_node_from_key(key).redis_connection
    return client
