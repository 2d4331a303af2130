"""``pyq batches`` (the batches, newest first) and ``pyq batches BID`` (one batch, with its failed jids)."""

from __future__ import annotations

import click

from ..batch_status import NoSuchBatch, listing, read
from .common import AdminCommand, BadUsage, Session, admin, show, table, when


@click.command(cls=AdminCommand)
@click.argument("bid", required=False)
@click.option("--limit", default=25, show_default=True, type=click.IntRange(1), help="Batches to list.")
@admin
def batches(s: Session, as_json: bool, bid: str | None, limit: int) -> None:
    """List batches (newest first) with their counts, or show one batch with its failed and dead jids."""
    if bid:
        try:
            status = read(s.redis, s.keys, bid)
        except NoSuchBatch as exc:
            raise BadUsage(str(exc)) from None
        show(as_json, status.as_dict(), lambda: "\n".join(
            f"{name}: {value}" for name, value in [
                ("bid", status.bid), ("description", status.description or "-"), ("state", status.state),
                ("created_at", when(status.created_at)), ("complete_at", when(status.complete_at)),
                ("success_at", when(status.success_at)), ("expires_at", when(status.expires_at)),
                ("total", status.total), ("pending", status.pending), ("failures", status.failures),
                ("child batches pending", status.kids), ("parent", status.parent or "-"),
                ("callbacks", ", ".join(status.callbacks) or "-"),
                ("failed jids", " ".join(status.failed_jids) or "-"), ("dead jids", " ".join(status.dead_jids) or "-"),
            ]))
        return
    count, page = listing(s.redis, s.keys, limit=limit)
    show(as_json, {"count": count, "batches": [b.as_dict() for b in page]}, lambda: table(
        ("bid", "description", "state", "total", "pending", "failures", "created_at"),
        [(b.bid, b.description or "-", b.state, b.total, b.pending, b.failures, when(b.created_at)) for b in page]))
