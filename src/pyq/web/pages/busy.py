"""Busy: every job running now in every live process (pyq and Ruby), with its progress and a Cancel button."""

from __future__ import annotations

from ... import payload
from .. import render as html
from ..context import Ctx
from ..render import cell
from .paging import in_memory
from .sets import short_args

#: What the filter matches.
HINT = "process, queue, class, jid, args"


def render(ctx: Ctx) -> str:
    running = ctx.api.busy()
    shown, page, pages = in_memory(ctx, running, lambda pw: f"{pw[0].identity} {pw[1].queue} {pw[1].job}")
    progress = ctx.api.progress([str(w.job.get("jid", "")) for _, w in shown])
    rows = []
    for proc, work in shown:
        jid = str(work.job.get("jid") or "")
        done = progress.get(jid)
        rows.append((cell(proc.identity), cell(work.thread), cell(work.queue or "-"), cell(jid or "-"),
                     cell(payload.display_class(work.job) if work.job else "?"),
                     f"<div class='args'>{cell(short_args(work.job.get('args')))}</div>",
                     cell(html.when(work.run_at)), cell(done.label if done is not None else ""),
                     html.button(ctx.root, "cancel", "Cancel", ctx.token, jid=jid, back=ctx.here) if jid else ""))
    return (f"<p id='count'>{len(running)} running</p>" + html.filter_form(ctx.arg("q"), HINT, refresh=ctx.refresh_s)
            + html.pager(ctx.root, "/busy", page, pages, q=ctx.arg("q"), refresh=ctx.refresh_s)
            + html.table(("process", "thread", "queue", "jid", "class", "args", "started (UTC)", "progress", ""),
                           rows, "busy-table"))

