"""What every admin command shares: the Redis session, one-line usage errors, tables and JSON output."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import Any

import click
from redis.exceptions import RedisError

from ..api import Api
from ..config import Config
from ..connection import connect, redact
from ..errors import RET_USAGE, PyqError
from ..keys import Keys


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
        self.redis = connect(self.url, cluster=config.cluster)
        self.keys = Keys(config.namespace, cluster=config.cluster)
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
