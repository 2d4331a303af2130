"""Progress: every job that reported progress in the last days (``pyq:progress:JID``), running or not."""

from __future__ import annotations

from ...job_progress import PROGRESS_TTL_S, recent
from .. import render as html
from ..context import Ctx
from ..render import cell
from .paging import in_memory

#: What the filter matches.
HINT = "jid, message"


def render(ctx: Ctx) -> str:
    reports, cut_short = recent(ctx.redis, ctx.keys)
    shown, page, pages = in_memory(ctx, reports, lambda p: f"{p.jid} {p.message or ''}")
    rows = [(cell(p.jid), cell(p.done), cell("-" if p.total is None else p.total),
             cell("-" if p.fraction is None else f"{p.fraction:.0%}"), cell(p.message or "-"),
             cell(html.when(p.updated_at))) for p in shown]
    note = " (the scan stopped early: more keys than it reads per page)" if cut_short else ""
    return (f"<p id='count'>{len(reports)} jobs reported progress in the last {PROGRESS_TTL_S // 86_400} days{note}</p>"
            + html.filter_form(ctx.arg("q"), HINT, refresh=ctx.refresh_s)
            + html.pager(ctx.root, "/progress", page, pages, q=ctx.arg("q"), refresh=ctx.refresh_s)
            + html.table(("jid", "done", "total", "share", "message", "reported (UTC)"), rows, "progress-table"))
