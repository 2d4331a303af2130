"""Thread helpers for the worker: short ids for the Web UI, stack dumps, interrupting job threads."""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import sys
import threading
import time
import traceback
from collections.abc import Sequence

log = logging.getLogger("pyq.worker")

_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


def thread_id() -> str:
    """A short opaque id for the Web UI's work table (Sidekiq uses base 36)."""
    n = threading.get_ident() ^ os.getpid()
    out = ""
    while n:
        n, r = divmod(n, 36)
        out = _DIGITS[r] + out
    return out or "0"


def dump_threads() -> None:
    """TTIN: every thread's stack to the log."""
    frames = sys._current_frames()
    for thread in threading.enumerate():
        frame = frames.get(thread.ident or -1)
        stack = "".join(traceback.format_stack(frame)) if frame else "(no frame)\n"
        log.warning("thread %s (%s):\n%s", thread.name, thread.ident, stack.rstrip())


def interrupt(threads: Sequence[threading.Thread], exc: type[BaseException], grace_s: float) -> None:
    """Raise ``exc`` in each live thread at its next Python bytecode, then wait up to ``grace_s`` for all.

    A thread blocked in C (a socket read, ``time.sleep``) sees it only when it returns to Python; the
    wait is bounded so a stuck job cannot hold the process.
    """
    for thread in threads:
        if thread.is_alive() and thread.ident:
            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread.ident), ctypes.py_object(exc))
    end = time.monotonic() + grace_s
    for thread in threads:
        thread.join(max(0.0, end - time.monotonic()))


def cancel_all(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel every task of ``loop`` (call it on the loop's thread)."""
    for task in asyncio.all_tasks(loop):
        task.cancel()


def interrupt_jobs(executors: Sequence[threading.Thread], loop: asyncio.AbstractEventLoop | None,
                   exc: type[BaseException], grace_s: float) -> None:
    """Stop every running job: cancel the loop's tasks (async jobs), interrupt the executor threads (sync ones)."""
    if loop is not None:
        loop.call_soon_threadsafe(cancel_all, loop)
    interrupt(executors, exc, grace_s)
