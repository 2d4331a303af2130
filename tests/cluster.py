"""A real Redis Cluster on loopback for tests: 3 primaries, every slot assigned, torn down afterwards."""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import pytest
import redis
from redis.cluster import RedisCluster

from conftest import RedisServer, free_port

#: Primaries in the test cluster (``redis-cli --cluster create`` needs at least 3).
PRIMARIES = 3
#: Milliseconds before an unreachable node counts as failed (and its replica is promoted).
NODE_TIMEOUT_MS = 2000


class ClusterServers:
    """``redis-server --cluster-enabled yes`` nodes joined by ``redis-cli --cluster create``; with
    ``replicas``, each primary gets that many replicas, which take over when it fails."""

    def __init__(self, count: int = PRIMARIES, replicas: int = 0) -> None:
        self.replicas = replicas
        self.nodes = [RedisServer(None, "--cluster-enabled", "yes", "--cluster-port", str(free_port()),
                                  "--cluster-node-timeout", str(NODE_TIMEOUT_MS), "--cluster-config-file",
                                  "nodes.conf")
                      for _ in range(count * (1 + replicas))]

    @property
    def url(self) -> str:
        """A URL naming one live node; the cluster client finds the others from it."""
        return next(node for node in self.nodes if node.proc is not None).url

    def start(self) -> ClusterServers:
        cli = shutil.which("redis-cli")
        if cli is None:
            if os.environ.get("CI"):
                pytest.fail("redis-cli is not installed (CI must install redis-tools)")
            pytest.skip("redis-cli is not installed")
        for node in self.nodes:
            node.start()
        addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
        subprocess.run([cli, "--cluster", "create", *addresses, "--cluster-replicas", str(self.replicas),
                        "--cluster-yes"],
                       check=True, capture_output=True, timeout=30)
        self._wait_ok()
        return self

    def _wait_ok(self, timeout_s: float = 30.0) -> None:
        """Until every live node says ``cluster_state:ok`` and knows every other one."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            live = [node for node in self.nodes if node.proc is not None]
            infos = [redis.Redis(port=node.port).cluster("info") for node in live]
            if all(i.get("cluster_state") == "ok" and int(i.get("cluster_known_nodes", 0)) == len(self.nodes)
                   for i in infos) and self._replicas_synced(live):
                return
            time.sleep(0.1)
        raise RuntimeError("the test cluster did not reach cluster_state:ok")

    @staticmethod
    def _replicas_synced(live: list[RedisServer]) -> bool:
        roles = [redis.Redis(port=node.port).info("replication") for node in live]
        return all(r.get("master_link_status", "up") == "up" for r in roles if r.get("role") == "slave")

    def primary_of(self, key: str) -> RedisServer:
        """The node serving ``key``'s slot now."""
        node = self.client().get_node_from_key(key)
        return next(n for n in self.nodes if n.port == int(node.port))

    def kill(self, node: RedisServer) -> None:
        """SIGKILL one node, as a crashed host would go."""
        assert node.proc is not None
        node.proc.kill()
        node.proc.wait()
        node.proc = None

    def client(self) -> RedisCluster:
        return RedisCluster.from_url(self.url)

    def flush(self) -> None:
        """Empty every primary and drop its scripts (one test's keys must not leak into the next)."""
        for node in self.nodes:
            conn = redis.Redis(port=node.port)
            conn.flushall()
            conn.script_flush()
            conn.close()

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
            shutil.rmtree(node.dir, ignore_errors=True)
