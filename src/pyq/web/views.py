"""What the dashboard shows and what its buttons do, over :mod:`pyq.api` and :mod:`pyq.cron`."""

from __future__ import annotations

from typing import Any

from ..api import Api
from ..batch_status import listing
from ..cancel import cancel
from ..client import Client
from ..job_progress import Progress
from ..keys import Keys
from . import render
from .render import button, cell

#: Entries shown per sorted set, and batches shown.
SET_ROWS = 25
SETS = (("retry", "Retries"), ("schedule", "Scheduled"), ("dead", "Dead"))


class Views:
    """Renders the page and performs the actions for one Redis."""

    def __init__(self, redis: Any, keys: Keys, cron_version: int = 2) -> None:
        self.redis = redis
        self.keys = keys
        self.api = Api(redis, keys)
        self.cron_version = cron_version

    def dashboard(self, token: str, message: str = "") -> bytes:
        snap = self.api.overview()
        parts = [f"<p class='msg' id='msg'>{render.escape(message)}</p>" if message else "",
                 render.cards([("processed", snap.processed), ("failed", snap.failed), ("busy", snap.busy),
                               ("enqueued", snap.enqueued), ("retries", snap.retries),
                               ("scheduled", snap.scheduled), ("dead", snap.dead),
                               ("processes", len(snap.processes))]),
                 render.section("Queues", ("queue", "size", "latency (s)"),
                                [(cell(q.name), cell(q.size), cell(q.latency_s)) for q in snap.queues], "queues"),
                 self._processes(token), self._busy(token)]
        parts += [self._set(name, title, token) for name, title in SETS]
        parts += [self._batches(), self._cron()]
        return render.page("Dashboard", "".join(parts))

    def _processes(self, token: str) -> str:
        rows = [(cell(p.identity), cell(f"{p.busy}/{p.concurrency}"), cell("quiet" if p.quiet else "running"),
                 cell(render.when(p.beat)), cell(",".join(p.queues)),
                 button("quiet", "Quiet", token, identity=p.identity) + button("stop", "Stop", token,
                                                                                  identity=p.identity))
                for p in self.api.processes()]
        return render.section("Processes", ("identity", "busy", "state", "beat (UTC)", "queues", ""), rows,
                              "processes")

    def _busy(self, token: str) -> str:
        running = [(p, w) for p in self.api.processes() for w in self.api.process_work(p.identity)]
        progress = self.api.progress([str(w.job.get("jid", "")) for _, w in running])
        rows = [(cell(p.identity), cell(w.thread), cell(w.queue), cell(w.job.get("wrapped") or w.job.get("class")),
                 cell(render.when(w.run_at)), cell(_progress_label(progress.get(str(w.job.get("jid", ""))))),
                 button("cancel", "Cancel", token, jid=str(w.job["jid"])) if w.job.get("jid") else "")
                for p, w in running]
        return render.section("Busy", ("process", "thread", "queue", "class", "started (UTC)", "progress", ""), rows,
                              "busy")

    def _set(self, name: str, title: str, token: str) -> str:
        rows = []
        for entry in self.api.set_entries(name, 0, SET_ROWS - 1):
            job = entry.job or {}
            actions = (button("retry", "Retry now", token, set=name, jid=entry.jid) +
                       button("delete", "Delete", token, set=name, jid=entry.jid)) if entry.jid else ""
            error = cell(str(job.get("error_message", ""))[:80]) + render.backtrace(entry.backtrace)
            rows.append((cell(render.when(entry.score)), cell(entry.jid or "?"), cell(job.get("class", "?")),
                         cell(job.get("queue", "-")), error, actions))
        return render.section(f"{title} ({self.api.set_size(name)})",
                              ("when (UTC)", "jid", "class", "queue", "error", ""), rows, name)

    def _batches(self) -> str:
        count, page = listing(self.redis, self.keys, limit=SET_ROWS)
        rows = [(cell(b.bid), cell(b.description or "-"), cell(b.state), cell(b.total), cell(b.pending),
                 cell(b.failures), cell(render.when(b.created_at))) for b in page]
        return render.section(f"Batches ({count})",
                              ("bid", "description", "state", "total", "pending", "failures", "created (UTC)"), rows,
                              "batches")

    def _cron(self) -> str:
        from ..cron import CronStore

        entries = CronStore(self.redis, self.keys, version=self.cron_version).entries()
        rows = [(cell(j.name), cell(j.cron), cell(j.klass), cell(j.queue), cell(j.status), cell(render.when(last)))
                for j, last in entries]
        return render.section("Cron", ("name", "cron", "class", "queue", "status", "last enqueue (UTC)"), rows,
                              "cron")

    # --- actions ------------------------------------------------------------------------------------
    def act(self, action: str, form: dict[str, str]) -> str:
        """Perform a button's action; returns the message shown on the next page (ValueError if bad)."""
        if action in ("quiet", "stop"):
            signal = self.api.process_signal(form.get("identity", ""), action)
            return f"sent {signal} to {form.get('identity')}"
        if action == "cancel":
            client = Client(namespace=self.keys.namespace, cluster=self.keys.cluster, connection=self.redis)
            return f"cancel {form.get('jid')}: was {cancel(form.get('jid', ''), client)}"
        set_name, jid = form.get("set", ""), form.get("jid", "")
        if action not in ("retry", "delete") or set_name not in dict(SETS) or not jid:
            raise ValueError(f"unknown action {action!r} or missing set/jid")
        done = self.api.set_retry(set_name, jid) if action == "retry" else self.api.set_delete(set_name, jid)
        return f"{action} {jid}: " + ("done" if done else "already gone")


def _progress_label(progress: Progress | None) -> str:
    return progress.label if progress is not None else ""
