"""The dashboard's pages and actions, request by request (in-process WSGI calls over a real Redis)."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest
import redis
from tools.dashboard_demo import BACKTRACE, IDENTITY, failed, job, seed

import pyq
from pool import fetch_order
from pyq.config import Config
from pyq.cron import CronJob, CronStore
from pyq.keys import Keys
from pyq.web import Dashboard, wsgi_app
from webhelp import PASSWORD, call, keys_of, token_of


@pytest.fixture
def app(redis_url: str) -> Dashboard:
    return wsgi_app(Config(redis_url=redis_url), password=PASSWORD)


def page(app: Dashboard, path: str, query: str = "") -> str:
    status, _, body = call(app, path, query)
    assert status.startswith("200"), (status, body)
    return body


def post(app: Dashboard, action: str, **fields: Any) -> tuple[str, str]:
    """(status, Location or body) of one action posted with the page's token."""
    token = token_of(page(app, "/retries"))
    status, headers, body = call(app, f"/action/{action}", method="POST", body={"csrf": token, **fields})
    return status, headers.get("Location", body)


def rows(body: str, table: str) -> int:
    found = re.search(rf"<table id='{table}'>(.*?)</table>", body, re.S)
    return found.group(1).count("<tr>") - 1 if found else 0


def retries(r: redis.Redis, count: int, now_s: float) -> None:
    r.zadd("retry", {json.dumps(failed(f"j{n}", "Report", now_s)): now_s + n for n in range(count)})


# --- overview -------------------------------------------------------------------------------------------------
def test_overview_charts_the_days_asked_for_and_sums_execution_metrics(app: Dashboard, r: redis.Redis) -> None:
    seed(r)
    body = page(app, "/", "days=7")
    assert body.count("<rect class='processed'") == 7 and body.count("<rect class='failed'") == 7
    today = time.strftime("%Y-%m-%d", time.gmtime())
    assert f"{today} processed: {int(r.get(f'stat:processed:{today}'))}</title>" in body
    assert page(app, "/", "days=9999").count("<rect class='processed'") == 180  # clamped to the longest choice
    metrics = re.search(r"<table id='metrics-table'>(.*?)</table>", body, re.S).group(1)
    # BuildReport: 120 runs, 4 failed, 58 s over 116 successes = 500 ms each; busiest first
    assert re.search(r"<td>BuildReport</td><td>120</td><td>4</td><td>116</td><td>500.00</td>", metrics)
    assert metrics.index("SendMail") < metrics.index("BuildReport")
    assert "id='card-processed'><b>123456</b>" in body
    earlier = time.gmtime(time.time() - 100 * 60)
    r.hset(f"j|{time.strftime('%Y%m%d', earlier)}|{earlier.tm_hour}:{earlier.tm_min}", "OldJob|p", 9)
    assert "OldJob" not in page(app, "/") and "<td>OldJob</td><td>9</td>" in page(app, "/", "minutes=240")


def test_refresh_is_off_by_default_and_follows_the_chosen_interval(app: Dashboard, r: redis.Redis) -> None:
    assert "http-equiv='refresh'" not in page(app, "/")
    body = page(app, "/dead", "refresh=5")
    assert "<meta http-equiv='refresh' content='5'>" in body and "href='/queues?refresh=5'" in body
    assert "http-equiv='refresh'" not in page(app, "/", "refresh=7")  # not one of the choices
    chooser = page(app, "/dead", "page=2&q=x&msg=done&refresh=5").split("id='refresh'>", 1)[1].split("</form>")[0]
    assert "name='page' value='2'" in chooser and "name='q' value='x'" in chooser  # the page stays as it is
    assert "name='msg'" not in chooser


# --- sorted sets: paging, filter, bulk actions ----------------------------------------------------------------
def test_a_set_pages_by_index_with_first_and_last(app: Dashboard, r: redis.Redis) -> None:
    retries(r, 60, time.time())
    first, last = page(app, "/retries"), page(app, "/retries", "page=3")
    assert rows(first, "retry-table") == 25 and rows(last, "retry-table") == 10
    assert "page 1 of 3" in first and "href='/retries?page=3' rel='last'" in first
    assert keys_of(first)[0].endswith("|j0") and keys_of(last)[-1].endswith("|j59")
    assert "page 3 of 3" in page(app, "/retries", "page=99")  # clamped


def test_the_filter_matches_class_jid_error_or_args_literally(app: Dashboard, r: redis.Redis) -> None:
    now_s = time.time()
    retries(r, 3000, now_s)
    r.zadd("retry", {json.dumps(failed("needle-jid", "Report", now_s, args=["a*b"])): now_s})
    assert [k.split("|")[1] for k in keys_of(page(app, "/retries", "q=needle"))] == ["needle-jid"]
    assert [k.split("|")[1] for k in keys_of(page(app, "/retries", "q=a*b"))] == ["needle-jid"]  # * is literal
    body = page(app, "/retries", "q=Report")  # matches everything: one bounded page, then a cursor onwards
    assert 25 <= len(keys_of(body)) < 3001 and "rel='next'" in body


def test_bulk_actions_on_a_selection(app: Dashboard, r: redis.Redis) -> None:
    retries(r, 5, time.time())
    chosen = keys_of(page(app, "/retries"))[:2]
    status, location = post(app, "retry", set="retry", key=chosen, back="/retries?page=1")
    assert status.startswith("303") and location.startswith("/retries?page=1&msg=retry%3A%202%20of%202")
    pushed = [json.loads(raw) for raw in r.lrange("queue:default", 0, -1)]
    assert sorted(j["jid"] for j in pushed) == ["j0", "j1"] and {j["retry_count"] for j in pushed} == {1}
    kill_key = keys_of(page(app, "/retries"))[0]
    post(app, "kill", set="retry", one=kill_key)
    assert r.zcard("retry") == 2 and json.loads(r.zrange("dead", 0, 0)[0])["jid"] == "j2"
    post(app, "add_to_queue", set="retry", key=keys_of(page(app, "/retries")))
    assert r.zcard("retry") == 0 and r.llen("queue:default") == 4
    assert json.loads(r.lindex("queue:default", 0))["retry_count"] == 2  # add to queue keeps the count


def test_actions_on_all_of_a_set(app: Dashboard, r: redis.Redis) -> None:
    now_s = time.time()
    r.zadd("schedule", {json.dumps(job(f"s{n}", "Later")): now_s + 60 + n for n in range(4)})
    post(app, "kill", set="schedule", all="1")
    assert r.zcard("schedule") == 0 and r.zcard("dead") == 4
    post(app, "retry", set="dead", all="1")
    assert r.zcard("dead") == 0 and r.llen("queue:default") == 4
    retries(r, 3, now_s)
    status, location = post(app, "delete", set="retry", all="1", back="/retries")
    assert "delete%3A%203%20of%20retry" in location and r.zcard("retry") == 0
    assert post(app, "retry", set="schedule", all="1")[0].startswith("400")  # not offered for scheduled jobs
    assert post(app, "delete", set="retry")[0].startswith("400")  # nothing selected


# --- queues -------------------------------------------------------------------------------------------------
def test_a_queue_pages_newest_first_and_deletes_one_selected_or_all(app: Dashboard, r: redis.Redis) -> None:
    r.sadd("queues", "mail")
    for n in range(30):
        r.lpush("queue:mail", json.dumps(job(f"m{n}", "Mail", "mail")))
    first = page(app, "/queues/mail")
    assert keys_of(first)[0] == "0|m29" and "page 1 of 2" in first and rows(page(app, "/queues/mail", "page=2"),
                                                                              "jobs-table") == 5
    post(app, "queue_delete", queue="mail", one="0|m29")
    r.lpush("queue:mail", json.dumps(job("new", "Mail", "mail")))  # the list moved: m28 is now at index 1
    post(app, "queue_delete", queue="mail", key=["0|m28", "2|m26"])
    left = [json.loads(x)["jid"] for x in r.lrange("queue:mail", 0, 3)]
    assert left == ["new", "m27", "m25", "m24"]
    expected = [f"{8 + i}|m{19 - i}" for i in range(10)] + ["26|m1"]
    assert keys_of(page(app, "/queues/mail", "q=m1")) == expected
    post(app, "queue_clear", queue="mail")
    assert not r.exists("queue:mail") and "mail" not in page(app, "/queues")


def test_a_queue_page_lists_its_jobs_with_a_priority_the_last_to_run_first(app: Dashboard, r: redis.Redis,
                                                                           client: pyq.Client) -> None:
    # Given a queue holding default-priority jobs (its list) and jobs above and below the default (its zset)
    mail = pyq.job(name="Mail", queue="mail")(lambda token: None).set(client=client)
    levels = [0, 5, -5, 0, 10, 5, -5, 0] * 4
    for n, level in enumerate(levels):
        mail.set(priority=level).perform_async(f"m{n}")
    # Then its pages hold all 32, the last to run first: the exact reverse of the order a fetch takes them
    body = page(app, "/queues/mail")
    assert "32 jobs in mail" in body and "page 1 of 2" in body
    second_page = page(app, "/queues/mail", "page=2")
    listed = keys_of(body) + keys_of(second_page)
    jids = [key.split("|")[1] for key in listed]
    taken = [queued["jid"] for queued in fetch_order(r, "mail")]
    assert jids == taken[::-1]
    assert [key.split("|")[0] for key in listed[:8]] == [f"p{n}" for n in range(8)]  # the -5s, from the zset
    assert "<td>p0</td><td>-5</td>" in body and "<td>p19</td><td>10</td>" in second_page
    r.delete("pyq:inflight:host:1:abc", "pyq:inflight-owners")

    # And a job with a priority opens on the job page and is deleted by its key, after the set moved
    for n, level in enumerate(levels):
        mail.set(priority=level).perform_async(f"n{n}")
    first, second = keys_of(page(app, "/queues/mail"))[:2]
    assert first.startswith("p0|") and "Job " in page(app, "/job", f"queue=mail&key={first}")
    mail.set(priority=-9).perform_async("lowest")  # now at p0: the others move up one place
    post(app, "queue_delete", queue="mail", key=[first, second])
    left = {json.loads(raw)["jid"] for raw in r.zrange("pyq:prio:mail", 0, -1)}
    assert first.split("|")[1] not in left and second.split("|")[1] not in left and len(left) == 20 - 2 + 1
    assert post(app, "queue_delete", queue="mail", one="q1|x")[0].startswith("400")  # not a place


# --- one job --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("plain", [False, True], ids=["compressed", "plain-list"])
def test_the_job_page_decodes_the_backtrace_and_shows_the_retry_history(app: Dashboard, r: redis.Redis,
                                                                        plain: bool) -> None:
    now_s = time.time()
    r.zadd("retry", {json.dumps(failed("j1", "Report", now_s, plain=plain)): now_s + 30})
    [key] = keys_of(page(app, "/retries"))
    body = page(app, "/job", f"set=retry&key={key}")
    assert "\n".join(BACKTRACE).replace("'", "&#x27;") in body
    assert "<b>ReportError</b>: report j1 failed: &lt;timeout&gt;" in body
    history = re.search(r"<table id='retry-history'>(.*?)</table>", body, re.S).group(1)
    assert "<td>retry_count</td><td>2</td>" in history
    assert f"<td>next retry (UTC)</td><td>{time.strftime('%Y-%m-%d %H:%M', time.gmtime(now_s + 30))}" in history
    assert "&quot;jid&quot;: &quot;j1&quot;" in body  # the whole payload, pretty-printed
    assert call(app, "/job", "set=retry&key=1.5|gone")[0].startswith("404")


def test_the_job_page_of_a_queued_job(app: Dashboard, r: redis.Redis) -> None:
    r.lpush("queue:default", json.dumps(job("q1", "Tidy", args=[{"deep": [1, 2]}])))
    body = page(app, "/job", "queue=default&key=0|q1")
    assert "&quot;deep&quot;: [" in body and "data-action='queue_delete'" in body


# --- cron, processes, busy, batches -------------------------------------------------------------------------
def test_cron_enable_disable_and_run_now(app: Dashboard, r: redis.Redis) -> None:
    store = CronStore(r, Keys())
    store.save(CronJob("nightly", "0 3 * * *", "Report", "reports"))
    assert "data-action='cron_disable'" in page(app, "/cron")
    post(app, "cron_disable", name="nightly", namespace="default")
    assert store.get("nightly").status == "disabled" and "data-action='cron_enable'" in page(app, "/cron")
    post(app, "cron_enable", name="nightly", namespace="default")
    assert store.get("nightly").status == "enabled"
    status, location = post(app, "cron_run", name="nightly", namespace="default", back="/cron")
    assert "run%20nightly%3A%20jid" in location and json.loads(r.lindex("queue:reports", 0))["class"] == "Report"
    assert post(app, "cron_run", name="nope")[0].startswith("400")


def test_quiet_and_stop_one_process_or_all(app: Dashboard, r: redis.Redis) -> None:
    seed(r)
    r.sadd("processes", "web-2:1:x")
    r.hset("web-2:1:x", mapping={"info": json.dumps({"hostname": "web-2", "pid": 1}), "beat": time.time()})
    assert "web-2:1:x" in page(app, "/processes")
    assert page(app, "/processes", "q=web-2").count("data-action='stop'") == 2  # its own and "Stop all"
    post(app, "quiet", identity=IDENTITY)
    assert r.lrange(f"{IDENTITY}-signals", 0, -1) == [b"TSTP"]
    post(app, "stop", all="1")
    assert r.lrange(f"{IDENTITY}-signals", 0, -1) == [b"TERM", b"TSTP"] and r.lrange("web-2:1:x-signals", 0, -1) == [
        b"TERM"]


def test_busy_and_batches(app: Dashboard, r: redis.Redis) -> None:
    seed(r)
    busy = page(app, "/busy")
    assert "busy-1" in busy and "BuildReport" in busy and "data-action='cancel'" in busy
    assert "<td>120/400 (30%) regions</td>" in busy  # the progress the job reported
    assert "busy-table-empty" in page(app, "/busy", "q=nothing-like-it")
    listing = page(app, "/batches")
    [bid] = re.findall(r"href='/batches/([^']+)'", listing)
    one = page(app, f"/batches/{bid}")
    assert "import of 3 feeds" in one and "<td>total</td><td>3</td>" in one
    assert call(app, "/batches/no-such")[0].startswith("404")


# --- safety ---------------------------------------------------------------------------------------------------
def test_hostile_values_are_escaped_everywhere(app: Dashboard, r: redis.Redis) -> None:
    evil = "<img src=x onerror=alert(1)>'\""
    now_s = time.time()
    entry = failed(evil, evil, now_s, args=[evil], queue=evil)
    r.zadd("retry", {json.dumps(entry): now_s})
    r.zadd("dead", {json.dumps(entry): now_s})
    r.sadd("queues", evil)
    r.lpush(f"queue:{evil}", json.dumps(job(evil, evil, evil)))
    r.hset(f"j|{time.strftime('%Y%m%d|%-H:%-M', time.gmtime())}", f"{evil}|p", 1)
    [key] = keys_of(page(app, "/retries"))
    bodies = [page(app, p, q) for p, q in (("/", ""), ("/queues", ""), ("/retries", ""), ("/dead", ""),
                                           ("/retries", "q=" + evil), ("/job", f"set=retry&key={key}"))]
    bodies.append(page(app, "/queues/" + evil))
    for body in bodies:
        assert "<img" not in body and "&lt;img src=x onerror=alert(1)&gt;" in body


def test_actions_redirect_only_inside_the_dashboard(app: Dashboard, r: redis.Redis) -> None:
    retries(r, 1, time.time())
    assert post(app, "delete", set="retry", all="1", back="//evil.example/")[1].startswith("/?msg=")
    assert post(app, "delete", set="retry", all="1", back="https://evil.example/")[1].startswith("/?msg=")


def test_every_response_says_how_long_it_took(app: Dashboard) -> None:
    _, headers, _ = call(app, "/dead")
    assert re.fullmatch(r"app;dur=\d+\.\d", headers["Server-Timing"])


def test_unknown_pages_and_actions(app: Dashboard) -> None:
    assert call(app, "/nope")[0].startswith("404")
    assert post(app, "nope")[0].startswith("404")
    assert call(app, "/retries", method="DELETE")[0].startswith("405")


def test_a_backtrace_that_is_not_readable_says_so(app: Dashboard, r: redis.Redis) -> None:
    now_s = time.time()
    r.zadd("dead", {json.dumps(failed("b1", "X", now_s, error_backtrace="not base64!")): now_s})
    [key] = keys_of(page(app, "/dead"))
    assert "error_backtrace is not readable" in page(app, "/job", f"set=dead&key={key}")


def test_progress_lists_every_job_that_reported_newest_first(app: Dashboard, r: redis.Redis) -> None:
    from pyq.job_progress import Reporter

    seed(r)  # the busy job reports 120/400
    r.set("pyq:progress:not-a-hash", "x")  # another type under the prefix is skipped
    time.sleep(0.01)
    Reporter(r, Keys(), "finished-1").report(5, 5, "all <done>")
    body = page(app, "/progress")
    assert rows(body, "progress-table") == 2 and "2 jobs reported progress" in body
    assert body.index("finished-1") < body.index("busy-1")  # newest report first
    assert "all &lt;done&gt;" in body and "100%" in body
    assert rows(page(app, "/progress", "q=finished"), "progress-table") == 1
