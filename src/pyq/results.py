"""Job results, opt in per job with ``result_ttl``: the return value (or the error that ended the job) under its jid.

A job pushed with ``result_ttl`` (a payload field Ruby ignores) has what it returned stored in
``pyq:result:JID`` for that many seconds, encoded with msgpack: on success, and once it ends for
good without succeeding (dead or discarded; a failure that will be retried stores nothing). The key
is a list of one element, so a caller waits for it with a blocking ``BLMOVE key key``, which hands
back the element and leaves it in place: every waiter wakes the moment it is written, none polls.

The acker writes the result in the pipeline that acknowledges the job, just before the ack, so a job
that was acked has its result stored; a worker killed before that runs the job again. A Ruby worker writes
nothing: :meth:`JobHandle.result` then times out, and :meth:`JobHandle.status` reads where the job is.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import msgpack
from redis.exceptions import RedisError

from . import scripts
from .errors import PyqError
from .keys import Keys
from .locate import locate

log = logging.getLogger("pyq.results")

#: The payload field that asks for a stored result, in seconds.
RESULT_TTL_FIELD = "result_ttl"
#: Longest single blocking wait (below pyq's socket timeout); longer waits loop.
_WAIT_CHUNK_S = 5.0
#: Where a job can be, as :meth:`JobHandle.status` names it.
STATUSES = ("queued", "scheduled", "running", "retrying", "done", "dead", "unknown")


class JobFailed(PyqError):
    """The job ended without succeeding (dead, or discarded); carries the error it stored."""

    def __init__(self, jid: str, error_class: str, error_message: str) -> None:
        super().__init__(f"job {jid} failed: {error_class}: {error_message}")
        self.jid, self.error_class, self.error_message = jid, error_class, error_message


def encode_value(value: Any) -> bytes:
    """The stored form of a return value; raises TypeError when msgpack cannot encode it."""
    return msgpack.packb({"ok": True, "value": value}, use_bin_type=True)


def encode_error(error_class: str, error_message: str) -> bytes:
    return msgpack.packb({"ok": False, "error_class": error_class, "error_message": error_message},
                         use_bin_type=True)


def decode(jid: str, blob: bytes) -> Any:
    """The value stored in ``blob``, or :class:`JobFailed` raised with the stored error."""
    stored = msgpack.unpackb(blob, raw=False)
    if stored.get("ok"):
        return stored.get("value")
    raise JobFailed(jid, stored.get("error_class", ""), stored.get("error_message", ""))


def ttl_s(job: dict[str, Any], definition: Any = None) -> int | None:
    """Seconds to keep this job's result: the payload's ``result_ttl``, else its definition's (a job pushed
    by a client that did not know the option, Ruby's included), else None: store nothing."""
    ttl = job.get(RESULT_TTL_FIELD)
    if ttl is None and definition is not None:
        ttl = definition.options.get(RESULT_TTL_FIELD)
    try:
        return max(1, int(float(ttl))) if ttl else None
    except (TypeError, ValueError):  # a malformed field from another client: no result rather than no ack
        log.warning("jid=%s has an unusable result_ttl %r; no result is stored", job.get("jid"), ttl)
        return None


def encoded_value(job: dict[str, Any], value: Any) -> bytes:
    """What a job returned, ready to store; a value msgpack cannot encode becomes, and is logged as, its error.

    The acker stores it (``lua/store_results.lua``) in the pipeline that acks the job.
    """
    try:
        return encode_value(value)
    except (TypeError, ValueError, OverflowError) as exc:
        log.error("jid=%s returned a value that cannot be stored as a result: %s: %s", job.get("jid"),
                  type(exc).__name__, exc)
        return encode_error(type(exc).__name__, f"the return value cannot be stored: {exc}")


def store_error(redis: Any, keys: Keys, job: dict[str, Any], exc: BaseException, ttl: int) -> None:
    """Store the error that ended a job for good (dead or discarded), with the script the acker stores values with."""
    blob = encode_error(job.get("error_class") or type(exc).__name__, job.get("error_message") or str(exc))
    call = scripts.store_results(keys, results=[(job["jid"], ttl, blob, str(job.get("bid") or ""))])
    with contextlib.suppress(RedisError):  # each failure is logged; the job itself is settled already
        call.run_retried(redis, attempts=3, what=f"store the result of jid={job['jid']}")


def result(redis: Any, keys: Keys, jid: str, timeout_s: float | None = None) -> Any:
    """The job's result, waiting up to ``timeout_s`` (None: forever) for it to be stored.

    Raises :class:`JobFailed` for a job that ended without succeeding, TimeoutError when nothing was
    stored in time (the job has not finished, was pushed without ``result_ttl``, ran on a Ruby worker,
    or its result expired).
    """
    key = keys.result(jid)
    end = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        left = _WAIT_CHUNK_S if end is None else min(_WAIT_CHUNK_S, end - time.monotonic())
        blob = redis.lindex(key, 0) if left <= 0 else redis.blmove(key, key, left, "LEFT", "LEFT")
        if blob is not None:
            return decode(jid, blob)
        if end is not None and time.monotonic() >= end:
            raise TimeoutError(f"no result for job {jid} after {timeout_s}s")


def status(redis: Any, keys: Keys, jid: str) -> str:
    """Where the job is now: one of :data:`STATUSES` (a stored result says done or dead, else :func:`locate`)."""
    blob = redis.lindex(keys.result(jid), 0)
    if blob is not None:
        try:
            decode(jid, blob)
            return "done"
        except JobFailed:
            return "dead"
    return locate(redis, keys, jid).place


class JobHandle(str):
    """The jid of a pushed job (it is that string), with its result and status.

    ``perform_async`` returns one, so code that kept the jid keeps working.
    """

    client: Any

    def __new__(cls, jid: str, client: Any) -> JobHandle:
        handle = super().__new__(cls, jid)
        handle.client = client
        return handle

    @property
    def jid(self) -> str:
        return str(self)

    def result(self, timeout: float | None = None) -> Any:
        """The return value, blocking up to ``timeout`` seconds; see :func:`result`."""
        return result(self.client.redis, self.client.keys, self.jid, timeout)

    async def aresult(self, timeout: float | None = None) -> Any:
        """:meth:`result` for asyncio code: the wait runs in a thread, the loop stays free."""
        return await asyncio.to_thread(self.result, timeout)

    def status(self) -> str:
        """queued, scheduled, running, retrying, done, dead or unknown."""
        return status(self.client.redis, self.client.keys, self.jid)
