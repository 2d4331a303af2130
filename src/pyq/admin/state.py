"""Admin commands that read and clear what is stored: stats, queues, busy, the retry/dead/scheduled sets."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import click

from .. import payload
from .common import AdminCommand, AdminGroup, BadUsage, Session, admin, show, table, when

# --- stats, queues ------------------------------------------------------------------------------------------

@click.command(cls=AdminCommand)
@admin
def stats(s: Session, as_json: bool) -> None:
    """Processed, failed, queues (size, latency), busy, retries, scheduled, dead, processes."""
    snap = s.api.overview()

    def text() -> str:
        head = table(("processed", "failed", "busy", "enqueued", "retries", "scheduled", "dead", "processes"),
                     [(snap.processed, snap.failed, snap.busy, snap.enqueued, snap.retries, snap.scheduled,
                       snap.dead, len(snap.processes))])
        queues = table(("queue", "size", "latency_s"), [(q.name, q.size, q.latency_s) for q in snap.queues])
        return f"{head}\n\n{queues}"

    show(as_json, snap.as_dict(), text)


@click.command(cls=AdminCommand)
@admin
def queues(s: Session, as_json: bool) -> None:
    """Every known queue with its size, latency (seconds the oldest job waited) and the processes serving it.

    A queue that no live, non-quiet process (pyq or Ruby Sidekiq) fetches from is marked: its jobs wait.
    """
    snap = s.api.overview()
    servers = s.api.queue_servers(snap.processes)
    rows = [{**vars(q), "served_by": servers.get(q.name, [])} for q in snap.queues]
    show(as_json, rows, lambda: _queues_text(rows))


def _queues_text(rows: list[dict[str, Any]]) -> str:
    body = table(("queue", "size", "latency_s", "served_by"),
                 [(q["name"], q["size"], q["latency_s"], len(q["served_by"]) or "NONE") for q in rows])
    unserved = [q["name"] for q in rows if not q["served_by"]]
    return body + (f"\n\nno live process serves: {', '.join(unserved)}" if unserved else "")


@click.command(cls=AdminCommand)
@admin
def busy(s: Session, as_json: bool) -> None:
    """Jobs running now in every live process (pyq and Ruby Sidekiq): process, jid, class, args, start, runtime,
    and the progress a job reported."""
    now_s = time.time()
    rows = [_busy_row(process.identity, work, now_s) for process, work in s.api.busy()]
    rows.sort(key=lambda row: (row["run_at"] or now_s, row["process"]))
    progress = s.api.progress([str(b["jid"]) for b in rows])
    for b in rows:
        found = progress.get(str(b["jid"]))
        b["progress"] = found.as_dict() if found is not None else None
    show(as_json, rows, lambda: table(
        ("process", "jid", "class", "args", "started", "runtime_s", "progress"),
        [(b["process"], b["jid"], b["class"], _short(json.dumps(b["args"])), when(b["run_at"]), b["runtime_s"],
          progress[str(b["jid"])].label if str(b["jid"]) in progress else "") for b in rows]))


def _busy_row(identity: str, work: Any, now_s: float) -> dict[str, Any]:
    job = work.job
    return {"process": identity, "thread": work.thread, "queue": work.queue, "jid": job.get("jid", "?"),
            "class": payload.display_class(job), "args": job.get("args", []), "run_at": work.run_at,
            "runtime_s": round(now_s - work.run_at, 1) if work.run_at else None, "payload": job}


def _short(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


@click.group(cls=AdminGroup)
def queue() -> None:
    """Change one queue."""


@queue.command("clear")
@click.argument("name")
@click.option("-y", "--yes", is_flag=True, help="Really delete every job in the queue.")
@admin
def queue_clear(s: Session, as_json: bool, name: str, yes: bool) -> None:
    """Delete every job waiting in queue NAME and forget the queue (Sidekiq's Queue#clear)."""
    if not yes:
        raise BadUsage(f"pyq queue clear: add --yes to delete every job in queue {name!r}")
    size = s.api.queue_clear(name)
    show(as_json, {"queue": name, "deleted": size}, lambda: f"cleared queue {name}: {size} job(s) deleted")


# --- sorted sets: retry, dead, scheduled ------------------------------------------------------------------------

def _entry_row(entry: Any) -> tuple[Any, ...]:
    job = entry.job or {}
    return (entry.jid or "?", when(entry.score), job.get("class", "(unreadable)"), job.get("queue", "-"),
            job.get("retry_count", "-"), str(job.get("error_message", ""))[:60])


def _entry_dict(entry: Any) -> dict[str, Any]:
    return {"jid": entry.jid, "score": entry.score, "job": entry.job,
            "raw": None if entry.job else entry.raw.decode("utf-8", "replace")}


@dataclass(frozen=True)
class SortedSet:
    """One sorted set as its command group names it: ``pyq COMMAND`` over Redis set ``name``, "the WHAT"."""

    command: str
    name: str
    what: str


def set_group(command: str, set_name: str, what: str) -> click.Group:
    """``pyq retry|dead|scheduled list|show|retry|delete|clear`` for one sorted set."""
    target = SortedSet(command, set_name, what)
    group = AdminGroup(command, help=f"Jobs in the {what} (sorted set {set_name!r}).")
    for make in (_list_command, _show_command, _retry_command, _delete_command, _clear_command):
        group.add_command(make(target))
    return group


def _list_command(target: SortedSet) -> click.Command:
    @click.command("list", cls=AdminCommand)
    @click.option("-n", "--limit", type=click.IntRange(min=1), default=50, show_default=True,
                  help="Most entries shown.")
    @admin
    def list_(s: Session, as_json: bool, limit: int) -> None:
        """Entries by time, earliest first."""
        entries = s.api.set_entries(target.name, 0, limit - 1)
        show(as_json, [_entry_dict(e) for e in entries],
             lambda: table(("jid", "at", "class", "queue", "retry_count", "error"), [_entry_row(e) for e in entries]))

    return list_


def _on_one_job(name: str, fn: Callable[..., None]) -> click.Command:
    """``pyq SET NAME JID``: an admin subcommand over one entry of the set."""
    return click.command(name, cls=AdminCommand)(click.argument("jid")(admin(fn)))


def _show_command(target: SortedSet) -> click.Command:
    def show_(s: Session, as_json: bool, jid: str) -> None:
        """The full job JID, and its decoded error_backtrace when it has one."""
        entry = _find(s, target.name, jid)
        shown = _entry_dict(entry)
        if entry.backtrace is not None:
            shown["backtrace"] = entry.backtrace
        click.echo(json.dumps(shown, indent=2, default=str))

    return _on_one_job("show", show_)


def _retry_command(target: SortedSet) -> click.Command:
    @click.command("retry", cls=AdminCommand)
    @click.argument("jid", required=False)
    @click.option("--all", "all_", is_flag=True, help="Every entry of the set.")
    @admin
    def retry_(s: Session, as_json: bool, jid: str | None, all_: bool) -> None:
        """Push JID (or --all) to its queue now."""
        if _one_or_all(jid, all_):
            count = s.api.set_retry_all(target.name)
        else:
            count = int(s.api.set_retry(target.name, _find(s, target.name, jid)))
        show(as_json, {"retried": count}, lambda: f"{count} job(s) pushed to their queues")

    return retry_


def _delete_command(target: SortedSet) -> click.Command:
    def delete_(s: Session, as_json: bool, jid: str) -> None:
        """Remove JID from the set."""
        done = s.api.set_delete(target.name, _find(s, target.name, jid))
        show(as_json, {"deleted": int(done)}, lambda: f"deleted {jid}" if done else f"{jid} was already gone")

    return _on_one_job("delete", delete_)


def _clear_command(target: SortedSet) -> click.Command:
    @click.command("clear", cls=AdminCommand)
    @click.option("-y", "--yes", is_flag=True, help=f"Really empty the {target.what}.")
    @admin
    def clear_(s: Session, as_json: bool, yes: bool) -> None:
        """Delete every entry."""
        if not yes:
            raise BadUsage(f"pyq {target.command} clear: add --yes to empty the {target.what}")
        count = s.api.set_clear(target.name)
        show(as_json, {"deleted": count}, lambda: f"{count} job(s) deleted")

    return clear_


def _one_or_all(jid: str | None, all_: bool) -> bool:
    if bool(jid) == all_:
        raise BadUsage("give either a JID or --all")
    return all_


def _find(s: Session, set_name: str, jid: str | None) -> Any:
    entry = s.api.find_in_set(set_name, jid or "")
    if entry is None:
        raise LookupError(f"no job with jid {jid} in the {set_name} set")
    return entry


retry = set_group("retry", "retry", "retry set")
dead = set_group("dead", "dead", "dead set")
scheduled = set_group("scheduled", "schedule", "schedule")
