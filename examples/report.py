"""A long report job that publishes its progress in Redis, for a web page to poll.

While it runs, the hash ``examples:report:<jid>`` holds ``status`` (``running``, ``done``), ``progress``
(0-100) and, at the end, ``result``. The hash expires a day after the last update, so abandoned reports
clean up after themselves. A retry starts the report again and overwrites the same hash.

    jid = SalesReport.perform_async("2024-05", ["north", "south", "east", "west"])
    report_progress(jid)   # {"status": "running", "progress": 50} ... {"status": "done", ...}
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pyq
from pyq.client import default_client

log = logging.getLogger("examples.report")

#: Seconds a report's progress hash outlives its last update.
PROGRESS_TTL_S = 86_400


def progress_key(jid: str) -> str:
    """The application key holding one report's progress."""
    return f"examples:report:{jid}"


def report_progress(jid: str) -> dict[str, Any]:
    """What a status page shows: status, progress and, once done, the result."""
    raw = default_client().redis.hgetall(progress_key(jid))
    fields = {k.decode(): v.decode() for k, v in raw.items()}
    out: dict[str, Any] = {"status": fields.get("status", "queued"), "progress": int(fields.get("progress", 0))}
    if "result" in fields:
        out["result"] = json.loads(fields["result"])
    return out


def region_total(month: str, region: str) -> int:
    """The slow part of a real report (a database query); a deterministic stand-in here."""
    return sum(map(ord, f"{month}:{region}")) * 10


class SalesReport(pyq.Job, name="Reports::SalesReport"):
    """Totals per region for one month; progress after each region."""

    queue = "low"
    retry = 3

    def perform(self, month: str, regions: list[str]) -> None:
        totals: dict[str, int] = {}
        self._update(status="running", progress=0)
        for done, region in enumerate(regions, start=1):
            totals[region] = region_total(month, region)
            self._update(progress=done * 100 // len(regions))
        self._update(status="done", progress=100, result=json.dumps({"month": month, "totals": totals}))
        log.info("sales report %s for %s done", self.jid, month)

    def _update(self, **fields: Any) -> None:
        key = progress_key(self.jid or "inline")
        pipe = default_client().redis.pipeline()
        pipe.hset(key, mapping=fields)
        pipe.expire(key, PROGRESS_TTL_S)
        pipe.execute()
