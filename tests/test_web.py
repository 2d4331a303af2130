"""The dashboard: plain HTTP (auth, CSRF, actions, escaping) and a real headless Chromium screenshot."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from click.testing import CliRunner

from conftest import free_port
from pool import http_get
from pyq.cli import main
from pyq.config import Config
from pyq.web import build, make_server

PASSWORD = "s3cret-pw"


@pytest.fixture
def dashboard(redis_url: str) -> Iterator[str]:
    """A dashboard server on a free port in this process; its base URL."""
    dash = build(Config(redis_url=redis_url), None, PASSWORD)
    server = make_server(dash, "127.0.0.1", free_port())
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(5)


def get(url: str, password: str | None = PASSWORD) -> tuple[int, str]:
    return http_get(url, password)


def post(url: str, fields: dict[str, str], password: str = PASSWORD) -> tuple[int, str]:
    req = urllib.request.Request(url, data=urllib.parse.urlencode(fields).encode(), method="POST")
    req.add_header("Authorization", "Basic " + base64.b64encode(f"admin:{password}".encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:  # follows the 303 back to the page
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def csrf(page: str) -> str:
    return page.split("name='csrf' value='", 1)[1].split("'", 1)[0]


def seed(r: redis.Redis) -> None:
    now = time.time()
    for jid, key in (("r1", "retry"), ("r2", "retry"), ("d1", "dead")):
        job = {"class": "HardJob", "args": [1], "queue": "mail", "jid": jid, "retry_count": 1,
               "error_message": "<script>alert(1)</script>"}
        r.zadd(key, {json.dumps(job): now})
    r.zadd("schedule", {json.dumps({"class": "Later", "args": [], "queue": "default", "jid": "s1"}): now + 600})
    r.sadd("queues", "default", "mail")
    r.lpush("queue:default", json.dumps({"class": "A", "args": [], "jid": "q1", "enqueued_at": now - 12}))
    r.sadd("processes", "host:7:abc")
    r.hset("host:7:abc", mapping={"info": json.dumps({"hostname": "host", "pid": 7, "concurrency": 5,
                                                       "queues": ["default", "mail"], "started_at": now}),
                                  "busy": 1, "beat": now, "quiet": "false"})
    r.hset("host:7:abc:work", "t1", json.dumps({"queue": "default", "run_at": int(now),
                                                 "payload": json.dumps({"class": "BusyJob", "args": []})}))


def test_auth_is_required(dashboard: str, r: redis.Redis) -> None:
    assert get(dashboard + "/", password=None)[0] == 401
    assert get(dashboard + "/", password="wrong")[0] == 401
    assert get(dashboard + "/healthz", password=None) == (200, "ok")
    assert get(dashboard + "/")[0] == 200


def test_every_page_shows_its_part_escaped(dashboard: str, r: redis.Redis) -> None:
    seed(r)
    pages = {path: get(dashboard + path) for path in ("/", "/queues", "/processes", "/busy", "/retries",
                                                      "/scheduled", "/dead", "/cron")}
    assert {status for status, _ in pages.values()} == {200}
    for path, anchor in (("/", "queues"), ("/processes", "processes-table"), ("/busy", "busy-table"),
                         ("/retries", "retry-table"), ("/scheduled", "schedule-table"), ("/dead", "dead-table"),
                         ("/cron", "cron-table-empty")):
        assert f"id='{anchor}'" in pages[path][1], path
    assert "host:7:abc" in pages["/processes"][1] and "BusyJob" in pages["/busy"][1]
    assert "2 in retries" in pages["/retries"][1]
    for _, page in pages.values():
        assert "<script>" not in page
    assert "&lt;script&gt;" in pages["/retries"][1] and "&lt;script&gt;" in pages["/dead"][1]


def test_actions_need_the_csrf_token(dashboard: str, r: redis.Redis) -> None:
    seed(r)
    assert post(dashboard + "/action/delete", {"set": "retry", "jid": "r1"})[0] == 403
    assert post(dashboard + "/action/delete", {"set": "retry", "jid": "r1", "csrf": "guess"})[0] == 403
    assert r.zcard("retry") == 2


def test_retry_delete_and_quiet_actions(dashboard: str, r: redis.Redis) -> None:
    seed(r)
    token = csrf(get(dashboard + "/retries")[1])
    status, page = post(dashboard + "/action/retry", {"set": "retry", "jid": "r1", "csrf": token})
    assert status == 200 and "retry r1: done" in page
    assert json.loads(r.lindex("queue:mail", 0))["jid"] == "r1"
    post(dashboard + "/action/delete", {"set": "dead", "jid": "d1", "csrf": token})
    assert r.zcard("dead") == 0
    post(dashboard + "/action/quiet", {"identity": "host:7:abc", "csrf": token})
    assert r.lrange("host:7:abc-signals", 0, -1) == [b"TSTP"]
    assert post(dashboard + "/action/retry", {"set": "nope", "jid": "r2", "csrf": token})[0] == 400
    assert post(dashboard + "/action/stop", {"identity": "ghost:1:x", "csrf": token})[0] == 400


def test_web_refuses_to_start_without_a_password(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PYQ_WEB_PASSWORD", raising=False)
    result = CliRunner().invoke(main, ["web", "--redis-url", redis_url])
    assert result.exit_code == 2 and "--no-auth" in result.output


def test_dashboard_renders_in_headless_chromium(dashboard: str, r: redis.Redis, tmp_path: Path) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    seed(r)
    shot = tmp_path / "dashboard.png"
    url = dashboard.replace("http://", f"http://admin:{PASSWORD}@") + "/"
    proc = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
         f"--screenshot={shot}", "--window-size=1280,900", url],
        capture_output=True, timeout=60)
    assert shot.exists() and shot.stat().st_size > 10_000, proc.stderr.decode()[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    print(f"\ndashboard screenshot: {shot}")


def test_the_cancel_action_removes_a_queued_job_and_busy_jobs_get_its_button(dashboard: str, r: redis.Redis) -> None:
    seed(r)
    r.hset("host:7:abc:work", "t2", json.dumps({"queue": "default", "run_at": int(time.time()),
                                                 "payload": json.dumps({"class": "Long", "args": [], "jid": "b1"})}))
    page = get(dashboard + "/busy")[1]
    assert "name='jid' value='b1'" in page.replace('"', "'") and "/action/cancel" in page
    status, page = post(dashboard + "/action/cancel", {"jid": "q1", "csrf": csrf(page), "back": "/busy"})
    assert status == 200 and "cancel q1: was queued" in page
    assert r.llen("queue:default") == 0 and r.zcard("pyq:cancelled") == 1
    assert post(dashboard + "/action/cancel", {"jid": "no*jid", "csrf": csrf(page)})[0] == 400


def test_the_limits_section_shows_each_limiters_use(dashboard: str, r: redis.Redis) -> None:
    now = time.time()
    r.hset("pyq:limiters", mapping={"stripe": json.dumps({"kind": "concurrent", "limit": 5, "lock_timeout": 30}),
                                    "mail": json.dumps({"kind": "window", "count": 100, "seconds": 60})})
    r.zadd("pyq:lmtr-c-stripe", {"a": now + 30, "b": now + 30, "lapsed": now - 1})
    r.zadd("pyq:lmtr-w-mail", {str(i): now - i for i in range(7)})
    r.hset("pyq:limiters:over", "mail", 12)
    r.set("pyq:stat:over_limit", 12)
    page = get(dashboard + "/limits")[1]
    assert "id='limits'" in page and "2 limiters, 12 jobs rescheduled as over a limit" in page
    assert "2/5 at once" in page and "7/100 per 60s" in page
