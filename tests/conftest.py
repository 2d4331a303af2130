"""Shared fixtures: a real redis-server on a free loopback port, flushed before every test."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

import pyq
from pyq.client import Client


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """A redis-server child process; tests may stop and restart it to inject faults."""

    def __init__(self, port: int | None = None, *extra: str) -> None:
        self.port = port or free_port()
        self.dir = tempfile.mkdtemp(prefix="pyq-redis-")
        self.extra = extra
        self.ping_options: dict[str, object] = {}  # how to reach it to see it is up (TLS servers: ssl=True, ...)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        binary = shutil.which("redis-server")
        if binary is None:
            if os.environ.get("CI"):
                pytest.fail("redis-server is not installed (CI must install it)")
            pytest.skip("redis-server is not installed")
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", self.dir, *self.extra],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                redis.Redis(port=self.port, socket_timeout=1, **self.ping_options).ping()
                return self
            except redis.ConnectionError:
                time.sleep(0.02)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


def run_loop_for(run: Callable[[threading.Event], None], seconds: float) -> bool:
    """Run a ``run(stop_event)`` loop in a thread for ``seconds``, then stop it; True if it stopped in time.

    For the loops that must survive Redis being away: the thread has to be alive all along
    and leave once the event is set.
    """
    stop = threading.Event()
    thread = threading.Thread(target=run, args=(stop,), daemon=True)
    thread.start()
    time.sleep(seconds)
    alive_throughout = thread.is_alive()
    stop.set()
    thread.join(5)
    return alive_throughout and not thread.is_alive()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer().start()
    yield server
    server.stop()
    shutil.rmtree(server.dir, ignore_errors=True)


@pytest.fixture
def redis_url(redis_server: RedisServer) -> Iterator[str]:
    conn = redis.Redis(port=redis_server.port)
    conn.flushall()
    conn.script_flush()
    yield redis_server.url
    conn.close()


@pytest.fixture
def r(redis_url: str) -> Iterator[redis.Redis]:
    """A plain redis-py connection to the test server (bytes in, bytes out)."""
    conn = redis.Redis.from_url(redis_url)
    yield conn
    conn.close()


@pytest.fixture
def client(redis_url: str) -> Iterator[Client]:
    """pyq's client, also installed as the process default for perform_async."""
    c = pyq.configure(redis_url=redis_url)
    yield c
    c.redis.close()


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[Any]:
    """A real 3-primary Redis Cluster (tests/cluster.py), started only for the tests that ask for it."""
    from cluster import ClusterServers

    servers = ClusterServers().start()
    yield servers
    servers.stop()


@pytest.fixture
def cluster_url(redis_cluster: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A flushed cluster's URL; ``PYQ_CLUSTER`` is set, so pools and the jobs of workerjobs use cluster clients."""
    redis_cluster.flush()
    monkeypatch.setenv("PYQ_CLUSTER", "true")
    yield redis_cluster.url


@pytest.fixture
def rc(cluster_url: str) -> Iterator[Any]:
    """A redis-py cluster client (bytes in, bytes out)."""
    from redis.cluster import RedisCluster

    conn = RedisCluster.from_url(cluster_url)
    yield conn
    conn.close()


@pytest.fixture
def cluster_client(cluster_url: str) -> Iterator[Client]:
    """pyq's client in cluster mode, also installed as the process default for perform_async."""
    c = pyq.configure(redis_url=cluster_url, cluster=True)
    yield c
    c.redis.close()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked ``long`` go first: a worker starts on their file at once, the others take the rest."""
    items.sort(key=lambda item: item.get_closest_marker("long") is None)
