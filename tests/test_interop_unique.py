"""sidekiq-unique-jobs interop: digests equal Ruby's, and each side honours and releases the other's locks.

The gem is not packaged for Debian, so ``tests/ruby/unique_digest.rb`` computes digests the gem's way
with Ruby's own JSON and OpenSSL, and the lock layout written by the gem's scripts is written by hand.
"""

from __future__ import annotations

import json
import time
from types import SimpleNamespace
from typing import Any

import pytest
import redis
from tests.rubyhelp import requires_ruby, ruby_run

import pyq
from pyq import unique
from pyq.keys import Keys

CASES: list[dict[str, Any]] = [
    {"class": "MyJob", "queue": "default", "args": [1, "a"]},
    {"class": "Sync::User", "queue": "critical", "args": []},
    {"class": "Uni", "queue": "q", "args": ["héllo wörld", "日本語", "emoji 🎉", "a/b", "tab\tnl\n",
                                             "\u2028\x01\x1f\x7f", 'quote " back \\']},
    {"class": "Nested", "queue": "default", "args": [{"b": {"z": [1, {"y": None}], "a": True}, "a": False}, [[[]]]]},
    {"class": "Floats", "queue": "default", "args": [1.0, 0.1, -2.5, 1e15, 1e16, 123456789012345.6, 1e-4, 1e-5,
                                                  2.5e-7, 1e100, 5e-324, 1.7976931348623157e308, -0.0, 100.0, 3.14159]},
    {"class": "Ints", "queue": "default", "args": [0, -1, 2**53 + 1, 2**64, -(2**70), 10**30]},
    {"class": "Apt", "queue": "default", "args": [1], "apartment": "tenant_1"},
    {"class": "Across", "queue": "a", "args": [1], "unique_across_queues": True},
    {"class": "Across", "queue": "a", "args": [1], "unique_across_workers": True},
    {"class": "Args", "queue": "default", "args": [1, 2, 3], "lock_args": [3], "lock_prefix": "myprefix"},
]


@requires_ruby
def test_digests_equal_the_ruby_gems(redis_url: str) -> None:
    # Given digests computed by Ruby the way sidekiq-unique-jobs v8 does
    ruby = json.loads(ruby_run("unique_digest.rb", redis_url, json.dumps(CASES)))
    for case, expected in zip(CASES, ruby, strict=True):
        # Then pyq's JSON bytes and both digests are the same
        pairs = {k: case[k] for k in ("class", "queue", "apartment") if k in case}
        pairs["lock_args"] = case.get("lock_args", case["args"])
        pairs = {k: v for k, v in pairs.items() if not (k == "queue" and case.get("unique_across_queues"))
                 and not (k == "class" and case.get("unique_across_workers"))}
        assert unique.ruby_json([[k, pairs[k]] for k in sorted(pairs)]) == expected["json"], case["class"]
        assert unique.digest(case) == expected["legacy"], case
        assert unique.digest(case, algorithm="modern") == expected["modern"], case


def test_digest_rejects_an_unknown_algorithm() -> None:
    with pytest.raises(ValueError, match="unknown digest algorithm 'md4'"):
        unique.digest(CASES[0], algorithm="md4")


def ruby_lock(r: redis.Redis, digest: str, jid: str) -> None:
    """What the gem's lock scripts leave behind for a held until_executed lock, key by key."""
    now = time.time()
    r.set(digest, jid)
    r.hset(f"{digest}:LOCKED", jid, repr(now))
    r.zadd("uniquejobs:digests", {digest: now})
    r.set(f"{digest}:INFO", json.dumps({"worker": "Sync::User", "type": "until_executed"}))


@requires_ruby
def test_a_ruby_lock_blocks_a_pyq_enqueue_and_pyq_releases_it(client: pyq.Client, r: redis.Redis,
                                                               redis_url: str) -> None:
    # Given a Ruby job holding the lock for Sync::User(42) on default, with the digest Ruby computes
    job = {"class": "Sync::User", "queue": "default", "args": [42]}
    digest = json.loads(ruby_run("unique_digest.rb", redis_url, json.dumps([job])))[0]["legacy"]
    ruby_jid = "a" * 24
    ruby_lock(r, digest, ruby_jid)
    # When pyq pushes the same job, it is refused
    assert client.push({**job, "lock": "until_executed"}) is None
    assert r.llen("queue:default") == 0
    # And when pyq's worker runs the Ruby-pushed job (payload fields as the gem writes them)
    ruby_payload = {**job, "jid": ruby_jid, "retry": True, "lock": "until_executed", "lock_timeout": 0,
                    "lock_ttl": None, "lock_prefix": "uniquejobs", "lock_args": [42], "lock_digest": digest}
    ctx = SimpleNamespace(job=ruby_payload, raw=json.dumps(ruby_payload).encode(), redis=r, keys=Keys(), dead=None)
    assert unique.server_middleware(ctx, lambda: "ran") == "ran"
    # Then the Ruby lock is released the gem's way, and pyq can lock the digest again
    assert r.exists(digest, f"{digest}:LOCKED", f"{digest}:INFO") == 0
    assert r.zscore("uniquejobs:digests", digest) is None
    assert r.lrange(f"{digest}:QUEUED", 0, -1) == [b"1"]
    assert client.push({**job, "lock": "until_executed"})


def test_a_pyq_lock_is_what_the_gems_lock_check_reads(client: pyq.Client, r: redis.Redis) -> None:
    # When pyq locks a job
    jid = client.push({"class": "Sync::User", "args": [42], "lock": "until_executed", "lock_ttl": 30})
    digest = json.loads(r.lindex("queue:default", 0))["lock_digest"]
    # Then the keys the gem's lock and queue scripts read say "locked by jid" (HLEN > 0, D = jid)
    assert r.type(digest) == b"string" and r.get(digest) == jid.encode()
    assert r.type(f"{digest}:LOCKED") == b"hash" and r.hlen(f"{digest}:LOCKED") == 1
    assert float(r.hget(f"{digest}:LOCKED", jid)) == pytest.approx(time.time(), abs=5)
    assert r.zscore("uniquejobs:digests", digest) == pytest.approx(time.time(), abs=5)
    assert 29_000 < r.pttl(digest) <= 30_000 and 29_000 < r.pttl(f"{digest}:LOCKED") <= 30_000
    # And the payload carries the fields the gem's server middleware and death handler use
    job = json.loads(r.lindex("queue:default", 0))
    assert job["lock_digest"] == digest and job["lock_prefix"] == "uniquejobs" and job["lock_ttl"] == 30


def test_a_namespace_prefixes_every_lock_key(redis_url: str, r: redis.Redis) -> None:
    c = pyq.Client(redis_url, namespace="app")
    c.push({"class": "Sync::User", "args": [1], "lock": "until_executed"})
    digest = json.loads(r.lindex("app:queue:default", 0))["lock_digest"]
    assert r.exists(f"app:{digest}", f"app:{digest}:LOCKED") == 2
    assert r.zscore("app:uniquejobs:digests", f"app:{digest}") is not None
    c.redis.close()
