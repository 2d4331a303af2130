"""Retries, Scheduled and Dead: one sorted set each, paged by index (ZRANGE), filtered by a bounded ZSCAN.

A page reads ZCARD and one ZRANGE of 25 members whatever the set's size, so
the last page of 100,000 dead jobs costs what the first does. The filter is
Sidekiq's: ZSCAN with ``MATCH *needle*`` over the raw JSON (class, jid, error
and args are all in it), at most ``FILTER_MAX_CALLS`` calls per page; the
next page of matches continues from the ZSCAN cursor (``?cursor=``).
"""

from __future__ import annotations

import json

from ...api import Entry
from .. import render
from ..context import Ctx
from ..render import cell
from .paging import PAGE_SIZE, span

#: Per set: (path, title, score label, bulk actions (action, label)).
SETS = {
    "retry": ("/retries", "Retries", "next retry (UTC)",
              (("retry", "Retry now"), ("add_to_queue", "Add to queue"), ("kill", "Kill"), ("delete", "Delete"))),
    "schedule": ("/scheduled", "Scheduled", "runs at (UTC)",
                 (("add_to_queue", "Add to queue"), ("kill", "Kill"), ("delete", "Delete"))),
    "dead": ("/dead", "Dead", "died at (UTC)",
             (("retry", "Retry now"), ("add_to_queue", "Add to queue"), ("delete", "Delete"))),
}
ARGS_CHARS = 120


def retries(ctx: Ctx) -> str:
    return show(ctx, "retry")


def scheduled(ctx: Ctx) -> str:
    return show(ctx, "schedule")


def dead(ctx: Ctx) -> str:
    return show(ctx, "dead")


def show(ctx: Ctx, name: str) -> str:
    path, title, score_label, actions = SETS[name]
    total, needle = ctx.api.set_size(name), ctx.arg("q")
    if needle:
        cursor = ctx.int_arg("cursor", 0, 0, 2**63)
        entries, after = ctx.api.set_filter(name, needle, cursor, PAGE_SIZE)
        nav = (f"<p class='pager' id='pager'>{len(entries)} matching, by ZSCAN from cursor {cursor}; "
               + (render.link(ctx.url(path, q=needle, cursor=after, refresh=ctx.refresh_s), "more matches",
                              rel="next") if after else "<span id='scan-done'>end of set</span>") + "</p>")
    else:
        page, pages, start = span(ctx, total)
        entries = ctx.api.set_entries(name, start, start + PAGE_SIZE - 1)
        nav = render.pager(ctx.root, path, page, pages, refresh=ctx.refresh_s)
    back = ctx.here
    rows = [_row(ctx, name, e, actions) for e in entries]
    table = render.table((render.select_all(), score_label, "jid", "class", "queue", "args", "error", ""), rows,
                         f"{name}-table")
    body = (f"<p id='count'>{total} in {title.lower()}</p>" + render.filter_form(needle, refresh=ctx.refresh_s) + nav
            + render.bulk_form(ctx.root, ctx.token, table, actions, name, set=name, back=back)
            + render.all_buttons(ctx.root, ctx.token, actions, set=name, back=back))
    return body


def _row(ctx: Ctx, name: str, entry: Entry, actions: tuple[tuple[str, str], ...]) -> tuple[str, ...]:
    job = entry.job or {}
    jid = entry.jid or "?"
    error = ": ".join(str(job[k]) for k in ("error_class", "error_message") if job.get(k))
    buttons = "".join(render.row_button(ctx.root, a, label, entry.key) for a, label in actions) if entry.jid else ""
    return (render.checkbox(entry.key) if entry.jid else "", cell(render.when(entry.score)),
            render.link(ctx.url("/job", set=name, key=entry.key), jid),
            cell(job.get("wrapped") or job.get("class", "?")),
            cell(job.get("queue", "-")), f"<div class='args'>{cell(short_args(job.get('args')))}</div>",
            cell(error[:200]), buttons)


def short_args(args: object) -> str:
    text = json.dumps(args, default=str, ensure_ascii=False)
    return text if len(text) <= ARGS_CHARS else text[:ARGS_CHARS] + "..."
