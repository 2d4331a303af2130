"""Queues (names, sizes, latency, clear) and one queue's jobs, paged by index, the last to run first.

A queue's page lists its Sidekiq list and its jobs with a priority (``pyq:prio:NAME``) as one sequence,
in the reverse of the order a fetch takes them (:meth:`pyq.api.queues.QueueOps.queue_page`). A list has
no MATCH scan: the filter reads a bounded window of ``FILTER_WINDOW`` jobs from ``?start=`` and shows
the matches in it, with a link to the next window.
"""

from __future__ import annotations

from ... import payload, priority
from ...api.stats import queue_stats
from .. import render
from ..context import Ctx
from ..render import cell
from .paging import PAGE_SIZE, span
from .sets import short_args

FILTER_WINDOW = 5000
ACTIONS = (("queue_delete", "Delete"),)


def listing(ctx: Ctx) -> str:
    stats = queue_stats(ctx.redis, ctx.keys, ctx.api.queue_names())
    needle = ctx.arg("q")
    stats = [q for q in stats if needle in q.name] if needle else stats
    page, pages, start = span(ctx, len(stats))
    rows = [(render.link(ctx.url(render.queue_path(q.name)), q.name), cell(q.size), cell(q.latency_s),
             render.button(ctx.root, "queue_clear", "Clear", ctx.token, queue=q.name, back=ctx.here))
            for q in stats[start:start + PAGE_SIZE]]
    return (render.filter_form(needle, "queue name", refresh=ctx.refresh_s)
            + render.pager(ctx.root, "/queues", page, pages, q=needle, refresh=ctx.refresh_s)
            + render.table(("queue", "size", "latency (s)", ""), rows, "queues-table"))


def one(ctx: Ctx) -> tuple[str, str]:
    name, needle = ctx.path, ctx.arg("q")
    total, path = ctx.api.queue_size(name), render.queue_path(name)
    if needle:
        start = ctx.int_arg("start", 0, 0, 2**62)
        jobs, after = ctx.api.queue_filter(name, needle, start, FILTER_WINDOW)
        nav = (f"<p class='pager' id='pager'>{len(jobs)} matching among jobs {start}..{start + FILTER_WINDOW - 1}; "
               + (render.link(ctx.url(path, q=needle, start=after), "next window", rel="next") if after
                  else "<span id='scan-done'>end of queue</span>") + "</p>")
    else:
        page, pages, first = span(ctx, total)
        jobs = ctx.api.queue_page(name, first, PAGE_SIZE)
        nav = render.pager(ctx.root, path, page, pages, refresh=ctx.refresh_s)
    rows = []
    for queued in jobs:
        job = queued.job or {}
        jid, key = str(job.get("jid") or ""), queued.key
        rows.append((render.checkbox(key) if jid else "", cell(queued.place), cell(priority.priority_of(job)),
                     render.link(ctx.url("/job", queue=name, key=key), jid or "?"),
                     cell(job.get("wrapped") or job.get("class", "?")),
                     f"<div class='args'>{cell(short_args(job.get('args')))}</div>",
                     cell(render.when(payload.to_epoch_s(job.get("enqueued_at")))),
                     render.row_button(ctx.root, "queue_delete", "Delete", key) if jid else ""))
    table = render.table((render.select_all(), "place", "priority", "jid", "class", "args", "enqueued (UTC)", ""),
                         rows,
                         "jobs-table")
    clear = render.button(ctx.root, "queue_clear", "Clear queue (delete all)", ctx.token, queue=name, back="/queues")
    body = (f"<p id='count'>{total} jobs in {cell(name)}, the last to run first</p>" + render.filter_form(needle)
            + nav + render.bulk_form(ctx.root, ctx.token, table, ACTIONS, "jobs", queue=name, back=ctx.here)
            + f"<div class='bar all'>{clear}</div>")
    return f"Queue {name}", body

