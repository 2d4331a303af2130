"""Processes: every live process (pyq and Ruby Sidekiq), with Quiet and Stop for each and for all."""

from __future__ import annotations

from .. import render as html
from ..context import Ctx
from ..render import cell
from .paging import in_memory

#: What the filter matches.
HINT = "identity, host, tag, queue"


def render(ctx: Ctx) -> str:
    procs = ctx.api.processes()
    shown, page, pages = in_memory(ctx, procs, lambda p: f"{p.identity} {p.hostname} {p.tag} {' '.join(p.queues)}")
    rows = [(cell(p.identity), cell(p.tag or "-"), cell(",".join(p.queues)), cell(f"{p.busy}/{p.concurrency}"),
             cell("quiet" if p.quiet else "running"), cell(html.when(p.started_at)), cell(html.when(p.beat)),
             cell(f"{p.rss_kb // 1024} MB" if p.rss_kb else "-"), cell(p.version or "-"),
             html.button(ctx.root, "quiet", "Quiet", ctx.token, identity=p.identity, back=ctx.here)
             + html.button(ctx.root, "stop", "Stop", ctx.token, identity=p.identity, back=ctx.here))
            for p in shown]
    every = ("<div class='bar all'>"
             + html.button(ctx.root, "quiet", "Quiet all", ctx.token, all=1, back=ctx.here)
             + html.button(ctx.root, "stop", "Stop all", ctx.token, all=1, back=ctx.here) + "</div>")
    return (f"<p id='count'>{len(procs)} processes</p>" + html.filter_form(ctx.arg("q"), HINT, refresh=ctx.refresh_s)
            + html.pager(ctx.root, "/processes", page, pages, q=ctx.arg("q"), refresh=ctx.refresh_s)
            + html.table(("identity", "tag", "queues", "busy", "state", "started (UTC)", "beat (UTC)", "rss",
                          "version", ""), rows, "processes-table") + every)
