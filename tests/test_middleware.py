"""middleware.py: global client/server chains, async jobs under middleware, per-job callbacks."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
import redis

import pyq
from pyq import middleware
from pyq.client import Client
from test_processor import IDENTITY, KEYS, a_job, fetched, make_processor

LOG: list[object] = []


@pytest.fixture(autouse=True)
def _clean():
    LOG.clear()
    saved = [list(middleware.client_middleware), list(middleware.server_middleware)]
    yield
    middleware.client_middleware[:], middleware.server_middleware[:] = saved


@pyq.job(name="Mw::Sync")
def sync_job(x: int) -> None:
    LOG.append(("job", x))
    if x < 0:
        raise ValueError("negative")


@pyq.job(name="Mw::Async")
async def async_job(x: int) -> None:
    await asyncio.sleep(0.05)
    LOG.append(("job", x))
    if x < 0:
        raise ValueError("negative")


def _before(ctx):
    LOG.append(("before", ctx.args))


def _after(ctx):
    LOG.append(("after", ctx.args))


def _around(ctx, call_next):
    LOG.append("around in")
    result = call_next()
    LOG.append("around out")
    return result


@pyq.job(name="Mw::Callbacks", before_perform=_before, after_perform=_after, around_perform=_around)
def with_callbacks(x: int) -> None:
    LOG.append(("job", x))
    if x < 0:
        raise ValueError("negative")


async def _abefore(ctx):
    await asyncio.sleep(0)
    LOG.append("async before")


@pyq.job(name="Mw::AsyncCallbacks", before_perform=_abefore, after_perform=_after)
async def async_with_callbacks(x: int) -> None:
    LOG.append(("job", x))


@pyq.job(name="Mw::Mismatch", before_perform=_abefore)
def sync_with_async_callback(x: int) -> None:
    LOG.append(("job", x))


def run(r: redis.Redis, raw: str, **kwargs) -> None:
    processor = make_processor(r, **kwargs)
    ctx = processor.prepare(fetched(r, raw))
    if ctx.definition.is_async:
        asyncio.run(processor.run_async(ctx))
    else:
        processor.run(ctx)
    processor.acker.flush()


# --- client ------------------------------------------------------------------------------------


def test_global_client_middleware_changes_or_stops_pushes_of_default_clients(client: Client, r, redis_url) -> None:
    @middleware.add_client_middleware
    def stamp(job, call_next):
        return call_next({**job, "tenant": "acme"})

    middleware.add_client_middleware(lambda job, call_next: None if job["args"] == [0] else call_next(job))
    sync_job.perform_async(1)
    assert sync_job.perform_async(0) == ""
    Client(redis_url, middleware=[]).push({"class": "Mw::Sync", "args": [0]})  # its own (empty) chain
    jobs = [json.loads(raw) for raw in r.lrange("queue:default", 0, -1)]
    assert [(j["args"], j.get("tenant")) for j in jobs] == [([0], None), ([1], "acme")]


# --- server ------------------------------------------------------------------------------------


def test_server_chain_order_global_first_and_a_skip_counts_as_done(r: redis.Redis) -> None:
    middleware.add_server_middleware(lambda ctx, call_next: (LOG.append("global"), call_next())[1])
    run(r, a_job("Mw::Sync", [1]), middleware=[lambda ctx, call_next: (LOG.append("own"), call_next())[1]])
    assert LOG == ["global", "own", ("job", 1)]
    LOG.clear()
    middleware.server_middleware.insert(0, lambda ctx, call_next: LOG.append("skipped"))
    run(r, a_job("Mw::Sync", [2]))
    assert LOG == ["skipped"] and int(r.get("stat:processed")) == 2 and r.llen(KEYS.inflight(IDENTITY)) == 0


@pytest.mark.parametrize("kind", ["async", "plain"])
def test_middleware_around_an_async_job_sees_its_real_run(r: redis.Redis, kind: str) -> None:
    async def async_mw(ctx, call_next):
        started = time.monotonic()
        try:
            await call_next()
        except ValueError as exc:
            LOG.append(("saw", str(exc)))
            raise
        LOG.append(("took", time.monotonic() - started >= 0.05))

    def plain_mw(ctx, call_next):
        started = time.monotonic()
        try:
            call_next()
        except ValueError as exc:
            LOG.append(("saw", str(exc)))
            raise
        LOG.append(("took", time.monotonic() - started >= 0.05))

    mw = async_mw if kind == "async" else plain_mw
    run(r, a_job("Mw::Async", [1]), middleware=[mw])
    assert LOG == [("job", 1), ("took", True)]
    run(r, a_job("Mw::Async", [-1]), middleware=[mw])
    assert LOG[2:] == [("job", -1), ("saw", "negative")] and r.zcard("retry") == 1


def test_job_callbacks_wrap_the_call_and_after_runs_only_on_success(r: redis.Redis) -> None:
    run(r, a_job("Mw::Callbacks", [1]))
    assert LOG == [("before", [1]), "around in", ("job", 1), "around out", ("after", [1])]
    LOG.clear()
    run(r, a_job("Mw::Callbacks", [-1]))
    assert LOG == [("before", [-1]), "around in", ("job", -1)] and r.zcard("retry") == 1


def test_async_callbacks_for_async_jobs_and_a_clear_error_for_sync_ones(r: redis.Redis) -> None:
    run(r, a_job("Mw::AsyncCallbacks", [1]))
    assert LOG == ["async before", ("job", 1), ("after", [1])]
    LOG.clear()
    run(r, a_job("Mw::Mismatch", [1]))
    [raw] = r.zrange("retry", 0, -1)
    assert LOG == [] and "before_perform is async but the job is not" in json.loads(raw)["error_message"]


def test_a_middleware_object_with_async_call_wraps_async_jobs_on_the_loop_thread(r: redis.Redis) -> None:
    import threading

    class Both:
        def __call__(self, ctx, call_next):
            LOG.append(("sync form", threading.current_thread().name))
            return call_next()

        async def async_call(self, ctx, call_next):
            LOG.append(("async form", threading.current_thread().name))
            return await call_next()

    loop_thread = threading.current_thread().name  # run() drives the job's coroutine from this thread
    run(r, a_job("Mw::Async", [1]), middleware=[Both()])
    logged = list(LOG)
    assert logged == [("async form", loop_thread), ("job", 1)]
    run(r, a_job("Mw::Sync", [2]), middleware=[Both()])
    assert LOG[2][0] == "sync form"
