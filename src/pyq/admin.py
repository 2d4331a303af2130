"""Admin subcommands of ``pyq``: read and change state in Redis (tables for people, ``--json`` for scripts).

Every command finds Redis through ``--redis-url`` or the group's ``-C`` config
(``ctx.obj``). Bad arguments print one line and exit 2; a Redis failure prints
one line and exits 1. The work itself is done by :mod:`pyq.api` and
:mod:`pyq.cron`; this module only parses, calls and prints.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import Any

import click
from redis.exceptions import RedisError

from .api import Api
from .api.processes import read_processes, signal_process
from .api.stats import overview
from .cli import RET_USAGE, main
from .config import Config
from .connection import connect, redact
from .errors import PyqError
from .keys import Keys


class BadUsage(click.ClickException):
    """A usage error shown as one line (click's default adds the usage text)."""

    exit_code = RET_USAGE


class _OneLine:
    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)  # type: ignore[misc]
        except click.UsageError as exc:
            raise BadUsage(f"{ctx.command_path}: {exc.format_message()}") from None


class AdminCommand(_OneLine, click.Command):
    pass


class AdminGroup(_OneLine, click.Group):
    command_class = AdminCommand

    def resolve_command(self, ctx: click.Context, args: list[str]) -> Any:
        try:
            return super().resolve_command(ctx, args)
        except click.UsageError as exc:
            raise BadUsage(f"{ctx.command_path}: {exc.format_message()}") from None


AdminGroup.group_class = AdminGroup


class Session:
    """Redis connection, key builder and config for one admin command."""

    def __init__(self, config: Config, redis_url: str | None) -> None:
        self.config = config
        self.url = redis_url or config.redis_url
        self.redis = connect(self.url)
        self.keys = Keys(config.namespace)
        self.api = Api(self.redis, self.keys)


def admin(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Adds ``--redis-url`` and ``--json``, opens the session, turns failures into one-line errors."""

    @click.option("--redis-url", envvar="PYQ_REDIS_URL", help="Redis URL (default: the config's redis_url).")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
    @click.pass_context
    @functools.wraps(fn)
    def wrapper(ctx: click.Context, redis_url: str | None, as_json: bool, **kwargs: Any) -> Any:
        config = ctx.find_object(Config) or Config()
        session = Session(config, redis_url)
        try:
            return fn(session, as_json, **kwargs)
        except RedisError as exc:
            raise click.ClickException(redact(f"Redis at {session.url}: {exc}")) from None
        except (LookupError, ValueError, TypeError) as exc:
            raise BadUsage(str(exc).strip("'\"")) from None
        except PyqError as exc:
            raise click.ClickException(str(exc)) from None
        finally:
            session.redis.close()

    return wrapper


# --- output ------------------------------------------------------------------------------------------------

def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Left-aligned columns; an empty table says so."""
    if not rows:
        return "(none)"
    cells = [[str(c) for c in headers], *[[_cell(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def show(as_json: bool, data: Any, text: Callable[[], str]) -> None:
    click.echo(json.dumps(data, indent=2, default=str) if as_json else text())


def when(epoch_s: float | None) -> str:
    if not epoch_s:
        return "-"
    return datetime.fromtimestamp(epoch_s, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


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


# --- processes ------------------------------------------------------------------------------------------------

@main.group(cls=AdminGroup, invoke_without_command=True)
@click.option("--redis-url", envvar="PYQ_REDIS_URL", help="Redis URL (default: the config's redis_url).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def processes(ctx: click.Context, redis_url: str | None, as_json: bool) -> None:
    """Live processes (pyq and Ruby Sidekiq); ``quiet`` / ``stop`` send them remote signals."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(processes_list, redis_url=redis_url, as_json=as_json)


@processes.command("list")
@admin
def processes_list(s: Session, as_json: bool) -> None:
    """Every live process: identity, busy/concurrency, quiet, last beat, memory."""
    procs = read_processes(s.redis, s.keys)
    show(as_json, [vars(p) for p in procs], lambda: table(
        ("identity", "busy", "concurrency", "quiet", "beat", "rss_kb", "queues"),
        [(p.identity, p.busy, p.concurrency, p.quiet, when(p.beat), p.rss_kb, ",".join(p.queues)) for p in procs]))


def _signal_command(action: str, summary: str) -> None:
    @processes.command(action, help=f"{summary} (IDENTITY... or --all), through IDENTITY-signals.")
    @click.argument("identities", nargs=-1)
    @click.option("--all", "all_", is_flag=True, help="Every live process.")
    @admin
    def command(s: Session, as_json: bool, identities: tuple[str, ...], all_: bool) -> None:
        if bool(identities) == all_:
            raise BadUsage(f"pyq processes {action}: give IDENTITY... or --all")
        targets = [p.identity for p in read_processes(s.redis, s.keys)] if all_ else list(identities)
        sent = {identity: signal_process(s.redis, s.keys, identity, action) for identity in targets}
        show(as_json, sent, lambda: "\n".join(f"{sig} -> {i}" for i, sig in sent.items()) or "(no process)")


_signal_command("quiet", "Stop fetching new jobs")
_signal_command("stop", "Finish or put back running jobs and exit")


# --- cron -----------------------------------------------------------------------------------------------------

@main.group(cls=AdminGroup)
def cron() -> None:
    """sidekiq-cron compatible schedules (pyq's and Ruby's)."""


def _store(s: Session) -> Any:
    from .cron import CronStore

    return CronStore(s.redis, s.keys, version=s.config.sidekiq_cron_version)


@cron.command("list")
@admin
def cron_list(s: Session, as_json: bool) -> None:
    """Every schedule with its status and last enqueue time."""
    entries = _store(s).entries()
    show(as_json, [{"name": j.name, "namespace": j.namespace, "cron": j.cron, "class": j.klass, "queue": j.queue,
                    "status": j.status, "last_enqueue_time": last} for j, last in entries],
         lambda: table(("name", "cron", "class", "queue", "status", "last_enqueue"),
                       [(j.name, j.cron, j.klass, j.queue, j.status, when(last)) for j, last in entries]))


def _cron_action(action: str, summary: str) -> None:
    @cron.command(action, help=summary)
    @click.argument("name")
    @click.option("--namespace", default=None, help="sidekiq-cron 2.x namespace (default: 'default').")
    @admin
    def command(s: Session, as_json: bool, name: str, namespace: str | None) -> None:
        result: Any = getattr(_store(s), action)(name, namespace=namespace) if action != "run" \
            else _cron_run(s, name, namespace)
        show(as_json, {"name": name, action: True, "jid": result},
             lambda: f"{action} {name}" + (f": jid {result}" if result else ""))


def _cron_run(s: Session, name: str, namespace: str | None) -> str:
    from .client import Client
    from .cron import CronPoller

    client = Client(connection=s.redis, namespace=s.config.namespace, time_style=s.config.time_format)  # type: ignore[arg-type]
    poller = CronPoller(s.redis, s.keys, client, version=s.config.sidekiq_cron_version)
    return poller.enqueue_now(name, namespace=namespace)


_cron_action("enable", "Let schedule NAME fire again.")
_cron_action("disable", "Stop schedule NAME from firing (kept in Redis).")
_cron_action("run", "Enqueue schedule NAME's job now, outside its schedule.")


# --- enqueue --------------------------------------------------------------------------------------------------

@main.command(cls=AdminCommand)
@click.argument("job_class", metavar="CLASS")
@click.argument("args_json", metavar="[ARGS_JSON]", required=False, default="[]")
@click.option("-q", "--queue", "queue_name", default="default", show_default=True, help="Queue to push to.")
@click.option("--in", "in_s", type=click.FloatRange(min=0), help="Run after this many seconds.")
@click.option("--at", "at", help="Run at this time: epoch seconds or ISO-8601 (UTC unless a zone is given).")
@admin
def enqueue(s: Session, as_json: bool, job_class: str, args_json: str, queue_name: str, in_s: float | None,
            at: str | None) -> None:
    """Push one job of CLASS (a Python job name or a Ruby class) with ARGS_JSON, a JSON array."""
    from .client import Client

    args = _json_args(args_json)
    item: dict[str, Any] = {"class": job_class, "args": args, "queue": queue_name}
    if in_s is not None and at is not None:
        raise BadUsage("pyq enqueue: give --in or --at, not both")
    if in_s is not None or at is not None:
        item["at"] = time.time() + in_s if in_s is not None else _parse_time(at or "")
    client = Client(connection=s.redis, namespace=s.config.namespace, time_style=s.config.time_format)  # type: ignore[arg-type]
    jid = client.push(item)
    show(as_json, {"jid": jid, "queue": queue_name, "at": item.get("at")}, lambda: str(jid))


def _json_args(text: str) -> list[Any]:
    try:
        args = json.loads(text)
    except ValueError as exc:
        raise BadUsage(f"pyq enqueue: ARGS_JSON is not valid JSON: {exc}") from None
    if not isinstance(args, list):
        raise BadUsage(f"pyq enqueue: ARGS_JSON must be a JSON array, got {type(args).__name__}")
    return args


def _parse_time(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        pass
    try:
        stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadUsage(f"pyq enqueue: --at {text!r} is neither epoch seconds nor an ISO-8601 time") from None
    return (stamp if stamp.tzinfo else stamp.replace(tzinfo=timezone.utc)).timestamp()


# --- dashboard ------------------------------------------------------------------------------------------------

@main.command(cls=AdminCommand)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=9292, show_default=True, help="Port to listen on.")
@click.option("--password", envvar="PYQ_WEB_PASSWORD", help="Password for HTTP Basic auth (any user name).")
@click.option("--no-auth", is_flag=True, help="Serve without a password (only behind your own auth).")
@click.option("--redis-url", envvar="PYQ_REDIS_URL", help="Redis URL (default: the config's redis_url).")
@click.pass_context
def web(ctx: click.Context, host: str, port: int, password: str | None, no_auth: bool, redis_url: str | None) -> None:
    """Serve the dashboard (queues, busy, retries, scheduled, dead, cron, processes) until Ctrl-C."""
    from . import logs
    from .web import build, make_server

    if bool(password) == no_auth:
        raise BadUsage("pyq web: give --password (or PYQ_WEB_PASSWORD), or --no-auth to serve without one")
    config = ctx.find_object(Config) or Config()
    logs.setup(config.log_level, config.log_format)
    try:
        server = make_server(build(config, redis_url, password or None), host, port)
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    click.echo(f"pyq dashboard on http://{host}:{port}/ (Ctrl-C to stop)", err=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
