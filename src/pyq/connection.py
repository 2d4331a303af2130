"""Redis connections from URLs, and URLs made safe to log.

Accepted: ``redis://``, ``rediss://`` (TLS), ``unix://`` and Sentinel as
``redis+sentinel://[:password@]host:port[,host:port...]/service_name[/db]``.
"""

from __future__ import annotations

import os
import re
import ssl
import threading
from typing import Any
from urllib.parse import unquote, urlsplit

import redis

from .cluster import REROUTED, slot_pool

#: ``scheme://user:password@``; the password runs to the last ``@`` of the word, since it may hold ``/`` or ``@``.
_CREDENTIALS = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:@/\s'\"]*)(?::(?P<pw>[^\s'\"]*))?@", re.I)
#: ``?password=...`` (redis-py reads any query argument as a connection option).
_QUERY_PASSWORD = re.compile(r"(?P<name>[?&](?:ssl_)?password=)[^&#\s'\"]*", re.I)

#: Seconds before a socket read gives up; longer than any blocking wait pyq issues.
SOCKET_TIMEOUT_S = 10.0


def text(value: bytes | str) -> str:
    """A Redis reply as text: pyq's clients return bytes (no decode_responses), names are UTF-8."""
    return value.decode(errors="replace") if isinstance(value, bytes) else value


def reply_int(value: Any) -> int:
    """A count or id read from Redis (bytes, text, a number or None) as an int; 0 when it is none."""
    try:
        return int(value)
    except (TypeError, ValueError):
        try:
            return int(float(value))
        except (TypeError, ValueError, OverflowError):
            return 0


def reply_float(value: Any) -> float:
    """A time or duration read from Redis (bytes, text, a number or None) as a float; 0.0 when it is none."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def redact(url: str) -> str:
    """The URL (or a message holding URLs) with every password replaced by ``***`` (for logs and errors)."""
    masked = _CREDENTIALS.sub(lambda m: f"{m['scheme']}{m['user']}{':***' if m['pw'] is not None else ''}@",
                              url)
    return _QUERY_PASSWORD.sub(lambda m: f"{m['name']}***", masked)


#: Replies no retry can heal: a wrong or missing password (WRONGPASS, NOAUTH) or an ACL denial (NOPERM).
PERMANENT_ERRORS = (redis.AuthenticationError, redis.exceptions.NoPermissionError)



def tls_refusal(exc: BaseException) -> ssl.SSLError | None:
    """The TLS certificate error behind ``exc``, if that is what it is: the server's certificate does not
    verify against the CA, or the server wants a client certificate. No retry heals either."""
    cause = exc.__cause__ or exc.__context__
    if isinstance(cause, ssl.SSLCertVerificationError) or (
            isinstance(cause, ssl.SSLError) and "CERTIFICATE" in str(getattr(cause, "reason", "") or "")):
        return cause
    return None


#: Run once at start: pyq needs PING, SCRIPT LOAD and EVALSHA; an ACL that refuses them stops the pool.
_PROBE_LUA = "return 1"


def probe(conn: redis.Redis) -> None:
    """Raise unless ``conn`` answers and may run scripts (the commands every pyq process uses)."""
    conn.ping()
    conn.evalsha(conn.script_load(_PROBE_LUA), 0)


def connect(url: str, *, cluster: bool = False, **options: Any) -> redis.Redis:
    """A client for ``url`` (a Redis Cluster client when ``cluster``); ``options`` go to redis-py."""
    options.setdefault("socket_timeout", SOCKET_TIMEOUT_S)
    options.setdefault("socket_connect_timeout", 5.0)
    options.setdefault("health_check_interval", 30)
    if cluster:
        from .cluster import cluster_client

        return cluster_client(url, options)
    if url.startswith("redis+sentinel://"):
        return _sentinel(url, options)
    return redis.Redis.from_url(url, **options)


def _sentinel(url: str, options: dict[str, Any]) -> redis.Redis:
    """The master of a Sentinel service; redis-py asks the Sentinels again after every connection error.

    The URL's user and password authenticate to the master and to the Sentinels alike (a Sentinel
    without ``requirepass`` accepts them too); socket timeouts apply to both, so a hung Sentinel is skipped.
    """
    from redis.sentinel import Sentinel

    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    auth = {"username": unquote(parts.username) if parts.username else None,
            "password": unquote(parts.password) if parts.password else None}
    auth = {k: v for k, v in auth.items() if v}
    path = [p for p in parts.path.split("/") if p]
    if not path:
        raise ValueError(f"Sentinel URL needs a service name: {redact(url)}")
    hosts = []
    for hostport in netloc.split(","):
        host, _, port = hostport.partition(":")
        hosts.append((host, int(port or 26379)))
    db = int(path[1]) if len(path) > 1 else 0
    timeouts = {k: v for k, v in options.items() if k.startswith("socket_")}
    sentinel = Sentinel(hosts, sentinel_kwargs={**timeouts, **auth})
    return sentinel.master_for(path[0], db=db, **auth, **options)


class PinnedConnection:
    """Runs one thread's script calls on a connection of its own, past redis-py's per-call machinery.

    ``Redis.evalsha`` checks a connection out of the pool, wraps the call in its retry
    helper and hands it back for every call: about 25 µs of CPU a call on this path,
    more than the round trip itself. The fetcher and the acker make most of pyq's calls,
    each from its one thread, so each keeps one connection and sends EVALSHA on it
    directly. A connection error drops that connection and makes the call again through
    ``Redis.evalsha``, so failures take redis-py's own path (its retries, reconnects,
    Sentinel's master lookup); a call from any other thread, or after a fork, takes that
    path too. On a Redis Cluster the connection goes to the node serving pyq's slot; a reply that
    the slot moved (MOVED, a failover) drops it the same way. Duck-types what
    :class:`pyq.scripts.Scripts` calls on a client.
    """

    def __init__(self, client: Any) -> None:
        self.client = client
        self._owner: tuple[int, int] | None = None  # (pid, thread id) the connection belongs to
        self._conn: Any = None
        self._pool: Any = None  # the pool the connection came from (on a cluster: its slot's node's)
        self._direct = isinstance(client, redis.Redis) and not isinstance(client, redis.client.Pipeline)

    def evalsha(self, sha: str, numkeys: int, *keys_and_args: Any) -> Any:
        conn = self._connection(keys_and_args[0] if numkeys else None)
        if conn is None:
            return self.client.evalsha(sha, numkeys, *keys_and_args)
        try:
            conn.send_command("EVALSHA", sha, numkeys, *keys_and_args)
            return conn.read_response()
        except (redis.ConnectionError, redis.TimeoutError, *REROUTED):  # the last: the slot moved (a cluster)
            self._drop(conn)
            return self.client.evalsha(sha, numkeys, *keys_and_args)

    def script_load(self, text: str) -> Any:
        """Load on the connection that got NOSCRIPT, not on a pooled one that may reach another server."""
        conn = self._owned()
        if conn is None:
            return self.client.script_load(text)
        try:
            conn.send_command("SCRIPT", "LOAD", text)
            return conn.read_response()
        except (redis.ConnectionError, redis.TimeoutError, *REROUTED):
            self._drop(conn)
            return self.client.script_load(text)

    def _drop(self, conn: Any) -> None:
        """Give a failed connection back; the next call takes one from the pool, which connects afresh.

        Sending on a disconnected redis-py connection reconnects to the address it had, and under
        Sentinel that is the old master: once that server is back as a replica, every call on it would
        fail. The pool's connect step asks the Sentinels where the master is now; on a cluster the next
        call takes a connection from the pool of the slot's node of then.
        """
        conn.disconnect()
        self._pool.release(conn)
        self._owner = self._conn = self._pool = None

    def _connection(self, key: Any) -> Any:
        """This thread's connection, taken from the pool on first use; None off the owning thread.

        On a cluster it comes from the pool of the node that serves ``key``'s slot, the slot of
        every key pyq has (:mod:`pyq.cluster`).
        """
        pool = self.client.connection_pool if self._direct else slot_pool(self.client, key)
        if pool is None:
            return None
        me = (os.getpid(), threading.get_ident())
        if self._owner is None or self._owner[0] != me[0]:  # first use, or a fork made a new process
            self._owner, self._conn, self._pool = me, pool.get_connection(), pool
        return self._conn if self._owner == me else None

    def _owned(self) -> Any:
        """This thread's connection if it has one already, else None."""
        return self._conn if self._owner == (os.getpid(), threading.get_ident()) else None
