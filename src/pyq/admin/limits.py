"""``pyq limits``: every limiter the workers used, its limits, its use now and the jobs it rescheduled."""

from __future__ import annotations

import click

from .common import AdminCommand, Session, admin, show, table


@click.command(cls=AdminCommand)
@admin
def limits(s: Session, as_json: bool) -> None:
    """Each limiter (concurrent, window, bucket, leaky): kind, limit, in use now, jobs rescheduled as over it."""
    found = s.api.limiters()
    total = s.api.over_limit_total()
    rows = [use.as_dict() for use in found]
    show(as_json, {"limiters": rows, "over_limit_total": total}, lambda: table(
        ("limiter", "kind", "in_use", "rescheduled"),
        [(use.name, use.kind, use.label, use.over_limit) for use in found]) + f"\n\nrescheduled in all: {total}")
