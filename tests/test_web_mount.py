"""The dashboard mounted under a prefix: in Flask (werkzeug's DispatcherMiddleware), in Django (pyq.web.mount),
and with ``prefix=`` for hosts that pass the full path; the examples of docs/operations.md, run as written."""

from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import redis
from tools.dashboard_demo import failed

from conftest import free_port
from pool import wait_until
from pyq.config import Config
from pyq.web import mount, wsgi_app
from webhelp import PASSWORD, call, http, serving, token_of

ROOT = Path(__file__).resolve().parents[1]
DOCS = (ROOT / "docs" / "operations.md").read_text()


@pytest.fixture
def env(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYQ_REDIS_URL", redis_url)
    monkeypatch.setenv("PYQ_WEB_PASSWORD", PASSWORD)


def example(name: str) -> ModuleType:
    """Import examples/NAME.py afresh (it reads the environment when imported)."""
    sys.modules.pop(f"examples.{name}", None)
    return importlib.import_module(f"examples.{name}")


def check_mounted(base: str, prefix: str, r: redis.Redis) -> None:
    """The host answers its own paths; under ``prefix`` every link, form and redirect stays under it."""
    now_s = time.time()
    r.zadd("retry", {json.dumps(failed("j1", "Report", now_s)): now_s})
    assert http(base + "/")[1] == "the host app"
    assert http(base + prefix + "/", password=None)[0] == 401  # auth stays on when mounted
    status, body, _ = http(base + prefix + "/retries")
    assert status == 200
    links = re.findall(r" (?:href|action|formaction)='([^']+)'", body)
    assert links and all(link.startswith(prefix + "/") for link in links), links
    token = token_of(body)
    key = re.search(r"name='key' value='([^']+)'", body).group(1)
    status, _, headers = http(base + prefix + "/action/retry", {"csrf": token, "set": "retry", "one": key,
                                                                 "back": "/retries"}, follow=False)
    assert status == 303 and headers["Location"].startswith(prefix + "/retries?msg=")
    assert r.zcard("retry") == 0 and json.loads(r.lindex("queue:default", 0))["jid"] == "j1"
    assert http(base + prefix + "/job?set=retry&key=1.0|gone")[0] == 404


def test_mounted_in_flask(env: None, r: redis.Redis) -> None:
    flask_example = example("dashboard_flask")
    with serving(flask_example.app) as base:
        check_mounted(base, "/pyq", r)


def test_mounted_in_django(env: None, r: redis.Redis) -> None:
    django_example = example("dashboard_django")
    with serving(django_example.application) as base:
        check_mounted(base, "/pyq", r)
        assert http(base + "/nowhere")[0] == 404  # Django's own 404: the mount passed it on


def test_a_host_that_passes_the_full_path_gives_the_prefix(redis_url: str, r: redis.Redis) -> None:
    app = wsgi_app(Config(redis_url=redis_url), password=PASSWORD, prefix="/admin/jobs")
    status, _, body = call(app, "/admin/jobs/dead")
    assert status.startswith("200") and "href='/admin/jobs/retries'" in body
    nested = mount(lambda e, s: [b""], "/tools", app)  # under a mount as well: both parts, in order
    status, _, body = call(nested, "/tools/admin/jobs/")
    assert status.startswith("200") and "href='/tools/admin/jobs/dead'" in body


def test_auth_is_off_only_when_the_host_says_so(redis_url: str) -> None:
    with pytest.raises(ValueError, match="no_auth=True"):
        wsgi_app(Config(redis_url=redis_url))
    app = wsgi_app(Config(redis_url=redis_url), no_auth=True)
    assert call(app, "/", password=None)[0].startswith("200")


def test_processes_sharing_a_password_accept_each_others_forms(redis_url: str) -> None:
    one, other = (wsgi_app(Config(redis_url=redis_url), password=PASSWORD) for _ in range(2))
    assert one.csrf == other.csrf
    assert wsgi_app(Config(redis_url=redis_url), password="another").csrf != one.csrf
    assert wsgi_app(Config(redis_url=redis_url), no_auth=True).csrf != wsgi_app(Config(redis_url=redis_url),
                                                                                no_auth=True).csrf


@pytest.mark.parametrize("name", ["dashboard_flask", "dashboard_django"])
def test_the_docs_quote_the_examples_as_they_are(name: str) -> None:
    source = (ROOT / "examples" / f"{name}.py").read_text()
    code = source.split('"""', 2)[2].strip()  # without the module docstring
    assert code in DOCS, f"docs/operations.md does not show examples/{name}.py as it is"


@pytest.fixture(autouse=True)
def _fresh_examples() -> Iterator[None]:
    yield
    for name in ("examples.dashboard_flask", "examples.dashboard_django"):
        sys.modules.pop(name, None)


def test_pyq_web_serves_under_a_prefix(redis_url: str) -> None:
    port = free_port()
    env = {**os.environ, "PYQ_REDIS_URL": redis_url, "PYQ_WEB_PASSWORD": PASSWORD}
    proc = subprocess.Popen([sys.executable, "-m", "pyq", "web", "--port", str(port), "--prefix", "/ops/pyq"], env=env,
                            stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until(lambda: listening(base + "/ops/pyq/healthz"), timeout=15)
        status, body, _ = http(base + "/ops/pyq/dead")
        assert status == 200 and "href='/ops/pyq/retries'" in body
    finally:
        proc.kill()
        proc.wait(10)


def listening(url: str) -> bool:
    try:
        return http(url, password=None)[0] == 200
    except OSError:  # not listening yet
        return False
