"""The dashboard's HTTP server (standard library only): HTTP Basic auth, CSRF-checked POST actions.

Requests:

1. every request needs the password (HTTP Basic, any user name) unless the
   server was started with ``--no-auth``;
2. ``GET /`` renders the page; ``GET /healthz`` answers ``ok`` without auth;
3. ``POST /action/NAME`` must carry the page's CSRF token (a per-server
   secret, compared in constant time), performs the action and redirects back
   with a message (post/redirect/get, so a reload does not repeat it).
"""

from __future__ import annotations

import base64
import hmac
import logging
import secrets
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from redis.exceptions import RedisError

from .views import Views

log = logging.getLogger("pyq.web")

#: Largest POST body read (the forms are a few hundred bytes).
MAX_BODY = 16_384


class Dashboard:
    """Settings shared by every request: views, password (None = no auth), CSRF token."""

    def __init__(self, views: Views, password: str | None) -> None:
        self.views = views
        self.password = password
        self.csrf = secrets.token_urlsafe(24)

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


def make_server(dashboard: Dashboard, host: str, port: int) -> ThreadingHTTPServer:
    handler = type("DashboardHandler", (Handler,), {"dashboard": dashboard})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server


class Handler(BaseHTTPRequestHandler):
    dashboard: Dashboard

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        url = urlsplit(self.path)
        if url.path == "/healthz":
            return self._send(200, b"ok", "text/plain")
        if not self._auth():
            return None
        if url.path != "/":
            return self._send(404, b"not found", "text/plain")
        message = parse_qs(url.query).get("msg", [""])[0]
        try:
            body = self.dashboard.views.dashboard(self.dashboard.csrf, message)
        except RedisError as exc:
            return self._send(503, f"Redis unavailable: {exc}".encode(), "text/plain")
        return self._send(200, body, "text/html; charset=utf-8")

    def do_POST(self) -> None:  # noqa: N802
        if not self._auth():
            return None
        url = urlsplit(self.path)
        form = self._form()
        if form is None or not hmac.compare_digest(form.get("csrf", "").encode(), self.dashboard.csrf.encode()):
            return self._send(403, b"missing or wrong CSRF token", "text/plain")
        if not url.path.startswith("/action/"):
            return self._send(404, b"not found", "text/plain")
        try:
            message = self.dashboard.views.act(url.path[len("/action/"):], form)
        except (ValueError, LookupError) as exc:
            return self._send(400, str(exc).encode(), "text/plain")
        except RedisError as exc:
            return self._send(503, f"Redis unavailable: {exc}".encode(), "text/plain")
        self.send_response(303)
        self.send_header("Location", "/?msg=" + quote(message))
        self.send_header("Content-Length", "0")
        self.end_headers()
        return None

    def _form(self) -> dict[str, str] | None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            return None
        if length > MAX_BODY:
            return None
        fields = parse_qs(self.rfile.read(length).decode("utf-8", "replace"))
        return {k: v[0] for k, v in fields.items()}

    def _auth(self) -> bool:
        if self.dashboard.authorized(self.headers.get("Authorization")):
            return True
        self.send_response(401)
        self.send_header("WWW-Authenticate", 'Basic realm="pyq", charset="UTF-8"')
        self.send_header("Content-Length", "0")
        self.end_headers()
        return False

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Frame-Options", "DENY")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
        log.info("web: " + format, *args)
