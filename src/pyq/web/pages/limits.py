"""Limits: every limiter the workers registered (``pyq:limiters``), its use now and the jobs it rescheduled."""

from __future__ import annotations

from .. import render as html
from ..context import Ctx
from ..render import cell
from .paging import in_memory

#: What the filter matches.
HINT = "name, kind"


def render(ctx: Ctx) -> str:
    uses = ctx.api.limiters()
    shown, page, pages = in_memory(ctx, uses, lambda u: f"{u.name} {u.kind}")
    rows = [(cell(u.name), cell(u.kind), cell(u.label), cell(u.over_limit)) for u in shown]
    return (f"<p id='count'>{len(uses)} limiters, {ctx.api.over_limit_total()} jobs rescheduled as over a limit</p>"
            + html.filter_form(ctx.arg("q"), HINT, refresh=ctx.refresh_s)
            + html.pager(ctx.root, "/limits", page, pages, q=ctx.arg("q"), refresh=ctx.refresh_s)
            + html.table(("limiter", "kind", "in use", "rescheduled"), rows, "limits"))
