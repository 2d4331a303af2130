"""Cron: every sidekiq-cron schedule (pyq's and Ruby's) with Enable, Disable and Run now."""

from __future__ import annotations

from ...cron import CronStore
from .. import render as html
from ..context import Ctx
from ..render import cell
from .paging import in_memory

#: What the filter matches.
HINT = "name, class, queue, cron"


def render(ctx: Ctx) -> str:
    entries = CronStore(ctx.redis, ctx.keys, version=ctx.settings.cron_version).entries()
    shown, page, pages = in_memory(ctx, entries, lambda e: f"{e[0].name} {e[0].klass} {e[0].queue} {e[0].cron}")
    rows = []
    for job, last in shown:
        ident = {"name": job.name, "namespace": job.namespace or "", "back": ctx.here}
        toggle = ("cron_disable", "Disable") if job.status == "enabled" else ("cron_enable", "Enable")
        rows.append((cell(job.name), cell(job.namespace or "-"), cell(job.cron), cell(job.klass), cell(job.queue),
                     cell(job.status), cell(html.when(last)),
                     html.button(ctx.root, toggle[0], toggle[1], ctx.token, **ident)
                     + html.button(ctx.root, "cron_run", "Run now", ctx.token, **ident)))
    return (f"<p id='count'>{len(entries)} schedules</p>" + html.filter_form(ctx.arg("q"), HINT, refresh=ctx.refresh_s)
            + html.pager(ctx.root, "/cron", page, pages, q=ctx.arg("q"), refresh=ctx.refresh_s)
            + html.table(("name", "namespace", "cron", "class", "queue", "status", "last enqueue (UTC)", ""), rows,
                         "cron-table"))
