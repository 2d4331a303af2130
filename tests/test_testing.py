"""pyq.testing: fake mode records, inline mode runs, both swap the default client and restore it."""

from __future__ import annotations

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
