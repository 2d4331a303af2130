"""pyq.testing: fake mode records, inline mode runs, both swap the default client and restore it."""

from __future__ import annotations

import re
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import redis

import pyq
from pyq import middleware, testing
from pyq.client import Client

# The plugin's fixtures, made visible to this module as a conftest.py would (or ``-p pyq.testing``).
pyq_jobs = testing.pyq_jobs
pyq_inline = testing.pyq_inline

DONE: list[object] = []


@pytest.fixture(autouse=True)
def _clean():
    DONE.clear()
    saved = list(middleware.client_middleware)
    yield
    middleware.client_middleware[:] = saved


@pyq.job(name="T::Welcome", queue="mail")
def send_welcome(email: str) -> None:
    DONE.append(("welcome", email))


@pyq.job(name="T::Signup")
def signup(email: str) -> None:
    DONE.append(("signup", email))
    send_welcome.perform_async(email)


@pyq.job(name="T::AsyncPing")
async def async_ping(n: int) -> None:
    DONE.append(("ping", n))


class Report(pyq.Job, name="T::Report"):
    queue = "reports"

    def perform(self, report_id: int, options: dict) -> None:
        DONE.append(("report", report_id, options, self.jid))


@pyq.job(name="T::Unique", lock="until_executed", lock_args=lambda args: [args[0]])
def unique_sync(user_id: int, note: str = "") -> None:
    DONE.append(("unique", user_id, note))


@pyq.job(name="T::Forever")
def forever() -> None:
    forever.perform_async()


def test_fake_records_per_job_and_queue_without_touching_redis(client: Client, r: redis.Redis) -> None:
    with testing.fake() as jobs:
        jid = signup.perform_async("a@x")
        Report.perform_in(60, 7, {"k": [1, 2]})
        send_welcome.set(queue="urgent").perform_async("b@x")
        assert len(jobs) == 3 and DONE == []
        assert jobs.for_job(signup)[0]["jid"] == jid and jobs.args("T::Signup") == [["a@x"]]
        assert [j["queue"] for j in jobs.for_job(send_welcome)] == ["urgent"]
        [report] = jobs.for_job(Report)
        assert report["queue"] == "reports" and "at" in report and "enqueued_at" not in report
        assert jobs.queue("default") == jobs.for_job(signup)
    assert r.keys("*") == []


def test_drain_runs_jobs_and_what_they_enqueue(client: Client) -> None:
    with testing.fake() as jobs:
        signup.perform_async("a@x")
        async_ping.perform_async(3)
        Report.perform_async(1, {"x": 1})
        assert jobs.drain(signup) == 1 and DONE == [("signup", "a@x")]
        assert jobs.args(send_welcome) == [["a@x"]]
        assert jobs.drain() == 3 and len(jobs) == 0
    assert DONE[1:3] == [("ping", 3), ("report", 1, {"x": 1}, DONE[2][3])] and DONE[3] == ("welcome", "a@x")


def test_clear_and_a_runaway_drain(client: Client) -> None:
    with testing.fake() as jobs:
        signup.perform_async("a")
        send_welcome.perform_async("b")
        jobs.clear(signup)
        assert jobs.args(send_welcome) == [["b"]] and jobs.for_job(signup) == []
        jobs.clear()
        assert len(jobs) == 0
        forever.perform_async()
        with pytest.raises(RuntimeError, match="enqueue itself"):
            jobs.drain()


def test_fake_pushes_are_validated_and_pass_client_middleware(client: Client) -> None:
    middleware.add_client_middleware(lambda job, call_next: call_next({**job, "tags": ["mw"]}))
    middleware.add_client_middleware(lambda job, call_next: None if job["args"] == ["skip"] else call_next(job))
    with testing.fake() as jobs:
        with pytest.raises(TypeError, match="not JSON-native"):
            send_welcome.perform_async(object())
        send_welcome.perform_async("skip")
        send_welcome.perform_async("keep")
        assert [(j["args"], j["tags"]) for j in jobs] == [(["keep"], ["mw"])]


def test_inline_runs_at_enqueue_and_errors_reach_the_caller(client: Client, r: redis.Redis) -> None:
    with testing.inline() as jobs:
        signup.perform_async("a@x")
        assert DONE == [("signup", "a@x"), ("welcome", "a@x")] and len(jobs) == 2
        with pytest.raises(TypeError):
            send_welcome.perform_async()  # missing argument, as a worker would find
    assert r.keys("*") == []


def test_the_real_default_client_comes_back(client: Client, r: redis.Redis) -> None:
    with testing.fake():
        send_welcome.perform_async("faked")
    send_welcome.perform_async("real")
    assert r.llen("queue:mail") == 1


def test_pytest_fixtures(pyq_jobs: testing.Jobs) -> None:
    send_welcome.perform_async("fixture")
    assert pyq_jobs.args(send_welcome) == [["fixture"]]


def test_inline_fixture(pyq_inline: testing.Jobs) -> None:
    Report.perform_async(5, {})
    assert DONE[0][:3] == ("report", 5, {}) and len(pyq_inline) == 1


def test_bulk_pushes_are_recorded_in_fake_mode(client: Client, r: redis.Redis) -> None:
    with testing.fake() as jobs:
        jids = send_welcome.perform_bulk([("a@x",), ("b@x",)])
        assert jobs.args(send_welcome) == [["a@x"], ["b@x"]]
        assert [j["jid"] for j in jobs] == jids and len(set(jids)) == 2
        assert all(j["queue"] == "mail" and "enqueued_at" in j for j in jobs)
        middleware.add_client_middleware(lambda job, call_next: call_next(job))  # the per-job bulk path too
        send_welcome.perform_bulk([("c@x",)])
        assert jobs.args(send_welcome)[-1] == ["c@x"]
        assert jobs.drain() == 3
    assert r.keys("*") == [] and [d[1] for d in DONE] == ["a@x", "b@x", "c@x"]


def test_scheduled_pushes_are_recorded_with_their_time(client: Client, r: redis.Redis) -> None:
    with testing.fake() as jobs:
        before = time.time()
        send_welcome.perform_in(60, "later@x")
        Report.perform_at(before + 120, 1, {})
        client_pushes = pyq.client.default_client().push_bulk({"class": "T::Welcome", "args": [["x"]],
                                                                "at": before + 30})
        [later, report, bulk] = list(jobs)
        assert later["at"] == pytest.approx(before + 60, abs=5) and report["at"] == pytest.approx(before + 120)
        assert bulk["jid"] == client_pushes[0] and bulk["at"] == pytest.approx(before + 30)
        assert not any("enqueued_at" in j for j in jobs)
    assert r.keys("*") == []


def test_unique_jobs_are_recorded_with_their_lock_fields_in_fake_mode(client: Client, r: redis.Redis) -> None:
    with testing.fake() as jobs:
        unique_sync.perform_async(7, "first")
        unique_sync.perform_in(30, 7, "scheduled")
        [now, later] = jobs.for_job(unique_sync)
        assert now["lock"] == "until_executed" and now["lock_args"] == [7] and now["lock_digest"].startswith("uniq")
        assert later["lock_digest"] == now["lock_digest"] and "at" in later
        jobs.drain()
    assert DONE == [("unique", 7, "first"), ("unique", 7, "scheduled")] and r.keys("*") == []


def test_every_push_path_ends_in_the_store_seam() -> None:
    calls: list[str] = []
    recorded = testing.Jobs()
    recorder = testing.Recorder(recorded)

    def store(batch):
        calls.extend(call.script for call in batch)
        return recorder(batch)

    fake = Client("fake://", connection=object(), store=store)
    with pyq.client.override_default(fake):
        send_welcome.perform_async("a")
        send_welcome.perform_bulk([("b",), ("c",)])
        send_welcome.perform_in(60, "d")
        unique_sync.perform_async(1)
    assert calls == ["enqueue", "enqueue", "enqueue", "lock_push"] and len(recorded) == 5


def test_override_default_swaps_the_default_client_and_restores_it(client: Client) -> None:
    before = pyq.client.default_client()
    other = testing.fake_client()
    with pyq.client.override_default(other) as swapped:
        assert swapped is other and pyq.client.default_client() is other
    assert pyq.client.default_client() is before


@pyq.job(name="Readme::Welcome")
def readme_welcome(email: str) -> None:
    DONE.append(email)


def test_the_readme_testing_example_runs() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme.split("## Testing your jobs", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "README.md: no python example under 'Testing your jobs'"
    names: dict[str, Any] = {"send_welcome": readme_welcome, "mailer": SimpleNamespace(sent=DONE),
                             "signup": lambda email: readme_welcome.perform_async(email)}
    exec(compile(match.group(1), "README.md", "exec"), names)
    names["test_signup_sends_a_welcome_mail"]()
    names["test_inline"]()
    assert DONE == ["ann@example.com", "ann@example.com"]


@pyq.job(name="T::WhoAmI", queue="mail")
def who_am_i() -> None:
    ctx = pyq.current()
    assert ctx is not None
    DONE.append((ctx.jid, ctx.name, ctx.queue, ctx.stopping))


@pyq.job(name="T::AsyncWhoAmI")
async def async_who_am_i() -> None:
    ctx = pyq.current()
    assert ctx is not None
    DONE.append((ctx.jid, ctx.name, ctx.queue, ctx.stopping))


def test_pyq_current_is_the_job_in_inline_and_drained_runs() -> None:
    # Given jobs that read pyq.current(), run inline and drained from fake mode
    with testing.inline():
        first = who_am_i.perform_async()
    with testing.fake() as jobs:
        second = async_who_am_i.perform_async()
        jobs.drain()
    # Then each saw its own run, and nothing is current outside a job
    seen = list(DONE)
    assert seen == [(first, "T::WhoAmI", "mail", False), (second, "T::AsyncWhoAmI", "default", False)]
    assert pyq.current() is None
