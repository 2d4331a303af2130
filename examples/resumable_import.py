"""Importing a big CSV file in one job that survives a deploy, and reports its progress.

``ImportUsers`` is an iterable job: ``build_enumerator`` hands out the file's rows with their byte
offsets as cursors, ``each_iteration`` stores one row. When the worker stops (a deploy sends TERM),
the job finishes the row it is on, saves its cursor and goes back to its queue; the next worker seeks
to that row and carries on. Killed outright, it resumes from the cursor saved a second before. Rows
land in the Redis hash ``examples:users`` keyed by email, so a row imported twice after a crash is
just written again. Progress (rows done of rows in the file) needs no code:

    jid = ImportUsers.perform_async("/data/users.csv")
    pyq.progress(jid)   # Progress(done=1200, total=5000, ...), also in `pyq busy` and the dashboard
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pyq
from pyq.iteration import csv_enumerator

log = logging.getLogger("examples.resumable_import")

#: Where imported rows land: email -> JSON row (an application key, not one of pyq's).
USERS_KEY = "examples:users"


class ImportUsers(pyq.IterableJob):
    """One CSV file, one row per iteration; a run longer than 10 minutes makes room for other jobs."""

    queue = "low"
    max_iteration_runtime = 600

    def build_enumerator(self, path: str, *, cursor: Any) -> Any:
        return csv_enumerator(path, cursor=cursor)

    def each_iteration(self, row: dict[str, str], path: str) -> None:
        redis = pyq.current().redis  # type: ignore[union-attr]
        redis.hset(USERS_KEY, row["email"].strip().lower(), json.dumps({"email": row["email"], "name": row["name"]}))

    def on_resume(self) -> None:
        log.info("resuming at byte %s (run %d)", self.cursor, self.executions)

    def on_complete(self) -> None:
        log.info("import done after %d run(s)", self.executions)
