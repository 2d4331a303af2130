"""One job: its fields, args, error, decoded backtrace, retry history and whole payload, with its actions.

Reached from a set (``?set=dead&key=SCORE|JID``, found by exact score) or a
queue (``?queue=NAME&key=PLACE|JID``, found near its place). pyq and Sidekiq
keep a job's last error only, so the history is what the payload and its
score record: first failure, last retry, count and limit, next retry or death.
"""

from __future__ import annotations

import json
from typing import Any

from ... import payload
from ...api.queues import parse_queue_key
from .. import render as html
from ..context import Ctx
from ..render import cell
from .sets import SETS

FIELDS = ("class", "wrapped", "jid", "queue", "bid", "created_at", "enqueued_at", "retry", "tags")
TIMES = ("created_at", "enqueued_at", "failed_at", "retried_at")


def render(ctx: Ctx) -> tuple[str, str]:
    key, set_name, queue = ctx.arg("key"), ctx.arg("set"), ctx.arg("queue")
    if set_name:
        if set_name not in SETS:
            raise LookupError(f"no set {set_name!r}")
        entry = ctx.api.set_entry(set_name, key)
        if entry is None or entry.job is None:
            raise LookupError(f"no job {key!r} in {set_name} (retried, deleted or moved since)")
        job, score, place = entry.job, entry.score, SETS[set_name]
        actions = place[3]
        buttons = "".join(html.button(ctx.root, a, label, ctx.token, set=set_name, one=key, back=place[0])
                          for a, label in actions)
        where = html.link(ctx.url(place[0]), place[1])
    else:
        try:
            place, jid = parse_queue_key(key)
        except ValueError:
            raise LookupError(f"not a job key: {key!r}") from None
        raw = ctx.api.queue_find(queue, place, jid)
        job = payload.try_loads(raw) if raw is not None else None
        if job is None:
            raise LookupError(f"no job {jid!r} in queue {queue!r} (run or deleted since)")
        score, set_name = None, ""
        buttons = html.button(ctx.root, "queue_delete", "Delete", ctx.token, queue=queue, one=key,
                              back=html.queue_path(queue))
        where = html.link(ctx.url(html.queue_path(queue)), f"queue {queue}")
    body = (f"<p>in {where}</p><div class='bar'>{buttons}</div>"
            + html.section("Job", html.table(("field", "value"), _fields(job), "job-fields"), "job")
            + html.section("Arguments", html.pretty(job.get("args")), "args")
            + _error(job) + html.section("Retry history", html.table(("", ""), _history(job, set_name, score),
                                                                     "retry-history"), "history")
            + html.section("Payload", html.pretty(job), "payload"))
    return f"Job {job.get('jid', '?')}", body


def _fields(job: dict[str, Any]) -> list[tuple[str, str]]:
    rows = []
    for name in FIELDS:
        if name in job:
            value = job[name]
            value = html.when(payload.to_epoch_s(value)) + " UTC" if name in TIMES else \
                value if isinstance(value, str) else json.dumps(value, default=str)
            rows.append((cell(name), cell(value)))
    return rows


def _error(job: dict[str, Any]) -> str:
    if not job.get("error_class") and not job.get("error_message"):
        return ""
    lines = payload.read_backtrace(job.get("error_backtrace"))
    inner = (f"<p id='error'><b>{cell(job.get('error_class', ''))}</b>: {cell(job.get('error_message', ''))}</p>"
             + (html.backtrace(lines) if lines else "<p class='empty'>no backtrace kept (the job's backtrace "
                                                    "option is off)</p>"))
    return html.section("Error", inner, "error-section")


def _history(job: dict[str, Any], set_name: str, score: float | None) -> list[tuple[str, str]]:
    limit = job.get("retry")
    rows = [("retry_count", job.get("retry_count", "-")),
            ("retry limit", "true (the pool's default)" if limit is True else limit if limit is not None else "-"),
            ("first failed (UTC)", html.when(payload.to_epoch_s(job.get("failed_at")))),
            ("last retried (UTC)", html.when(payload.to_epoch_s(job.get("retried_at"))))]
    if set_name == "retry":
        rows.append(("next retry (UTC)", html.when(score)))
    elif set_name == "dead":
        rows.append(("died (UTC)", html.when(score)))
    elif set_name == "schedule":
        rows.append(("runs at (UTC)", html.when(score)))
    for past in job.get("error_history") or []:  # kept by some middlewares: one row per earlier error
        rows.append(("earlier error", past))
    return [(cell(k), cell(v)) for k, v in rows]
