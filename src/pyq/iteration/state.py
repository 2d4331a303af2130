"""An iterable job's state in Sidekiq 7.3's hash ``it-JID``, read and written as Ruby's ``Sidekiq::IterableJob`` does.

Fields, as Ruby writes them (and reads them back with ``to_i`` / ``JSON.parse`` / ``to_f``):

- ``ex``: executions so far (an integer), counting the one that runs now;
- ``c``: the cursor as JSON (``null`` before the first item), compact as Ruby's ``JSON.generate``;
- ``rt``: seconds spent iterating over all executions (a float);
- ``cancelled``: epoch seconds (an integer) when someone cancelled the job (``HSETNX``, so the first wins).

pyq adds ``pyq_done``, the items done before the saved cursor, so that progress counts on from there
after a resume; Ruby reads only its own fields. Each save renews the hash's 30-day TTL (Ruby keeps
it "as long as the job might be retrying"); a job that completes deletes it.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from ..connection import reply_float, reply_int, text
from ..keys import Keys

#: Sidekiq's field names.
EXECUTIONS, CURSOR, RUNTIME, CANCELLED = "ex", "c", "rt", "cancelled"
#: pyq's own field: items done before the saved cursor.
DONE = "pyq_done"
#: Seconds the state outlives its last save (Sidekiq's STATE_TTL, one month).
STATE_TTL_S = 30 * 86_400


@dataclass
class IterationState:
    """What one execution starts from and saves as it goes."""

    executions: int = 0
    cursor: Any = None
    runtime_s: float = 0.0
    done: int = 0
    cancelled_at: int | None = None

    @property
    def cancelled(self) -> bool:
        return self.cancelled_at is not None


def encode_cursor(cursor: Any) -> str:
    """The cursor as Ruby's ``JSON.generate`` writes it; a cursor JSON cannot carry is a TypeError."""
    try:
        return json.dumps(cursor, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"an iteration cursor must be JSON (str, int, float, bool, None, list, dict): "
                        f"{cursor!r}: {exc}") from None


def decode_cursor(raw: str | None) -> Any:
    """The cursor a save (Ruby's or pyq's) stored; a field that is missing or not JSON reads as None."""
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


class StateStore:
    """Reads and saves one job's ``it-JID`` hash; with no Redis (inline test mode) nothing is stored."""

    def __init__(self, redis: Any, keys: Keys, jid: str) -> None:
        self.redis = redis
        self.key = keys.iteration(jid)
        self.saves = 0  #: saves sent to Redis

    def load(self) -> IterationState:
        if self.redis is None:
            return IterationState()
        raw = {text(k): text(v) for k, v in self.redis.hgetall(self.key).items()}
        cancelled = raw.get(CANCELLED)
        return IterationState(executions=reply_int(raw.get(EXECUTIONS)), cursor=decode_cursor(raw.get(CURSOR)),
                              runtime_s=reply_float(raw.get(RUNTIME)), done=reply_int(raw.get(DONE)),
                              cancelled_at=reply_int(cancelled) if cancelled is not None else None)

    def save(self, state: IterationState) -> bool:
        """Save executions, cursor, runtime and items done (one transaction, as Ruby's flush); True if cancelled."""
        fields = {EXECUTIONS: state.executions, CURSOR: encode_cursor(state.cursor),
                  RUNTIME: repr(float(state.runtime_s)), DONE: state.done}
        if self.redis is None:
            return False
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(self.key, mapping=fields)
        pipe.expire(self.key, STATE_TTL_S)
        pipe.hget(self.key, CANCELLED)
        cancelled = pipe.execute()[2]
        self.saves += 1
        return cancelled is not None

    def cancelled(self) -> bool:
        """Whether the ``cancelled`` field is set (by Ruby's ``cancel!``, ``pyq.cancel`` or :func:`cancel`)."""
        return self.redis is not None and self.redis.hget(self.key, CANCELLED) is not None

    def delete(self) -> None:
        if self.redis is not None:
            self.redis.unlink(self.key)


def cancel(redis: Any, keys: Keys, jid: str, now_s: float | None = None) -> int:
    """Mark ``jid`` cancelled as Ruby's ``Sidekiq::Client#cancel!`` does; returns the cancel time that holds.

    The running job stops at its next item; a job that has not started yet stops before its first.
    """
    key = keys.iteration(jid)
    pipe = redis.pipeline(transaction=False)
    pipe.hsetnx(key, CANCELLED, int(time.time() if now_s is None else now_s))
    pipe.hget(key, CANCELLED)
    pipe.expire(key, STATE_TTL_S)
    return reply_int(text(pipe.execute()[1]))
