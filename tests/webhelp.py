"""Helpers of the dashboard tests: call the WSGI app in-process, or over HTTP with the password."""

from __future__ import annotations

import base64
import html
import io
import re
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from wsgiref.util import setup_testing_defaults

from conftest import free_port
from pyq.web import make_server

PASSWORD = "s3cret-pw"


def auth_header(password: str = PASSWORD) -> str:
    return "Basic " + base64.b64encode(f"admin:{password}".encode()).decode()


def call(app: Any, path: str, query: str = "", *, method: str = "GET", body: dict[str, Any] | None = None,
         password: str | None = PASSWORD, script_name: str = "") -> tuple[str, dict[str, str], str]:
    """(status, headers, body) of one request to the WSGI ``app``, made in this process."""
    env: dict[str, Any] = {}
    setup_testing_defaults(env)
    data = urllib.parse.urlencode(body or {}, doseq=True).encode()
    env.update(PATH_INFO=path, QUERY_STRING=query, REQUEST_METHOD=method, SCRIPT_NAME=script_name,
               CONTENT_LENGTH=str(len(data)), **{"wsgi.input": io.BytesIO(data)})
    if password is not None:
        env["HTTP_AUTHORIZATION"] = auth_header(password)
    seen: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        seen.update(status=status, headers=dict(headers))

    out = b"".join(app(env, start_response))
    return seen["status"], seen["headers"], out.decode()


def token_of(page: str) -> str:
    return page.split("name='csrf' value='", 1)[1].split("'", 1)[0]


def keys_of(page: str) -> list[str]:
    """The row keys of a list page's checkboxes, in order."""
    return [html.unescape(k) for k in re.findall(r"name='key' value='([^']*)'", page)]


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """``app`` served over HTTP on a free loopback port; yields its base URL."""
    server = make_server(app, "127.0.0.1", free_port())
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def http(url: str, fields: dict[str, Any] | None = None, password: str | None = PASSWORD,
         follow: bool = True) -> tuple[int, str, dict[str, str]]:
    """GET (or POST ``fields``) ``url``; (status, body, headers); redirects followed unless ``follow`` is False."""
    data = urllib.parse.urlencode(fields, doseq=True).encode() if fields is not None else None
    req = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    if password is not None:
        req.add_header("Authorization", auth_header(password))
    opener = urllib.request.build_opener(*([] if follow else [_NoRedirect()]))
    try:
        with opener.open(req, timeout=10) as resp:
            return resp.status, resp.read().decode(), dict(resp.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(), dict(exc.headers)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None
