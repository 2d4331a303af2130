"""Jobs for the time-limit and cancellation tests, run in real pyq processes (``require: [limitjobs]``).

Each job records in the test Redis (``PYQ_REDIS_URL``) when it started and how it ended.
"""

from __future__ import annotations

import asyncio
import socket
import time

import pyq
from workerjobs import conn


@pyq.job(name="SleepsForever", timeout=1)
def sleeps_forever(token: str) -> None:
    conn().rpush("test:started", token)
    time.sleep(3600)


@pyq.job(name="AsyncSleepsForever", timeout=1)
async def async_sleeps_forever(token: str) -> None:
    conn().rpush("test:started", token)
    await asyncio.sleep(3600)


@pyq.job(name="ReadsForever", timeout=1)
def reads_forever(token: str, port: int) -> None:
    """A read on a socket whose peer never sends: blocked in C, so only the hard limit ends it."""
    sock = socket.create_connection(("127.0.0.1", port))
    conn().rpush("test:started", token)
    sock.recv(1)


@pyq.job(name="SpinsForever", timeout=1)
def spins_forever(token: str) -> None:
    """Pure Python: JobTimeout lands in its thread at the limit."""
    conn().rpush("test:started", token)
    n = 0
    while True:
        n += 1


@pyq.job(name="Rendezvous")
def rendezvous(token: str, parties: int) -> None:
    """Finishes only when ``parties`` of its kind run at the same time: proof of that many free slots."""
    r = conn()
    r.incr("test:rendezvous")
    end = time.monotonic() + 10
    while int(r.get("test:rendezvous") or 0) < parties:
        if time.monotonic() > end:
            raise RuntimeError("the other parties never ran alongside")
        time.sleep(0.01)
    r.rpush("test:done", token)


@pyq.job(name="Cooperative")
def cooperative(token: str) -> None:
    """Loops until interrupted, then records when it noticed and raises why."""
    ctx = pyq.current()
    assert ctx is not None
    conn().rpush("test:started", token)
    while not ctx.interrupted:
        time.sleep(0.001)
    conn().rpush("test:stopped", f"{token}:{time.time()!r}:{int(ctx.cancelled)}")
    ctx.raise_if_interrupted()


@pyq.job(name="AsyncCooperative")
async def async_cooperative(token: str) -> None:
    ctx = pyq.current()
    assert ctx is not None
    conn().rpush("test:started", token)
    while not ctx.interrupted:
        await asyncio.sleep(0.001)
    conn().rpush("test:stopped", f"{token}:{time.time()!r}:{int(ctx.cancelled)}")
    ctx.raise_if_interrupted()


@pyq.job(name="Fails", retry=3)
def fails(token: str) -> None:
    raise RuntimeError(f"fails {token}")


@pyq.job(name="NotesTimeout")
def notes_timeout(token: str) -> None:
    """Sees JobTimeout at its limit and records what its context says then."""
    ctx = pyq.current()
    assert ctx is not None
    try:
        while True:
            time.sleep(0.001)
    except pyq.JobTimeout:
        conn().rpush("test:stopped", f"{token}:{int(ctx.interrupted)}:{int(ctx.cancelled)}")
        ctx.raise_if_interrupted()
