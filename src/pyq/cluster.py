"""Redis Cluster (``cluster: true``): the client, and the questions code asks about the client it was given.

Every key of a cluster deployment carries one hash tag (:class:`pyq.keys.Keys` with ``cluster``), so
all of pyq's state lives in one slot: scripts, ``MULTI``/``WATCH`` transactions and multi-key commands
work unchanged, routed by redis-py's cluster client to the primary that owns the slot and following
it when the slot moves (a failover, a resharding). What the cluster client has no use for is one raw
connection: the fetch fast path (``connection.PinnedConnection``, which takes only a plain client)
and push tracking (``pushwatch``, which asks :func:`is_cluster`) step aside and redis-py's routed
calls are made instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis.cluster import RedisCluster


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
