"""The worker pool as users run it: real ``pyq`` processes, real signals, real kills."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import pytest

from pool import child_pids, running_pool, wait_until

pytestmark = pytest.mark.slow


def done_tokens(r) -> list[str]:
    return [t.decode() for t in r.lrange("test:done", 0, -1)]


def test_pool_runs_sync_async_and_class_jobs_from_pyq_and_ruby_style_pushes(tmp_path, r, client, redis_url):
    with running_pool(tmp_path, redis_url):
        client.push({"class": "Record", "args": ["pyq"]})
        client.push({"class": "AsyncRecord", "args": ["async"]})
        r.lpush("queue:default", b'{"class":"Record","args":["ruby"],"queue":"default",'
                                 b'"jid":"a1b2c3d4e5f6a1b2c3d4e5f6","created_at":1700000000.5,'
                                 b'"enqueued_at":1700000000.5,"retry":true}')
        wait_until(lambda: len(done_tokens(r)) == 3)
        wait_until(lambda: r.get("stat:processed") == b"3")  # acks follow the runs by a few ms
    assert sorted(done_tokens(r)) == ["async", "pyq", "ruby"]


def test_sigkill_of_a_worker_while_1000_jobs_flow_loses_nothing(tmp_path, r, client, redis_url):
    # Given 1,000 jobs flowing through 2 worker processes
    with running_pool(tmp_path, redis_url, concurrency=4) as proc:
        wait_until(lambda: len(child_pids(proc.pid)) == 2)
        from workerjobs import slowish

        slowish.perform_bulk([(str(i),) for i in range(1000)])
        wait_until(lambda: r.llen("test:done") > 100)
        # When one worker is SIGKILLed mid-stream
        victim = random.choice(child_pids(proc.pid))
        os.kill(victim, signal.SIGKILL)
        # Then every job completes at least once and a replacement worker is forked
        wait_until(lambda: len(set(done_tokens(r))) == 1000, timeout=60)
        wait_until(lambda: len(child_pids(proc.pid)) == 2 and victim not in child_pids(proc.pid))
    assert set(done_tokens(r)) == {str(i) for i in range(1000)}
    assert r.llen("queue:default") == 0
    log = (tmp_path / "pool.log").read_text()
    assert "killed by signal 9: recovering its jobs" in log


def test_sigterm_puts_a_long_job_back_and_exits_within_timeout(tmp_path, r, client, redis_url):
    with running_pool(tmp_path, redis_url, timeout=1, processes=1) as proc:
        client.push({"class": "Sleepy", "args": ["long", 30]})
        wait_until(lambda: r.llen("test:started") == 1)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        elapsed = time.monotonic() - started
    assert elapsed < 1 + 2.5, elapsed
    assert r.llen("test:done") == 0
    back = r.lrange("queue:default", 0, -1)
    assert len(back) == 1 and b'"Sleepy"' in back[0]
    assert not [k for k in r.scan_iter("pyq:inflight:*") if r.llen(k)]


def test_sigterm_lets_short_jobs_finish(tmp_path, r, client, redis_url):
    with running_pool(tmp_path, redis_url, timeout=5, processes=1) as proc:
        client.push({"class": "Sleepy", "args": ["short", 0.5]})
        wait_until(lambda: r.llen("test:started") == 1)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    assert done_tokens(r) == ["short"] and r.llen("queue:default") == 0
    assert "hurried" not in (tmp_path / "pool.log").read_text()  # a stop within the timeout is not hurried


def test_tstp_quiets_the_pool_no_new_job_starts(tmp_path, r, client, redis_url):
    with running_pool(tmp_path, redis_url, processes=1) as proc:
        wait_until(lambda: r.scard("processes") == 1)
        proc.send_signal(signal.SIGTSTP)
        identity = r.smembers("processes").pop()
        wait_until(lambda: r.hget(identity, "quiet") == b"true", timeout=10)
        client.push({"class": "Record", "args": ["after-quiet"]})
        time.sleep(1.5)
        assert r.llen("test:done") == 0 and r.llen("queue:default") == 1


def test_bad_config_prints_one_clear_line_and_exits_2(tmp_path):
    cfg = tmp_path / "bad.yml"
    cfg.write_text("concurrency: ten\n")
    out = subprocess.run([sys.executable, "-m", "pyq", "-C", str(cfg)], capture_output=True, text=True, timeout=30)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "concurrency" in lines[0] and "bad.yml" in lines[0], out.stderr


def test_missing_redis_logs_a_clear_retrying_line_not_a_traceback(tmp_path):
    with running_pool(tmp_path, "redis://:secret@127.0.0.1:1/0") as proc:
        time.sleep(3)
        assert proc.poll() is None
    log = (tmp_path / "pool.log").read_text()
    [line] = [line for line in log.splitlines() if "Redis unavailable" in line]  # once, not once per retry
    assert "redis://:***@127.0.0.1:1/0" in line and "retrying every 2s" in line
    assert "Traceback" not in log and "secret" not in log


def test_ttin_dumps_thread_stacks_to_the_log(tmp_path, r, redis_url):
    with running_pool(tmp_path, redis_url, processes=1) as proc:
        wait_until(lambda: r.scard("processes") == 1)
        proc.send_signal(signal.SIGTTIN)
        wait_until(lambda: "thread pyq-heartbeat" in (tmp_path / "pool.log").read_text(), timeout=10)


@pytest.mark.ruby
def test_ruby_quiet_bang_quiets_a_pyq_process(tmp_path, r, redis_url):
    from rubyhelp import ruby_run

    with running_pool(tmp_path, redis_url, processes=1, heartbeat_interval=0.5):
        wait_until(lambda: r.scard("processes") == 1)
        ruby_run("Sidekiq::ProcessSet.new.each(&:quiet!)", redis_url)
        identity = r.smembers("processes").pop()
        wait_until(lambda: r.hget(identity, "quiet") == b"true", timeout=10)
        out = ruby_run("puts Sidekiq::ProcessSet.new.map { |p| p.stopping? }.inspect", redis_url)
        assert out.strip() == "[true]"



def test_jobs_fetched_while_the_reply_was_lost_are_put_back_and_run(r, client, redis_url, monkeypatch):
    # Given a running worker, and a job that a fetch moved into its in-flight list whose reply never arrived
    from pool import running_worker
    from pyq import payload

    monkeypatch.setenv("PYQ_REDIS_URL", redis_url)
    import workerjobs

    monkeypatch.setattr(workerjobs, "_conn", None)

    with running_worker(redis_url, "lost:1:0123456789ab", concurrency=1) as worker:
        from workerjobs import record

        raw = payload.dumps({"class": "Record", "args": ["lost-reply"], "queue": "default", "jid": "c" * 24})
        r.lpush("pyq:inflight:lost:1:0123456789ab", raw)
        record.perform_async("known")
        wait_until(lambda: done_tokens(r) == ["known"])
        # When the worker reconciles after an outage
        assert worker.reclaim_lost_fetches() == 1
        # Then the lost job is put back, runs, and nothing stays in flight
        wait_until(lambda: sorted(done_tokens(r)) == ["known", "lost-reply"])
        wait_until(lambda: r.llen("pyq:inflight:lost:1:0123456789ab") == 0)
        assert worker.reclaim_lost_fetches() == 0
