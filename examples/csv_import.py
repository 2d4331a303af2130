"""Importing a large CSV file: one job reads it and fans the rows out in batches.

``import_csv`` streams the file and pushes one ``import_rows`` job per ``batch_size`` rows with
``perform_bulk``: all batches go to Redis in one round trip, and each batch retries on its own, so a bad
row costs one batch, not the whole import. Rows are stored in the Redis hash ``examples:users`` as a
stand-in for a database table; ``import_rows`` is idempotent (keyed by email), which is what
at-least-once delivery asks of every job.

    import_csv.perform_async("/data/users.csv", 500)
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Iterator

import pyq
from pyq.client import default_client

log = logging.getLogger("examples.csv_import")

#: Where imported rows land: email -> JSON row (an application key, not one of pyq's).
USERS_KEY = "examples:users"
#: Columns every row must have.
COLUMNS = ("email", "name")


def batches(path: str, batch_size: int) -> Iterator[list[dict[str, str]]]:
    """The file's rows, ``batch_size`` at a time, without reading it all into memory."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: missing column(s) {', '.join(missing)}")
        batch: list[dict[str, str]] = []
        for row in reader:
            batch.append({c: row[c] for c in COLUMNS})
            if len(batch) == batch_size:
                yield batch
                batch = []
        if batch:
            yield batch


@pyq.job(queue="low", retry=3)
def import_csv(path: str, batch_size: int = 500) -> int:
    """Fan out: one ``import_rows`` job per batch, all pushed in one round trip."""
    jids = import_rows.perform_bulk([batch] for batch in batches(path, batch_size))
    log.info("%s: %d batch job(s) enqueued", path, len(jids))
    return len(jids)


@pyq.job(queue="low", retry=5)
def import_rows(rows: list[dict[str, str]]) -> None:
    """Store one batch; a rerun overwrites the same fields, so it is safe to run twice."""
    redis = default_client().redis
    redis.hset(USERS_KEY, mapping={row["email"].strip().lower(): json.dumps(row) for row in rows})
