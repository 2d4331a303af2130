"""The dashboard: overview, queues, busy, retries, scheduled, dead, jobs, cron, processes, batches.

Server-rendered HTML from the standard library (no build step, no new
dependency), as a WSGI application: ``pyq web`` serves it, and
:func:`wsgi_app` mounts it inside a Flask or Django app under a prefix.
``pages`` renders each page through :mod:`pyq.api`, ``render`` builds the
markup (escaping every value), ``actions`` performs the POSTed buttons,
``app`` routes and checks auth and CSRF, ``server`` serves HTTP.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ..config import Config
from .app import Dashboard
from .context import Settings
from .server import make_server

__all__ = ["Dashboard", "Settings", "build", "make_server", "mount", "wsgi_app"]

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def build(config: Config, redis_url: str | None, password: str | None, *, prefix: str = "") -> Dashboard:
    """``pyq web``'s dashboard over the config's Redis; ``password`` None means no authentication."""
    return Dashboard(Settings.of(config, redis_url), password, prefix=prefix)


def wsgi_app(config: Config | None = None, *, password: str | None = None, no_auth: bool = False,
             redis_url: str | None = None, prefix: str = "", secret: str | None = None) -> Dashboard:
    """The dashboard as a WSGI app to mount in a host app (as Sidekiq::Web in Rails).

    A password is required unless ``no_auth=True`` says the host app guards the path itself.
    ``prefix`` is only needed when the host passes the full path in ``PATH_INFO``; a mount that
    sets ``SCRIPT_NAME`` (werkzeug's DispatcherMiddleware, :func:`mount`) needs none. ``secret``
    keys the CSRF token (default: the password), so every process of the host accepts the others' forms.
    """
    if not password and not no_auth:
        raise ValueError("pyq.web.wsgi_app: give password=..., or no_auth=True when the host app authenticates")
    return Dashboard(Settings.of(config or Config(), redis_url), None if no_auth else password, secret=secret,
                     prefix=prefix)


def mount(host: WsgiApp, prefix: str, app: WsgiApp) -> WsgiApp:
    """``host`` with ``app`` answering every path under ``prefix`` (SCRIPT_NAME set as a mount does).

    For hosts without a dispatcher of their own, e.g. Django: ``application = mount(
    get_wsgi_application(), "/pyq", wsgi_app(password=...))`` in ``wsgi.py``.
    """
    prefix = "/" + prefix.strip("/")

    def dispatch(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "") or "/"
        if path != prefix and not path.startswith(prefix + "/"):
            return host(environ, start_response)
        inner = dict(environ, SCRIPT_NAME=environ.get("SCRIPT_NAME", "").rstrip("/") + prefix,
                     PATH_INFO=path[len(prefix):])
        return app(inner, start_response)

    return dispatch
