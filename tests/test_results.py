"""Job results (``result_ttl``): stored by real worker processes, read through handles. Real Redis."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
import redis

import pyq
from pool import running_pool, wait_until
from pyq import Client
from rubyhelp import requires_ruby, sidekiq_server

JOBS = '''
import asyncio, time
import pyq

@pyq.job(result_ttl=60)
def add(a, b):
    return {"sum": a + b, "finished_at": time.time()}

@pyq.job(result_ttl=60)
async def async_double(x):
    await asyncio.sleep(0.01)
    return [x, x * 2]

@pyq.job(result_ttl=60, retry=False)
def explode(why):
    raise ValueError(why)

@pyq.job(result_ttl=60)
def unencodable():
    return object()

@pyq.job(result_ttl=1)
def short_lived():
    return "soon gone"

@pyq.job(result_ttl=60, retry=3)
def fails_first(key):
    import redis, os
    if redis.Redis.from_url(os.environ["PYQ_REDIS_URL"]).incr(key) == 1:
        raise RuntimeError("first try fails")
    return "second try"

@pyq.job()
def no_result():
    return 1
'''


@pytest.fixture
def jobs(tmp_path: Path, client: Client) -> Path:
    (tmp_path / "resultjobs.py").write_text(JOBS)
    return tmp_path


def _job(client: Client, name: str, **options: object) -> pyq.job:
    """The pushing side of a job in ``JOBS``: its name and payload options, without importing the module."""
    return pyq.job(name=name, result_ttl=60, **options)(lambda *a: None).set(client=client)


def test_a_sync_job_result_is_returned_within_milliseconds_of_the_job_finishing(jobs: Path, redis_url: str,
                                                                                 client: Client) -> None:
    with running_pool(jobs, redis_url, require=["resultjobs"], processes=1):
        handle = _job(client, "resultjobs.add").perform_async(2, 3)
        assert isinstance(handle, str) and len(handle) == 24  # still the jid
        got = handle.result(timeout=10)
        returned_at = time.time()
    assert got["sum"] == 5
    print(f"\nthe result was returned {(returned_at - got['finished_at']) * 1000:.1f} ms after the job finished")
    assert returned_at - got["finished_at"] < 0.1
    assert handle.status() == "done"
    assert pyq.result(handle, client=client)["sum"] == 5  # from any process, by jid


def test_an_async_job_result_is_awaited(jobs: Path, redis_url: str, client: Client) -> None:
    with running_pool(jobs, redis_url, require=["resultjobs"], processes=1):
        handle = _job(client, "resultjobs.async_double").perform_async(21)
        assert asyncio.run(handle.aresult(timeout=10)) == [21, 42]


def test_a_dead_job_raises_job_failed_with_the_stored_error(jobs: Path, redis_url: str, r: redis.Redis,
                                                            client: Client) -> None:
    with running_pool(jobs, redis_url, require=["resultjobs"], processes=1):
        handle = _job(client, "resultjobs.explode", retry=False).perform_async("no good")
        with pytest.raises(pyq.JobFailed) as failed:
            handle.result(timeout=10)
    assert (failed.value.error_class, failed.value.error_message) == ("ValueError", "no good")
    assert handle.status() == "dead"


def test_a_value_msgpack_cannot_encode_is_stored_as_an_error_and_the_job_is_not_retried(
        jobs: Path, redis_url: str, r: redis.Redis, client: Client) -> None:
    with running_pool(jobs, redis_url, require=["resultjobs"], processes=1):
        handle = _job(client, "resultjobs.unencodable").perform_async()
        with pytest.raises(pyq.JobFailed) as failed:
            handle.result(timeout=10)
        wait_until(lambda: int(r.get("stat:processed") or 0) == 1, timeout=10)
    assert failed.value.error_class == "TypeError" and "cannot be stored" in failed.value.error_message
    assert r.zcard("retry") == 0 and r.zcard("dead") == 0
    assert "cannot be stored as a result" in (jobs / "pool.log").read_text()


def test_a_result_expires_after_its_ttl(jobs: Path, redis_url: str, r: redis.Redis, client: Client) -> None:
    with running_pool(jobs, redis_url, require=["resultjobs"], processes=1):
        handle = _job(client, "resultjobs.short_lived").set(result_ttl=1).perform_async()
        assert handle.result(timeout=10) == "soon gone"
        assert 0 < r.pttl(f"pyq:result:{handle}") <= 1000
    wait_until(lambda: not r.exists(f"pyq:result:{handle}"), timeout=5)
    with pytest.raises(TimeoutError):
        handle.result(timeout=0.2)


def test_a_failure_that_will_be_retried_stores_nothing(jobs: Path, redis_url: str, r: redis.Redis,
                                                       client: Client) -> None:
    with running_pool(jobs, redis_url, require=["resultjobs"], processes=1):
        handle = _job(client, "resultjobs.fails_first", retry=3).perform_async("test:tries")
        wait_until(lambda: r.zcard("retry") == 1, timeout=10)
        assert handle.status() == "retrying"
        with pytest.raises(TimeoutError):
            handle.result(timeout=0.3)


def test_status_follows_a_job_without_workers(r: redis.Redis, client: Client) -> None:
    job = _job(client, "resultjobs.add")
    assert job.perform_async(1, 2).status() == "queued"
    assert job.perform_in(60, 1, 2).status() == "scheduled"
    assert pyq.JobHandle("0" * 24, client).status() == "unknown"
    # and waiting for a result nobody writes ends in TimeoutError, promptly
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        job.perform_async(1, 2).result(timeout=0.5)
    assert time.monotonic() - started < 2


def test_a_job_without_result_ttl_stores_nothing(jobs: Path, redis_url: str, r: redis.Redis,
                                                 client: Client) -> None:
    with running_pool(jobs, redis_url, require=["resultjobs"], processes=1):
        jid = client.push({"class": "resultjobs.no_result", "args": []})
        wait_until(lambda: int(r.get("stat:processed") or 0) == 1, timeout=10)
    assert r.keys("pyq:result:*") == []
    assert jid and r.exists(f"pyq:result:{jid}") == 0


def test_result_ttl_must_be_a_number_of_seconds() -> None:
    with pytest.raises(TypeError, match="result_ttl"):
        pyq.job(result_ttl="forever")(lambda: None)
    with pytest.raises(TypeError, match="result_ttl"):
        pyq.job(result_ttl=0)(lambda: None)


def test_a_job_pushed_without_the_option_stores_a_result_when_its_definition_asks(
        jobs: Path, redis_url: str, client: Client) -> None:
    # Given a push that names the class only (as Ruby's client or a bare Client.push does)
    with running_pool(jobs, redis_url, require=["resultjobs"], processes=1):
        jid = client.push({"class": "resultjobs.add", "args": [40, 2]})
        # Then the worker's definition (result_ttl=60) decides, and the result is there
        assert pyq.result(jid, timeout=10, client=client)["sum"] == 42


@pytest.mark.slow
@requires_ruby
def test_a_job_run_by_ruby_sidekiq_writes_no_result_and_the_handle_says_so(redis_url: str, r: redis.Redis,
                                                                           client: Client) -> None:
    slow = pyq.job(name="SlowJob", result_ttl=60, queue="interop")(lambda seconds: None).set(client=client)
    with sidekiq_server("record_worker.rb", redis_url, "interop"):
        handle = slow.perform_async(6)  # Sidekiq 6.4 writes its busy data with its 5 s heartbeat
        # While Ruby runs it, the handle sees it running (in Sidekiq's busy data), and waiting times out
        wait_until(lambda: handle.status() == "running", timeout=15)
        with pytest.raises(TimeoutError):
            handle.result(timeout=0.5)
        # Once Ruby is done nothing was stored: the job is nowhere, and still no result
        wait_until(lambda: handle.status() == "unknown", timeout=15)
    assert r.exists(f"pyq:result:{handle}") == 0
