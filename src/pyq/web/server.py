"""``pyq web``'s HTTP server: the standard library's WSGI server, one thread per request."""

from __future__ import annotations

import logging
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer
from wsgiref.simple_server import make_server as wsgi_server

log = logging.getLogger("pyq.web")


class ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class QuietHandler(WSGIRequestHandler):
    """Logs requests through ``logging`` (pyq's log format) instead of stderr."""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
        log.info("web: " + format, *args)


def make_server(app: Any, host: str, port: int) -> WSGIServer:
    """A threaded server of the WSGI ``app`` (a :class:`~pyq.web.app.Dashboard`) on ``host:port``."""
    return wsgi_server(host, port, app, server_class=ThreadingWSGIServer, handler_class=QuietHandler)
