"""Durable enqueue: a push returns only once ``replicas`` replicas hold it (``WAIT`` after the push).

Redis replicates asynchronously: a push the primary acknowledged can still be lost when the primary
dies before its replicas read it, and Sentinel promotes one of them. With ``durable_enqueue: N`` a
push also sends ``WAIT N timeout`` on the same connection, in the same round trip; a reply below N
raises :class:`pyq.errors.NotDurable`. The job is then on the primary (it may run) but a failover
could still lose it: push it again if it must not be lost (a job may then run twice, pyq's delivery
is at-least-once anyway), or drop it.
"""

from __future__ import annotations

from dataclasses import dataclass

from .connection import reply_int
from .errors import NotDurable


@dataclass(frozen=True)
class Durability:
    """How many replicas must hold each push, and how long a push waits for them."""

    replicas: int = 0  #: 0 = off: a push returns once the primary has it
    timeout_s: float = 1.0  #: longest wait for the replicas; WAIT's 0 (forever) is never sent

    def __post_init__(self) -> None:
        if self.replicas < 0 or self.timeout_s <= 0:
            raise ValueError(f"durable_enqueue needs replicas >= 0 and a timeout > 0, got {self}")

    @property
    def on(self) -> bool:
        return self.replicas > 0

    def command(self) -> tuple[object, ...]:
        """``WAIT numreplicas timeout_ms``, run after the push on the connection that made it."""
        return ("WAIT", self.replicas, max(1, round(self.timeout_s * 1000)))

    def check(self, reply: object) -> None:
        """Raise :class:`NotDurable` unless ``WAIT`` counted enough replicas."""
        if isinstance(reply, Exception):
            raise reply
        acked = reply_int(reply)
        if acked < self.replicas:
            raise NotDurable(acked, self.replicas, self.timeout_s)
