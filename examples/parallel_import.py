"""A big import split into slices that run in parallel, and one report once every slice has succeeded.

The Sidekiq pattern ``ids.each_slice(100) { |slice| ProcessSliceJob.perform_later(slice) }`` fans the work
out but cannot tell when all of it is done. In a batch it can:

    bid = import_all(42, user_ids)       # 100 ids a job, pushed in one round trip
    pyq.Batch.status(bid).pending        # slices not yet done
    # once the last slice succeeds, report_import(42) runs and stores the report
"""

from __future__ import annotations

from collections.abc import Sequence

import pyq

#: Ids per job.
SLICE = 100
#: Where report_import leaves its report: a hash per import.
REPORT_KEY = "example:import:{}:report"


@pyq.job(queue="default", result_ttl=86_400)
def process_slice(import_id: int, ids: list[int]) -> int:
    """Imports one slice; returns how many rows it imported, kept for the report."""
    return len(set(ids))


@pyq.job(queue="default")
def report_import(import_id: int) -> None:
    """The batch's on_success callback: sums what each slice returned and stores the report."""
    status = pyq.current().batch_callback.status()
    imported = sum(status.results().values())
    pyq.current().redis.hset(REPORT_KEY.format(import_id), mapping={
        "slices": status.total, "rows": imported, "finished_at": status.success_at or 0})


@pyq.job(queue="default")
def import_stalled(import_id: int) -> None:
    """The batch's on_death callback: a slice exhausted its retries."""
    status = pyq.current().batch_callback.status()
    pyq.current().redis.hset(REPORT_KEY.format(import_id), mapping={"dead_slices": len(status.dead_jids)})


def import_all(import_id: int, ids: Sequence[int]) -> str:
    """Pushes the slices as one batch; returns its bid."""
    with pyq.Batch(f"import {import_id}", on_success=(report_import, [import_id]),
                   on_death=(import_stalled, [import_id])) as batch:
        process_slice.perform_bulk([[import_id, list(ids[i:i + SLICE])] for i in range(0, len(ids), SLICE)])
    return batch.bid
