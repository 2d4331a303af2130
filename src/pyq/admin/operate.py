"""Admin commands that act: processes (quiet/stop), cron, enqueue, and the dashboard."""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from typing import Any

import click

from ..config import Config
from ..priority import PRIORITY_MAX, PRIORITY_MIN
from .common import AdminCommand, AdminGroup, BadUsage, Session, admin, show, table, when

#: ``click`` context ``meta`` key of the function that imports ``require`` modules (``pyq.cli.import_jobs``,
#: which the ``pyq`` group puts there; the admin commands never import the CLI module).
IMPORT_JOBS = "pyq.import_jobs"

# --- processes ------------------------------------------------------------------------------------------------

@click.group(cls=AdminGroup, invoke_without_command=True)
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
    procs = s.api.processes()
    show(as_json, [vars(p) for p in procs], lambda: table(
        ("identity", "busy", "concurrency", "quiet", "beat", "rss_kb", "queues"),
        [(p.identity, p.busy, p.concurrency, p.quiet, when(p.beat), p.rss_kb, ",".join(p.queues)) for p in procs]))


def _signal_command(action: str, summary: str) -> click.Command:
    @click.command(action, cls=AdminCommand, help=f"{summary} (IDENTITY... or --all), through IDENTITY-signals.")
    @click.argument("identities", nargs=-1)
    @click.option("--all", "all_", is_flag=True, help="Every live process.")
    @admin
    def command(s: Session, as_json: bool, identities: tuple[str, ...], all_: bool) -> None:
        if bool(identities) == all_:
            raise BadUsage(f"pyq processes {action}: give IDENTITY... or --all")
        targets = [p.identity for p in s.api.processes()] if all_ else list(identities)
        sent = {identity: s.api.process_signal(identity, action) for identity in targets}
        show(as_json, sent, lambda: "\n".join(f"{sig} -> {i}" for i, sig in sent.items()) or "(no process)")

    return command


processes.add_command(_signal_command("quiet", "Stop fetching new jobs"))
processes.add_command(_signal_command("stop", "Finish or put back running jobs and exit for good (no replacement)"))


# --- cron -----------------------------------------------------------------------------------------------------

@click.group(cls=AdminGroup)
def cron() -> None:
    """sidekiq-cron compatible schedules (pyq's and Ruby's)."""


def _store(s: Session) -> Any:
    from ..cron import CronStore

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


def _cron_action(action: str, summary: str) -> click.Command:
    @click.command(action, cls=AdminCommand, help=summary)
    @click.argument("name")
    @click.option("--namespace", default=None, help="sidekiq-cron 2.x namespace (default: 'default').")
    @admin
    def command(s: Session, as_json: bool, name: str, namespace: str | None) -> None:
        result: Any = getattr(_store(s), action)(name, namespace=namespace) if action != "run" \
            else _cron_run(s, name, namespace)
        show(as_json, {"name": name, action: True, "jid": result},
             lambda: f"{action} {name}" + (f": jid {result}" if result else ""))

    return command


def _cron_run(s: Session, name: str, namespace: str | None) -> str:
    from ..client import Client
    from ..cron import CronPoller

    client = Client.for_config(s.config, connection=s.redis)
    poller = CronPoller(s.redis, s.keys, client, version=s.config.sidekiq_cron_version)
    return poller.enqueue_now(name, namespace=namespace)


cron.add_command(_cron_action("enable", "Let schedule NAME fire again."))
cron.add_command(_cron_action("disable", "Stop schedule NAME from firing (kept in Redis)."))
cron.add_command(_cron_action("run", "Enqueue schedule NAME's job now, outside its schedule."))


# --- enqueue --------------------------------------------------------------------------------------------------

@click.command(cls=AdminCommand)
@click.argument("job_class", metavar="CLASS")
@click.argument("args_json", metavar="[ARGS_JSON]", required=False, default="[]")
@click.option("-q", "--queue", "queue_name", help="Queue to push to (default: the job's declared queue, else default).")
@click.option("--in", "in_s", type=click.FloatRange(min=0), help="Run after this many seconds.")
@click.option("--at", "at", help="Run at this time: epoch seconds or ISO-8601 (UTC unless a zone is given).")
@click.option("--priority", type=click.IntRange(PRIORITY_MIN, PRIORITY_MAX),
              help="Priority within its queue (higher runs first; default: the job's, else 0).")
@admin
def enqueue(s: Session, as_json: bool, job_class: str, args_json: str, queue_name: str | None, in_s: float | None,
            at: str | None, priority: int | None) -> None:
    """Push one job of CLASS (a Python job name or a Ruby class) with ARGS_JSON, a JSON array.

    When CLASS is a pyq job (registered by a -r module, or importable by its name), its declared
    queue and options apply and ARGS_JSON is checked against its signature.
    """
    from ..client import Client

    args = _json_args(args_json)
    if in_s is not None and at is not None:
        raise BadUsage("pyq enqueue: give --in or --at, not both")
    overrides: dict[str, Any] = {"queue": queue_name} if queue_name else {}
    if priority is not None:
        overrides["priority"] = priority
    item = _item(s, job_class, args, overrides)
    if in_s is not None or at is not None:
        item["at"] = time.time() + in_s if in_s is not None else _parse_time(at or "")
    client = Client.for_config(s.config, connection=s.redis)
    jid = client.push(item)
    show(as_json, {"jid": jid, "queue": item["queue"], "at": item.get("at")}, lambda: str(jid))


def _item(s: Session, name: str, args: list[Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """The job's own item (declared options, checked arguments) when CLASS is a pyq job, else a plain one."""
    definition = _definition(s, name)
    if definition is None:
        return {"class": name, "args": args, "queue": "default", **overrides}
    definition.check_call(args, {}, "enqueue")
    return definition.item(args, overrides)


def _definition(s: Session, name: str) -> Any:
    """The pyq job called ``name`` after importing the ``require`` modules; None for a Ruby class."""
    from ..errors import UnknownJob
    from ..job import resolve

    importer = click.get_current_context().meta.get(IMPORT_JOBS)
    try:
        if importer is not None and s.config.require:
            importer(s.config.require)
        return resolve(name)
    except UnknownJob:
        return None
    except Exception as exc:  # a require module or the job's own module raised while importing
        click.echo(f"pyq enqueue: cannot import the jobs ({exc}); pushing {name} without its declared options",
                   err=True)
        return None


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

@click.command(cls=AdminCommand)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=9292, show_default=True, help="Port to listen on.")
@click.option("--password", envvar="PYQ_WEB_PASSWORD", help="Password for HTTP Basic auth (any user name).")
@click.option("--no-auth", is_flag=True, help="Serve without a password (only behind your own auth).")
@click.option("--redis-url", envvar="PYQ_REDIS_URL", help="Redis URL (default: the config's redis_url).")
@click.option("--prefix", default="", help="Serve under this path, for a reverse proxy that passes it on (/pyq).")
@click.pass_context
def web(ctx: click.Context, host: str, port: int, password: str | None, no_auth: bool, redis_url: str | None,
        prefix: str) -> None:
    """Serve the dashboard (queues, busy, retries, scheduled, dead, jobs, cron, processes, batches) until Ctrl-C."""
    from .. import logs
    from ..web import build, make_server

    if bool(password) == no_auth:
        raise BadUsage("pyq web: give --password (or PYQ_WEB_PASSWORD), or --no-auth to serve without one")
    config = ctx.find_object(Config) or Config()
    logs.setup(config.log_level, config.log_format)
    try:
        server = make_server(build(config, redis_url, password or None, prefix=prefix), host, port)
    except OSError as exc:
        raise BadUsage(f"pyq web: cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    click.echo(f"pyq dashboard on http://{host}:{port}{prefix.rstrip('/')}/ (Ctrl-C to stop)", err=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
