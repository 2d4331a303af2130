"""A real Redis Cluster on loopback for tests: 3 primaries, every slot assigned, torn down afterwards."""

from __future__ import annotations

import shutil
import subprocess
import time

import pytest
import redis
from redis.cluster import RedisCluster

from conftest import RedisServer, free_port

#: Primaries in the test cluster (``redis-cli --cluster create`` needs at least 3).
PRIMARIES = 3


class ClusterServers:
    """``redis-server --cluster-enabled yes`` nodes joined by ``redis-cli --cluster create``."""

    def __init__(self, count: int = PRIMARIES) -> None:
        self.nodes = [RedisServer(None, "--cluster-enabled", "yes", "--cluster-port", str(free_port()),
                                  "--cluster-node-timeout", "2000", "--cluster-config-file", "nodes.conf")
                      for _ in range(count)]

    @property
    def url(self) -> str:
        """A URL naming one node; the cluster client finds the others from it."""
        return self.nodes[0].url

    def start(self) -> ClusterServers:
        cli = shutil.which("redis-cli")
        if cli is None:
            pytest.skip("redis-cli is not installed")
        for node in self.nodes:
            node.start()
        addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
        subprocess.run([cli, "--cluster", "create", *addresses, "--cluster-replicas", "0", "--cluster-yes"],
                       check=True, capture_output=True, timeout=30)
        self._wait_ok()
        return self

    def _wait_ok(self, timeout_s: float = 30.0) -> None:
        """Until every node says ``cluster_state:ok`` and knows every other one."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            infos = [redis.Redis(port=node.port).cluster("info") for node in self.nodes]
            if all(i.get("cluster_state") == "ok" and int(i.get("cluster_known_nodes", 0)) == len(self.nodes)
                   for i in infos):
                return
            time.sleep(0.1)
        raise RuntimeError("the test cluster did not reach cluster_state:ok")

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
