"""Every dashboard page and action in a real headless Chromium, driven over the DevTools protocol.

Each page is loaded and checked in the browser's DOM, and a screenshot of it is
saved (to ``$PYQ_SCREENSHOTS`` if set, else the test's tmp directory). Each
action is done as a user does it: tick boxes, click the button, and the form
posts with its CSRF token; the test then checks Redis and the message shown.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from tools.cdp import CHROMIUM, Browser
from tools.dashboard_demo import IDENTITY, seed

from pyq.config import Config
from pyq.web import wsgi_app
from pyq.web.pages import NAV
from webhelp import PASSWORD, auth_header, serving

pytestmark = [pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)"),
              pytest.mark.slow]


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("PYQ_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    chrome = Browser(tmp_path / "profile")
    chrome.headers(Authorization=auth_header())
    try:
        yield chrome
    finally:
        chrome.close()


@pytest.fixture
def base(redis_url: str, r: redis.Redis) -> Iterator[str]:
    seed(r)
    with serving(wsgi_app(Config(redis_url=redis_url), password=PASSWORD)) as url:
        yield url


def text(chrome: Browser, selector: str) -> str:
    return chrome.js(f"(document.querySelector({json.dumps(selector)}) || {{}}).textContent || ''")


def count(chrome: Browser, selector: str) -> int:
    return chrome.js(f"document.querySelectorAll({json.dumps(selector)}).length")


PAGES = [  # (path, file, a selector the page must show, how many of it at least)
    ("/", "overview", "#chart rect.processed", 30),
    ("/queues", "queues", "#queues-table tr", 4),
    ("/queues/default", "queue", "#jobs-table input[name=key]", 25),
    ("/busy", "busy", "#busy-table button[data-action=cancel]", 1),
    ("/retries", "retries", "#retry-table input[name=key]", 25),
    ("/scheduled", "scheduled", "#schedule-table input[name=key]", 5),
    ("/dead", "dead", "#dead-table input[name=key]", 3),
    ("/cron", "cron", "#cron-table button[data-action=cron_run]", 1),
    ("/processes", "processes", "#processes-table button[data-action=quiet]", 1),
    ("/batches", "batches", "#batches-table a", 1),
    ("/limits", "limits", "#limits tr", 3),
    ("/progress", "progress", "#progress-table tr", 2),
]


def test_every_page_renders(browser: Browser, base: str, shots: Path) -> None:
    for path, name, selector, least in PAGES:
        assert browser.goto(base + path) == 200, path
        assert count(browser, selector) >= least, (path, selector)
        assert count(browser, "header nav a") == len(NAV) and "<img" not in browser.js("document.body.innerHTML")
        browser.screenshot(shots / f"{name}.png")
    # one job, reached from its row; one batch, from the list
    browser.goto(base + "/retries")
    assert browser.click("#retry-table a[href*='/job?']") == 200
    assert "ReportError" in text(browser, "#error") and "app/jobs/report.py:42" in text(browser, "#backtrace")
    assert "retry_count" in text(browser, "#retry-history")
    browser.screenshot(shots / "job.png")
    browser.goto(base + "/batches")
    assert browser.click("#batches-table a") == 200 and "import of 3 feeds" in text(browser, "#batch-table")
    browser.screenshot(shots / "batch.png")
    assert all((shots / f"{n}.png").read_bytes()[:4] == b"\x89PNG" for n in ("overview", "job", "batch"))


def test_choices_filter_and_pager(browser: Browser, base: str) -> None:
    browser.goto(base + "/")
    browser.events.clear()
    browser.js("const s = document.querySelector('#days-form select'); s.value = '7'; s.onchange()")
    browser.wait_for_load()  # the select submits its form on change
    assert count(browser, "#chart rect.processed") == 7
    browser.goto(base + "/retries")
    browser.js("document.querySelector('#filter input[name=q]').value = 'retry-17'")
    assert browser.click("#filter button") == 200 and count(browser, "#retry-table input[name=key]") == 1
    browser.goto(base + "/retries")
    assert browser.click("#pager a[rel=last]") == 200 and text(browser, "#page-of") == "page 2 of 2"


def test_the_refresh_choice_reloads_the_page_by_itself(browser: Browser, base: str) -> None:
    browser.goto(base + "/")
    browser.events.clear()
    browser.js("const s = document.querySelector('#refresh select'); s.value = '2'; s.onchange()")
    browser.wait_for_load()
    assert browser.js("location.search") == "?refresh=2"
    browser.js("window.marker = 1")
    browser.events.clear()
    browser.wait_for_load()  # the next load comes from the meta refresh alone
    assert browser.js("typeof window.marker") == "undefined"  # a new document
    assert browser.js("document.querySelector('header nav a').getAttribute('href')").endswith("refresh=2")


def test_set_actions_on_a_selection_a_row_and_all(browser: Browser, base: str, r: redis.Redis) -> None:
    browser.goto(base + "/retries")
    browser.js("document.querySelector('#retry-table input.all').click()")  # select all on this page
    assert browser.js("[...document.querySelectorAll('#retry-table input[name=key]')].every(c => c.checked)")
    assert browser.click("#retry-form button[data-action=retry]") == 200
    assert text(browser, "#msg") == "retry: 25 of 25 done" and r.zcard("retry") == 5 and r.llen("queue:default") == 65
    browser.js("document.querySelectorAll('#retry-table input[name=key]')[1].click()")
    assert browser.click("#retry-form button[data-action=kill][data-bulk]") == 200
    assert text(browser, "#msg") == "kill: 1 of 1 done" and r.zcard("dead") == 4
    assert browser.click("#retry-table button[data-action=delete]") == 200  # a row's own button
    assert text(browser, "#msg") == "delete: 1 of 1 done" and r.zcard("retry") == 3
    assert browser.click("#retry-table button[data-action=add_to_queue]") == 200  # a row's Add to queue
    assert text(browser, "#msg") == "add_to_queue: 1 of 1 done" and r.zcard("retry") == 2
    browser.js("document.querySelectorAll('#retry-table input[name=key]')[0].click()")
    assert browser.click("#retry-form button[data-action=add_to_queue][data-bulk]") == 200  # on a selection
    assert text(browser, "#msg") == "add_to_queue: 1 of 1 done" and r.zcard("retry") == 1
    browser.goto(base + "/scheduled")
    assert browser.click("#schedule-table button[data-action=kill]") == 200 and r.zcard("schedule") == 4
    assert browser.click("button[data-action=add_to_queue][data-bulk=all]") == 200
    assert r.zcard("schedule") == 0 and r.llen("queue:mail") == 7 and "4 of 4" in text(browser, "#msg")
    browser.goto(base + "/dead")
    assert browser.click("button[data-action=retry][data-bulk=all]") == 200 and r.zcard("dead") == 0
    browser.goto(base + "/retries")
    assert browser.click("button[data-action=delete][data-bulk=all]") == 200 and r.zcard("retry") == 0
    assert browser.js("location.pathname") == "/retries"


def test_job_page_and_queue_actions(browser: Browser, base: str, r: redis.Redis) -> None:
    browser.goto(base + "/dead")
    browser.click("#dead-table a[href*='/job?']")
    assert browser.click(".bar button[data-action=delete]") == 200 and r.zcard("dead") == 2
    assert browser.js("location.pathname") == "/dead"
    browser.goto(base + "/queues/default")
    browser.js("document.querySelectorAll('#jobs-table input[name=key]').forEach((c, i) => c.checked = i < 3)")
    assert browser.click("#jobs-form button[data-action=queue_delete]") == 200 and r.llen("queue:default") == 37
    assert browser.click("#jobs-table button[data-action=queue_delete]") == 200 and r.llen("queue:default") == 36
    browser.goto(base + "/queues")
    assert browser.click("#queues-table button[data-action=queue_clear]") == 200
    assert not r.exists("queue:default") and "cleared default" in text(browser, "#msg")


def test_cron_processes_and_busy_actions(browser: Browser, base: str, r: redis.Redis) -> None:
    browser.goto(base + "/cron")
    assert browser.click("button[data-action=cron_disable]") == 200
    assert count(browser, "button[data-action=cron_enable]") == 1 and "disabled" in text(browser, "#cron-table")
    assert browser.click("button[data-action=cron_enable]") == 200 and "enabled" in text(browser, "#cron-table")
    assert browser.click("button[data-action=cron_run]") == 200 and text(browser, "#msg").startswith(
        "run nightly-report: jid ")
    assert json.loads(r.lindex("queue:reports", 0))["class"] == "BuildReport"
    browser.goto(base + "/processes")
    assert browser.click("#processes-table button[data-action=quiet]") == 200
    assert browser.click(".all button[data-action=quiet]") == 200
    assert browser.click(".all button[data-action=stop]") == 200
    assert r.lrange(f"{IDENTITY}-signals", 0, -1) == [b"TERM", b"TSTP", b"TSTP"]
    browser.goto(base + "/busy")
    assert browser.click("button[data-action=cancel]") == 200
    assert text(browser, "#msg").startswith("cancel busy-1: was ")


def test_without_the_password_chromium_gets_401(tmp_path: Path, base: str) -> None:
    chrome = Browser(tmp_path / "bare")
    try:
        assert chrome.goto(base + "/dead") == 401
    finally:
        chrome.close()
