"""Batches: the live batches, newest first (:func:`pyq.batch_status.listing`), and one batch's status."""

from __future__ import annotations

from ...batch_status import NoSuchBatch, listing, read
from .. import render as html
from ..context import Ctx
from ..render import cell
from .paging import PAGE_SIZE

#: Newest batches a filter looks through (each is read whole, so the window stays small).
FILTER_WINDOW = 200

#: What the filter matches.
HINT = "bid, description, state"


def listing_page(ctx: Ctx) -> str:
    needle = ctx.arg("q")
    if needle:
        total, found = listing(ctx.redis, ctx.keys, limit=FILTER_WINDOW)
        shown = [b for b in found if needle in f"{b.bid} {b.description} {b.state}"]
        nav = f"<p class='pager' id='pager'>{len(shown)} matching among the newest {FILTER_WINDOW}</p>"
    else:
        total, _ = listing(ctx.redis, ctx.keys, limit=0)
        pages = max(1, -(-total // PAGE_SIZE))
        page = ctx.int_arg("page", 1, 1, pages)
        _, shown = listing(ctx.redis, ctx.keys, offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE)
        nav = html.pager(ctx.root, "/batches", page, pages, refresh=ctx.refresh_s)
    rows = [(html.link(ctx.url("/batches/" + b.bid), b.bid), cell(b.description or "-"), cell(b.state),
             cell(b.total), cell(b.pending), cell(b.failures), cell(html.when(b.created_at))) for b in shown]
    return (f"<p id='count'>{total} batches</p>" + html.filter_form(needle, HINT, refresh=ctx.refresh_s) + nav
            + html.table(("bid", "description", "state", "total", "pending", "failures", "created (UTC)"), rows,
                         "batches-table"))


def one(ctx: Ctx) -> tuple[str, str]:
    try:
        batch = read(ctx.redis, ctx.keys, ctx.path)
    except NoSuchBatch as exc:
        raise LookupError(str(exc)) from None
    fields = [("bid", batch.bid), ("description", batch.description or "-"), ("state", batch.state),
              ("total", batch.total), ("pending", batch.pending), ("failures", batch.failures),
              ("child batches pending", batch.kids), ("open", "yes" if batch.is_open else "no"),
              ("callbacks", ", ".join(batch.callbacks) or "-"), ("created (UTC)", html.when(batch.created_at)),
              ("complete (UTC)", html.when(batch.complete_at)), ("success (UTC)", html.when(batch.success_at)),
              ("death (UTC)", html.when(batch.death_at)), ("expires (UTC)", html.when(batch.expires_at))]
    parent = html.link(ctx.url("/batches/" + batch.parent), batch.parent) if batch.parent else "-"
    rows = [(cell(k), cell(v)) for k, v in fields] + [("parent", parent)]
    jids = [(cell(j), cell("failed")) for j in batch.failed_jids] + [(cell(j), cell("dead")) for j in batch.dead_jids]
    return f"Batch {batch.bid}", (html.table(("field", "value"), rows, "batch-table")
                                  + html.section("Failed jobs", html.table(("jid", "state"), jids, "batch-jids"),
                                                 "batch-failures"))


