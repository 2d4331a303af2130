"""``pyq cancel JID`` (where the job was) and ``pyq cancel --list`` (the recent cancellations)."""

from __future__ import annotations

import click

from ..cancel import cancel as cancel_job
from ..cancel import cancelled_jobs
from ..client import Client
from ..scripts import DeadLimits
from .common import AdminCommand, BadUsage, Session, admin, show, table, when


@click.command(cls=AdminCommand)
@click.argument("jid", required=False)
@click.option("--list", "listing", is_flag=True, help="List recent cancellations (kept for dead_timeout).")
@admin
def cancel(s: Session, as_json: bool, jid: str | None, listing: bool) -> None:
    """Cancel a job: a queued, scheduled or retrying one is removed; a running one is told to stop.

    Prints where the job was: queued, scheduled, retrying, running or unknown (finished, or no such job).
    """
    client = Client(s.url, namespace=s.config.namespace, cluster=s.config.cluster, connection=s.redis,
                    dead=DeadLimits.of(s.config))
    if listing:
        rows = [vars(c) for c in cancelled_jobs(client)]
        show(as_json, rows, lambda: table(("jid", "class", "queue", "was", "cancelled_at"),
                                          [(r["jid"], r["job_class"], r["queue"], r["where"], when(r["cancelled_at"]))
                                           for r in rows]))
        return
    if not jid:
        raise BadUsage("give a JID to cancel, or --list")
    where = cancel_job(jid, client)
    show(as_json, {"jid": jid, "was": where}, lambda: f"{jid}: {where}")
