"""Admin commands that read and clear what is stored: stats, queues, the retry/dead/scheduled sets."""

from __future__ import annotations

import json
from typing import Any

import click

from ..api.stats import overview
from ..cli import main
from .common import AdminCommand, AdminGroup, BadUsage, Session, admin, show, table, when

# --- stats, queues ------------------------------------------------------------------------------------------

@main.command(cls=AdminCommand)
@admin
def stats(s: Session, as_json: bool) -> None:
    """Processed, failed, queues (size, latency), busy, retries, scheduled, dead, processes."""
    snap = overview(s.redis, s.keys)

    def text() -> str:
        head = table(("processed", "failed", "busy", "enqueued", "retries", "scheduled", "dead", "processes"),
                     [(snap.processed, snap.failed, snap.busy, snap.enqueued, snap.retries, snap.scheduled,
                       snap.dead, len(snap.processes))])
        queues = table(("queue", "size", "latency_s"), [(q.name, q.size, q.latency_s) for q in snap.queues])
        return f"{head}\n\n{queues}"

    show(as_json, snap.as_dict(), text)


@main.command(cls=AdminCommand)
@admin
def queues(s: Session, as_json: bool) -> None:
    """Every known queue with its size and latency (seconds the oldest job waited)."""
    rows = overview(s.redis, s.keys).queues
    show(as_json, [vars(q) for q in rows], lambda: table(("queue", "size", "latency_s"),
                                                          [(q.name, q.size, q.latency_s) for q in rows]))


@main.group(cls=AdminGroup)
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


def set_group(command: str, set_name: str, what: str) -> None:
    """``pyq retry|dead|scheduled list|show|retry|delete|clear`` for one sorted set."""

    @main.group(command, cls=AdminGroup, help=f"Jobs in the {what} (sorted set {set_name!r}).")
    def group() -> None:
        pass

    @group.command("list")
    @click.option("-n", "--limit", type=click.IntRange(min=1), default=50, show_default=True,
                  help="Most entries shown.")
    @admin
    def list_(s: Session, as_json: bool, limit: int) -> None:
        """Entries by time, earliest first."""
        entries = s.api.set_entries(set_name, 0, limit - 1)
        show(as_json, [_entry_dict(e) for e in entries],
             lambda: table(("jid", "at", "class", "queue", "retry_count", "error"), [_entry_row(e) for e in entries]))

    @group.command("show")
    @click.argument("jid")
    @admin
    def show_(s: Session, as_json: bool, jid: str) -> None:
        """The full job JID."""
        entry = _find(s, set_name, jid)
        click.echo(json.dumps(_entry_dict(entry), indent=2, default=str))

    @group.command("retry")
    @click.argument("jid", required=False)
    @click.option("--all", "all_", is_flag=True, help="Every entry of the set.")
    @admin
    def retry_(s: Session, as_json: bool, jid: str | None, all_: bool) -> None:
        """Push JID (or --all) to its queue now."""
        if _one_or_all(jid, all_):
            count = s.api.set_retry_all(set_name)
        else:
            count = int(s.api.set_retry(set_name, _find(s, set_name, jid)))
        show(as_json, {"retried": count}, lambda: f"{count} job(s) pushed to their queues")

    @group.command("delete")
    @click.argument("jid")
    @admin
    def delete_(s: Session, as_json: bool, jid: str) -> None:
        """Remove JID from the set."""
        done = s.api.set_delete(set_name, _find(s, set_name, jid))
        show(as_json, {"deleted": int(done)}, lambda: f"deleted {jid}" if done else f"{jid} was already gone")

    @group.command("clear")
    @click.option("-y", "--yes", is_flag=True, help=f"Really empty the {what}.")
    @admin
    def clear_(s: Session, as_json: bool, yes: bool) -> None:
        """Delete every entry."""
        if not yes:
            raise BadUsage(f"pyq {command} clear: add --yes to empty the {what}")
        count = s.api.set_clear(set_name)
        show(as_json, {"deleted": count}, lambda: f"{count} job(s) deleted")


def _one_or_all(jid: str | None, all_: bool) -> bool:
    if bool(jid) == all_:
        raise BadUsage("give either a JID or --all")
    return all_


def _find(s: Session, set_name: str, jid: str | None) -> Any:
    entry = s.api.find_in_set(set_name, jid or "")
    if entry is None:
        raise LookupError(f"no job with jid {jid} in the {set_name} set")
    return entry


set_group("retry", "retry", "retry set")
set_group("dead", "dead", "dead set")
set_group("scheduled", "schedule", "schedule")
