"""Wakes an idle worker the moment any client pushes to one of its queues, Ruby's included.

A worker serving several queues cannot block on them in order (BLMOVE takes one list), and a Ruby
client's ``LPUSH queue:NAME`` leaves none of pyq's wake-up markers. Redis's client tracking in
broadcast mode (``CLIENT TRACKING ON BCAST PREFIX queue:NAME ... REDIRECT id``, Redis 6+, no server
configuration, unlike keyspace notifications) sends an invalidation message for every write to a
matching key to a connection subscribed to ``__redis__:invalidate``: the idle wait blocks on that
connection. Tracking is switched on only while the worker is idle and off once it has a backlog,
so a busy worker gets no message per job.

On a Redis Cluster nothing is tracked: every push there is pyq's own (Ruby Sidekiq cannot share a
cluster's hash-tagged key names) and leaves a wake-up marker, so the wake lists lose no latency.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from redis.exceptions import RedisError, ResponseError

from .cluster import is_cluster

log = logging.getLogger("pyq.fetch")

INVALIDATE_CHANNEL = "__redis__:invalidate"


def broadcast_prefixes(keys: Sequence[str]) -> list[str]:
    """The keys as tracking prefixes; Redis refuses overlapping ones, and the shorter one covers both."""
    kept: list[str] = []
    for key in sorted(set(keys), key=lambda k: (len(k), k)):
        if not any(key.startswith(shorter) for shorter in kept):
            kept.append(key)
    return kept


class PushWatch:
    """One listening and one controlling connection of ``redis``'s pool, for one worker's queue keys."""

    def __init__(self, redis: Any, queue_keys: Sequence[str]) -> None:
        self._redis = redis
        self._prefixes = broadcast_prefixes(queue_keys)
        self._listener: Any = None
        self._listener_id: Any = None
        self._control: Any = None
        #: False once Redis refused tracking, or on a cluster: the caller waits for wake markers instead
        self.available = not is_cluster(redis)
        self.armed = False

    def arm(self) -> bool:
        """Switch tracking on (if it is off); False when this Redis cannot track. True means: wait."""
        if not self.available or self.armed:
            return self.available
        try:
            listener_id = self._connect()
            prefixes = [word for prefix in self._prefixes for word in ("PREFIX", prefix)]
            self._call("CLIENT", "TRACKING", "ON", "REDIRECT", listener_id, "BCAST", *prefixes)
        except ResponseError as exc:  # an old server, a proxy or an ACL without CLIENT: no tracking here
            log.info("client tracking unavailable (%s): idle workers wait for pyq's wake-up markers", exc)
            self.available = False
            self.close()
            return False
        except (RedisError, OSError):
            self.close()
            raise
        self.armed = True
        return True

    def wait(self, timeout_s: float) -> bool:
        """Block until a write to a watched queue or ``timeout_s``; True if one came. Drains what arrived."""
        try:
            seen = bool(self._listener.can_read(timeout=timeout_s))
            while self._listener.can_read(timeout=0):
                self._listener.read_response(push_request=True)
        except (RedisError, OSError):
            self.close()
            raise
        return seen

    def disarm(self) -> None:
        """Switch tracking off (the worker is busy): Redis stops sending a message per write."""
        if not self.armed:
            return
        try:
            self._call("CLIENT", "TRACKING", "OFF")
            self.armed = False
        except (RedisError, OSError):
            self.close()
            raise

    def close(self) -> None:
        for conn in (self._listener, self._control):
            if conn is not None:
                conn.disconnect()
        self._listener = self._control = None
        self.armed = False

    def _connect(self) -> Any:
        """Open both connections (as the pool would: TLS, password, Sentinel); returns the listener's id."""
        if self._listener is None:
            self._listener = self._redis.connection_pool.make_connection()
            self._listener.connect()
            self._listener.send_command("CLIENT", "ID")
            self._listener_id = self._listener.read_response()
            self._listener.send_command("SUBSCRIBE", INVALIDATE_CHANNEL)
            self._listener.read_response(push_request=True)
        if self._control is None:
            self._control = self._redis.connection_pool.make_connection()
            self._control.connect()
        return self._listener_id

    def _call(self, *args: Any) -> Any:
        self._control.send_command(*args)
        return self._control.read_response()
