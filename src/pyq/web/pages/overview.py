"""The overview: headline cards, processed/failed per day (an inline SVG chart), execution metrics per job."""

from __future__ import annotations

from ...api.history import daily_counts, job_totals
from .. import render as html
from ..chart import daily_chart
from ..context import Ctx
from ..render import cell

#: Choices of the history's length (days) and of the execution metrics' window (minutes; Sidekiq keeps 8 h).
DAY_CHOICES = (7, 30, 90, 180)
MINUTE_CHOICES = (15, 60, 240, 480)


def choice(ctx: Ctx, name: str, choices: tuple[int, ...], chosen: int) -> str:
    """A GET form with one select (submitted on change) that keeps the page's other choices."""
    options = "".join(f"<option value='{c}'{' selected' if c == chosen else ''}>{c}</option>" for c in choices)
    keep = "".join(f"<input type='hidden' name='{k}' value='{cell(v)}'>" for k, v in ctx.query.items()
                   if k in ("days", "minutes", "refresh") and k != name)
    return (f"<form method='get' class='choice' id='{name}-form'>{keep}<label>{name} <select name='{name}' "
            f"onchange='this.form.submit()'>{options}</select></label><noscript><button>show</button></noscript>"
            "</form>")


def render(ctx: Ctx) -> str:
    snap = ctx.api.overview()
    days = ctx.int_arg("days", 30, 1, max(DAY_CHOICES))
    minutes = ctx.int_arg("minutes", 60, 1, max(MINUTE_CHOICES))
    history = daily_counts(ctx.redis, ctx.keys, days)
    totals = job_totals(ctx.redis, ctx.keys, minutes, time_style=ctx.settings.time_style)
    cards = html.cards([("processed", snap.processed), ("failed", snap.failed), ("busy", snap.busy),
                          ("enqueued", snap.enqueued), ("retries", snap.retries), ("scheduled", snap.scheduled),
                          ("dead", snap.dead), ("processes", len(snap.processes))])
    chart = html.section(f"History (last {days} days, UTC)",
                           choice(ctx, "days", DAY_CHOICES, days) + daily_chart(history), "history")
    rows = [(cell(t.klass), cell(t.runs), cell(t.failures),
             cell(t.runs - t.failures), cell(round(t.avg_ms, 1)), cell(round(t.total_ms / 1000, 1)))
            for t in totals]
    metrics = html.section(
        f"Execution metrics (last {minutes} minutes)",
        choice(ctx, "minutes", MINUTE_CHOICES, minutes)
        + html.table(("job", "runs", "failed", "succeeded", "avg ms", "total s"), rows, "metrics-table"),
        "metrics")
    queues = [(html.link(ctx.url(html.queue_path(q.name)), q.name), cell(q.size), cell(q.latency_s))
              for q in snap.queues]
    return cards + chart + metrics + html.section("Queues", html.table(("queue", "size", "latency (s)"), queues),
                                                    "queues")

