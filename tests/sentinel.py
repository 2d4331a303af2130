"""A real Sentinel deployment on loopback: a master, two replicas and three sentinels, for failover tests.

Two replicas, so that the new master still has one after the old master is killed: durable pushes
(``WAIT 1``) go on succeeding while the old master is restarted and turned into a replica.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import redis

from conftest import RedisServer, free_port
from pool import wait_until

SERVICE = "mymaster"
#: Sentinel settings: a master silent for 1 s is down; a quorum of 2 of the 3 sentinels fails it over.
_SENTINEL_CONF = """port {port}
bind 127.0.0.1
dir {dir}
sentinel monitor {service} 127.0.0.1 {master_port} 2
sentinel down-after-milliseconds {service} 1000
sentinel failover-timeout {service} 3000
sentinel parallel-syncs {service} 1
"""

#: A replica's first sync starts at once (Redis waits 5 s by default for more replicas to join).
_FAST_SYNC = ("--repl-diskless-sync-delay", "0")


def sentinel_binary() -> str:
    binary = shutil.which("redis-sentinel")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("redis-sentinel is not installed (CI must install it)")
        pytest.skip("redis-sentinel is not installed")
    return binary


class SentinelSet:
    """Master, replicas and three sentinels; :meth:`kill_master` and :meth:`failover` move the master."""

    def __init__(self, replicas: int = 2) -> None:
        self.replicas = replicas
        self.dir = Path(tempfile.mkdtemp(prefix="pyq-sentinel-"))
        self.servers: dict[int, RedisServer] = {}  # port -> server, the master and the replica
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.sentinels: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)
        return f"redis+sentinel://{hosts}/{SERVICE}/0"

    def start(self) -> SentinelSet:
        binary = sentinel_binary()
        try:
            self._start(binary)
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self, binary: str) -> None:
        master = RedisServer(None, *_FAST_SYNC).start()
        self.servers = {master.port: master}
        for _ in range(self.replicas):
            replica = RedisServer(None, *_FAST_SYNC, "--replicaof", "127.0.0.1", str(master.port)).start()
            self.servers[replica.port] = replica
        for port in self.sentinel_ports:
            conf = self.dir / f"sentinel-{port}.conf"  # sentinels rewrite their file: one each
            conf.write_text(_SENTINEL_CONF.format(port=port, dir=self.dir, service=SERVICE, master_port=master.port))
            with open(self.dir / f"sentinel-{port}.log", "wb") as log:
                self.sentinels.append(subprocess.Popen([binary, str(conf)], stdout=log, stderr=subprocess.STDOUT))
        wait_until(self._settled, timeout=60, interval=0.1)

    def _settled(self) -> bool:
        """Every sentinel knows the replicas (in sync) and the two other sentinels."""
        try:
            for port in self.sentinel_ports:
                state = self.sentinel(port).sentinel_master(SERVICE)
                if state["num-slaves"] < self.replicas or state["num-other-sentinels"] < 2:
                    return False
            return self.replica_in_sync()
        except (redis.ConnectionError, redis.ResponseError):
            return False

    def sentinel(self, port: int | None = None) -> redis.Redis:
        return redis.Redis(port=port or self.sentinel_ports[0], socket_timeout=2, decode_responses=True)

    def master_port(self) -> int:
        """The master's port as a majority of the sentinels report it."""
        seen = [int(self.sentinel(p).sentinel_get_master_addr_by_name(SERVICE)[1]) for p in self.sentinel_ports]
        return max(set(seen), key=seen.count)

    def master(self) -> redis.Redis:
        return redis.Redis(port=self.master_port(), socket_timeout=5)

    def replica_in_sync(self) -> bool:
        """Every replica has everything the master wrote up to now (a write, then ``WAIT``)."""
        conn = redis.Redis(port=self.master_port(), socket_timeout=5)
        try:
            conn.incr("test:sync")
            return conn.wait(self.replicas, 1000) >= self.replicas
        except redis.ResponseError:  # still a replica, or loading
            return False
        finally:
            conn.close()

    def failover(self) -> int:
        """``SENTINEL FAILOVER``: the replica is promoted while the master lives; returns the new master's port."""
        old = self.master_port()
        self.sentinel().sentinel_failover(SERVICE)
        return self.wait_for_new_master(old)

    def kill_master(self, lag_s: float = 0.0) -> int:
        """SIGKILL the master and wait for the sentinels to promote a replica; returns its port.

        ``lag_s`` > 0 first cuts the replicas off for that long, as a slow or broken link would: they are
        frozen (SIGSTOP, so they cannot reconnect) and the master drops their links, so what it
        acknowledges meanwhile reaches no replica.
        """
        old = self.master_port()
        self.crash_master(lag_s)
        return self.wait_for_new_master(old)

    def crash_master(self, lag_s: float = 0.0) -> None:
        """SIGKILL the master with its replicas frozen meanwhile, so nothing it took after ``lag_s`` reaches
        them; returns at once, before the Sentinels have noticed (see :meth:`kill_master`)."""
        old = self.master_port()
        replicas = [server.proc for port, server in self.servers.items() if port != old and server.proc]
        for proc in replicas:
            os.kill(proc.pid, signal.SIGSTOP)
        try:
            if lag_s:
                redis.Redis(port=old, socket_timeout=5).client_kill_filter(_type="replica")
                time.sleep(lag_s)
            proc = self.servers[old].proc
            assert proc is not None
            proc.kill()
            proc.wait(10)
            self.servers[old].proc = None
        finally:
            for replica in replicas:
                os.kill(replica.pid, signal.SIGCONT)

    def restart_old_master(self, port: int, wait: bool = True) -> None:
        """Start the killed server again (empty); the sentinels turn it into a replica of the new master.

        That takes them about 10 s; ``wait=False`` returns at once (see :meth:`whole`).
        """
        self.servers[port].start()
        if wait:
            self.whole()

    def whole(self) -> None:
        """Wait until every replica, a restarted old master included, follows the master and is in sync."""
        wait_until(self.replica_in_sync, timeout=60, interval=0.1)

    def master_role_settled(self) -> bool:
        """Exactly one server calls itself master: Sentinel has demoted the old one (after a planned failover
        it stays writable for ~10 s, until the sentinels turn it into a replica)."""
        roles = []
        for server in self.servers.values():
            if server.proc is not None:
                with contextlib.suppress(redis.RedisError):
                    roles.append(redis.Redis(port=server.port, socket_timeout=2).info("replication")["role"])
        return roles.count("master") == 1

    def wait_for_new_master(self, old: int) -> int:
        started = time.monotonic()
        new = wait_until(lambda: (p := self.master_port()) != old and p, timeout=30, interval=0.05)
        self.failover_s = time.monotonic() - started
        wait_until(lambda: redis.Redis(port=new, socket_timeout=2).info("replication")["role"] == "master",
                   timeout=15)
        return new

    def stop(self) -> None:
        for proc in self.sentinels:
            proc.kill()
            proc.wait(10)
        for server in self.servers.values():
            server.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
        for server in self.servers.values():
            shutil.rmtree(server.dir, ignore_errors=True)
