"""The ``/metrics`` endpoint of a pool, served by a small child process of the supervisor.

Why a child process and not prometheus-client's HTTP thread: the supervisor
forks workers for its whole life (restarts), and forking a process that runs
other threads is unsafe (a lock held by the HTTP thread stays held forever in
the child). So the supervisor stays single-threaded: it binds the port itself
(a busy port is reported at start), forks this server like a worker, and
re-forks it if it dies. The server exits when the supervisor is gone.

Lifecycle (:class:`PoolMetrics`, driven by the supervisor):

1. ``start``: a fresh ``PROMETHEUS_MULTIPROC_DIR`` is set in the environment
   before any worker is forked (workers import prometheus-client after it);
   the port is bound and the server forked.
2. ``child_exited(pid)``: a dead worker's live-gauge files are dropped
   (``mark_process_dead``); its counter files stay, so totals survive restarts.
   The server itself is re-forked if it was the one that died.
3. ``stop``: the server is stopped and the directory removed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import tempfile
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

from ..config import Config
from ..context import Failure
from ..errors import CannotStart
from ..keys import Keys
from . import MULTIPROC_ENV

log = logging.getLogger("pyq.metrics")


class PoolMetrics:
    """The supervisor's handle on the metrics directory and server process (no-op without a port)."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.dir: str | None = None
        self.pid = 0
        self._sock: socket.socket | None = None
        self._jobs: Any = None

    @property
    def enabled(self) -> bool:
        return self.config.metrics_port is not None

    def count_failure(self, failure: Failure) -> None:
        """Count a failure the supervisor itself settled (a crash burial when it recovers a dead worker).

        Its counter files are the supervisor's own, in the directory the workers write to, so the
        server sums them with theirs; made on first use, after :meth:`start` set that directory.
        """
        if not self.enabled or self.dir is None:
            return
        if self._jobs is None:
            from .jobs import JobMetrics

            self._jobs = JobMetrics()
        self._jobs.count_failure(failure)

    def start(self) -> None:
        if not self.enabled:
            return
        self.dir = tempfile.mkdtemp(prefix="pyq-metrics-")
        os.environ[MULTIPROC_ENV] = self.dir
        try:
            self._sock = bind(self.config.metrics_host, int(self.config.metrics_port or 0))
        except OSError as exc:
            shutil.rmtree(self.dir, ignore_errors=True)
            raise CannotStart(f"metrics: cannot listen on {self.config.metrics_host}:{self.config.metrics_port}"
                              f" ({exc.strerror or exc})") from exc
        self._fork()

    def _fork(self) -> None:
        assert self._sock is not None and self.dir is not None
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:
            status = 1
            try:
                status = serve(self._sock, self.config, self.dir, parent)
            finally:
                os._exit(status)
        self.pid = pid
        log.info("metrics: serving /metrics on %s:%s (pid %d)", self.config.metrics_host,
                 self.config.metrics_port, pid)

    def child_exited(self, pid: int, stopping: bool) -> bool:
        """Tidy up after a reaped child; True when it was the metrics server."""
        if self.dir is None:
            return False
        if pid != self.pid:
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(pid, self.dir)
            return False
        self.pid = 0
        if not stopping:
            log.error("metrics: server process %d died; starting another", pid)
            self._fork()
        return True

    def stop(self) -> None:
        if self.pid:
            with contextlib.suppress(ProcessLookupError, ChildProcessError):
                os.kill(self.pid, signal.SIGTERM)
                os.waitpid(self.pid, 0)
            self.pid = 0
        if self._sock is not None:
            self._sock.close()
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket (IPv6 when the host is an IPv6 address)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(16)
    return sock


def serve(sock: socket.socket, config: Config, directory: str, parent: int) -> int:
    """Child process body: answer scrapes until the supervisor is gone or TERM arrives."""
    from prometheus_client import CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    from ..connection import connect
    from .collector import RedisCollector

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.SIG_DFL)
    for sig in (signal.SIGTSTP, signal.SIGTTIN):
        signal.signal(sig, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_SETMASK, set())
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=directory)
    redis = connect(config.redis_url, cluster=config.cluster)
    registry.register(RedisCollector(redis, Keys(config.namespace, cluster=config.cluster)))
    server = _server(sock, registry)
    while os.getppid() == parent:
        server.handle_request()
    return 0


def _server(sock: socket.socket, registry: Any) -> HTTPServer:
    handler = type("MetricsHandler", (_Handler,), {"registry": registry})
    server = HTTPServer(sock.getsockname()[:2], handler, bind_and_activate=False)
    server.socket.close()
    server.socket = sock
    server.timeout = 1.0  # wake up to notice the supervisor's death
    return server


class _Handler(BaseHTTPRequestHandler):
    registry: Any = None

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        if self.path.split("?")[0] not in ("/metrics", "/"):
            self.send_error(404, "only /metrics is served here")
            return
        body = generate_latest(self.registry)
        self.send_response(200)
        self.send_header("Content-Type", CONTENT_TYPE_LATEST)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature from http.server
        log.debug("metrics: " + format, *args)
