"""The ``pyq`` command: ``pyq -C config/queue.yml`` runs the pool; subcommands read and change state."""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import sys
import time
import types
from pathlib import Path
from typing import Any

import click
import redis

from . import __version__, admin, logs
from .config import Config, load, parse_queue
from .connection import PERMANENT_ERRORS, connect, probe, redact, tls_refusal
from .errors import RET_USAGE, CannotStart, ConfigError
from .logs import Outage

log = logging.getLogger("pyq.cli")


@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-C", "--config", "config_path", envvar="PYQ_CONFIG", type=click.Path(dir_okay=False),
              help="YAML config file (pyq queue.yml or Sidekiq sidekiq.yml).")
@click.option("-e", "--environment", help="Config section to apply (default: PYQ_ENV).")
@click.option("-r", "--require", "requires", multiple=True, help="Module or .py file with jobs (repeatable).")
@click.option("-q", "--queue", "queues", multiple=True, help="Queue to process, NAME or NAME,WEIGHT (repeatable).")
@click.option("-c", "--concurrency", type=click.IntRange(min=1), help="Threads per process.")
@click.option("-P", "--processes", type=click.IntRange(min=1), help="Worker processes.")
@click.option("-t", "--timeout", type=click.FloatRange(min=0), help="Shutdown grace in seconds.")
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
@click.option("--log-format", type=click.Choice(["text", "json"]), help="Log line format.")
@click.version_option(__version__, "-V", "--version", prog_name="pyq")
@click.pass_context
def main(ctx: click.Context, config_path: str | None, environment: str | None, requires: tuple[str, ...],
         queues: tuple[str, ...], concurrency: int | None, processes: int | None, timeout: float | None,
         verbose: bool, log_format: str | None) -> None:
    """Run a pool of pyq workers (Sidekiq-compatible), or an admin subcommand."""
    overrides: dict[str, Any] = {"concurrency": concurrency, "processes": processes, "timeout": timeout,
                                 "log_format": log_format, "log_level": "debug" if verbose else None}
    try:
        if queues:
            overrides["queues"] = tuple(parse_queue(q, "--queue") for q in queues)
        if requires:
            overrides["require"] = requires
        config = load(config_path, environment=environment, overrides=overrides)
    except ConfigError as exc:
        click.echo(f"pyq: {exc}", err=True)
        ctx.exit(RET_USAGE)
    ctx.obj = config
    ctx.meta[admin.IMPORT_JOBS] = import_jobs  # pyq enqueue imports the jobs to read their declared options
    if ctx.invoked_subcommand is None:
        ctx.exit(run_pool(config))


# The admin subcommands, listed once in pyq.admin.COMMANDS.
for command in admin.COMMANDS:
    main.add_command(command)


def run_pool(config: Config) -> int:
    """Import the job modules, wait for Redis, then supervise the workers."""
    from .supervisor import Supervisor

    logs.setup(config.log_level, config.log_format)
    try:
        import_jobs(config.require)
        if config.tracing != "off":  # after the imports: a required module may set the tracer provider
            from . import tracing

            tracing.start_from_config(config.tracing)
    except ConfigError as exc:
        log.error("%s", exc, exc_info=import_traceback(exc.__cause__))
        return RET_USAGE
    warn_unserved_queues(config)
    try:
        wait_for_redis(config)
        return Supervisor(config).run()
    except CannotStart as exc:
        log.error("%s", exc)
        return RET_USAGE


def warn_unserved_queues(config: Config) -> None:
    """One warning per queue that registered jobs are declared on and this pool does not serve."""
    from .job import unserved_queues

    for queue, names in unserved_queues(config.queue_names()).items():
        log.warning("queue %s is not served by this pool, yet job(s) %s are declared on it: their jobs wait there "
                    "until a process serves it (add it to queues:, or -q %s)", queue, ", ".join(names), queue)


def import_jobs(modules: tuple[str, ...] | list[str]) -> None:
    """Import each ``require`` entry: a module name, or a path to a .py file or a package folder."""
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    for entry in modules:
        try:
            if entry.endswith(".py") or os.sep in entry:
                path = Path(entry)
                spec = importlib.util.spec_from_file_location(path.stem, path / "__init__.py" if path.is_dir()
                                                              else path)
                if spec is None or spec.loader is None:
                    raise ImportError(f"no Python file at {entry}")
                module = importlib.util.module_from_spec(spec)
                sys.modules[path.stem] = module
                spec.loader.exec_module(module)
            else:
                importlib.import_module(entry)
        except Exception as exc:
            raise ConfigError(f"require: cannot import {entry!r}: {type(exc).__name__}: {exc}") from exc


def import_traceback(exc: BaseException | None) -> BaseException | None:
    """``exc`` with only the frames of the imported code, so its traceback points at the failing line.

    None when there is nothing to show: no exception, or a module that is simply not there.
    """
    if exc is None:
        return None
    machinery = (__file__, os.path.dirname(importlib.__file__), "<frozen importlib")
    frames = []
    tb = exc.__traceback__
    while tb is not None:
        if not tb.tb_frame.f_code.co_filename.startswith(machinery):
            frames.append(tb)
        tb = tb.tb_next
    if isinstance(exc, ModuleNotFoundError) and not frames:
        return None
    trimmed = None
    for t in reversed(frames):
        trimmed = types.TracebackType(trimmed, t.tb_frame, t.tb_lasti, t.tb_lineno)
    return exc.with_traceback(trimmed)


def wait_for_redis(config: Config, retry_every_s: float = 2.0) -> None:
    """Block until Redis answers; an outage is logged once, a refusal no retry can heal (credentials, an
    ACL, a certificate) raises CannotStart."""
    conn = connect(config.redis_url, cluster=config.cluster)
    outage = Outage(log, f"start ({config.redacted_url()})")
    try:
        while True:
            try:
                probe(conn)
                outage.ok()
                return
            except PERMANENT_ERRORS as exc:
                raise CannotStart(f"Redis at {config.redacted_url()} refused pyq: {redact(str(exc))}") from exc
            except (redis.RedisError, OSError) as exc:
                if (refusal := tls_refusal(exc)) is not None:
                    raise CannotStart(f"TLS to Redis at {config.redacted_url()} failed: {refusal}") from exc
                outage.failed(exc, retry_every_s)
                time.sleep(retry_every_s)
    finally:
        conn.close()
