"""The dashboard as a WSGI application: routing, HTTP Basic auth, CSRF, post/redirect/get, Server-Timing.

Requests:

1. every request needs the password (HTTP Basic, any user name) unless the
   app was made with ``password=None`` (``pyq web --no-auth``, or
   ``wsgi_app(no_auth=True)`` for a host app that authenticates itself);
2. ``GET PAGE`` renders a page (:data:`pages.PAGES`); ``GET /healthz``
   answers ``ok`` without auth;
3. ``POST /action/NAME`` must carry the CSRF token, performs the action
   (:data:`actions.ACTIONS`) and redirects (303) to the form's ``back`` path
   with a message, so a reload does not repeat it.

Links and form actions start with ``SCRIPT_NAME`` (plus ``prefix`` when the
host passes the full path), so the app works mounted under any prefix.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs, quote

from redis.exceptions import RedisError

from . import render
from .actions import ACTIONS, Form
from .context import Ctx, Settings
from .pages import NAV, find_page

log = logging.getLogger("pyq.web")

#: Largest POST body read (a bulk form of a few hundred ticked rows).
MAX_BODY = 262_144
StartResponse = Callable[..., Any]


class Dashboard:
    """The WSGI callable: settings shared by every request, the password (None = no auth), the CSRF token.

    The token is an HMAC of ``secret`` (else the password, else a random key), so every process of a
    multi-process server given the same secret or password accepts the others' forms.
    """

    def __init__(self, settings: Settings, password: str | None, *, secret: str | None = None,
                 prefix: str = "") -> None:
        self.settings = settings
        self.password = password
        self.prefix = prefix.rstrip("/")
        key = (secret or password or secrets.token_urlsafe(32)).encode()
        self.csrf = hmac.new(key, b"pyq-web-csrf", hashlib.sha256).hexdigest()[:32]

    def authorized(self, header: str | None) -> bool:
        if self.password is None:
            return True
        if not header or not header.startswith("Basic "):
            return False
        try:
            _, _, given = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return False
        return hmac.compare_digest(given.encode(), self.password.encode())

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        started = time.perf_counter()
        root, path = self._split(environ)
        method = environ.get("REQUEST_METHOD", "GET")
        if path == "/healthz":
            return _reply(start_response, 200, b"ok", "text/plain", started)
        if not self.authorized(environ.get("HTTP_AUTHORIZATION")):
            start_response("401 Unauthorized", [("WWW-Authenticate", 'Basic realm="pyq", charset="UTF-8"'),
                                                ("Content-Length", "0")])
            return [b""]
        try:
            if method == "POST":
                return self._post(environ, start_response, root, path, started)
            if method not in ("GET", "HEAD"):
                return _reply(start_response, 405, b"method not allowed", "text/plain", started)
            return self._get(environ, start_response, root, path, started)
        except RedisError as exc:
            return _reply(start_response, 503, f"Redis unavailable: {exc}".encode(), "text/plain", started)

    def _split(self, environ: dict[str, Any]) -> tuple[str, str]:
        """(mount point for links, path inside the app)."""
        root, path = environ.get("SCRIPT_NAME", "").rstrip("/"), environ.get("PATH_INFO", "") or "/"
        if self.prefix and (path == self.prefix or path.startswith(self.prefix + "/")):
            root, path = root + self.prefix, path[len(self.prefix):] or "/"
        return root, path

    def _get(self, environ: dict[str, Any], start_response: StartResponse, root: str, path: str,
             started: float) -> Iterable[bytes]:
        query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        found = find_page(path)
        if found is None:
            return _reply(start_response, 404, b"not found", "text/plain", started)
        page, rest = found
        kept = {k: v for k, v in query.items() if k != "msg"}
        ctx = Ctx(self.settings, self.csrf, root, rest, query, render.href("", path, **kept))
        try:
            title, body = page.show(ctx)
        except LookupError as exc:
            return _reply(start_response, 404, str(exc).encode(), "text/plain", started)
        html = render.layout(title, body, root=root, nav=NAV, current=page.path, message=query.get("msg", ""),
                             refresh_s=ctx.refresh_s, keep=kept)
        return _reply(start_response, 200, html, "text/html; charset=utf-8", started)

    def _post(self, environ: dict[str, Any], start_response: StartResponse, root: str, path: str,
              started: float) -> Iterable[bytes]:
        form = _form(environ)
        if form is None or not hmac.compare_digest(form.get("csrf").encode(), self.csrf.encode()):
            return _reply(start_response, 403, b"missing or wrong CSRF token", "text/plain", started)
        action = ACTIONS.get(path[len("/action/"):]) if path.startswith("/action/") else None
        if action is None:
            return _reply(start_response, 404, b"not found", "text/plain", started)
        try:
            message = action(Ctx(self.settings, self.csrf, root, path, {}), form)
        except (ValueError, LookupError) as exc:
            return _reply(start_response, 400, str(exc).encode(), "text/plain", started)
        back = form.get("back")
        back = back if back.startswith("/") and not back.startswith("//") else "/"
        location = root + back + ("&" if "?" in back else "?") + "msg=" + quote(message)
        start_response("303 See Other", [("Location", location), ("Content-Length", "0"), *_timing(started)])
        return [b""]


def _form(environ: dict[str, Any]) -> Form | None:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None
    if length > MAX_BODY:
        return None
    return Form(parse_qs(environ["wsgi.input"].read(length).decode("utf-8", "replace")))


def _timing(started: float) -> list[tuple[str, str]]:
    return [("Server-Timing", f"app;dur={(time.perf_counter() - started) * 1000:.1f}")]


def _reply(start_response: StartResponse, status: int, body: bytes, content_type: str,
           started: float) -> Iterable[bytes]:
    reason = {200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
              503: "Service Unavailable"}[status]
    start_response(f"{status} {reason}", [("Content-Type", content_type), ("Content-Length", str(len(body))),
                                          ("X-Frame-Options", "DENY"), ("Cache-Control", "no-store"),
                                          ("X-Content-Type-Options", "nosniff"), *_timing(started)])
    return [body]
