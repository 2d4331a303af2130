"""scripts.py and the producer-side Lua: the loader, script headers, NOSCRIPT reloads and promote.lua."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import redis

from pyq.payload import dumps
from pyq.scripts import ScriptLoadError, Scripts, assemble, header_slots, lua_dir

NOW = 1755400000.0
#: The enqueued_at text promote writes in these tests.
STAMP = "1755400100.5"

# --- loader ----------------------------------------------------------------------------------------------


def write_lua(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / f"{name}.lua"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def test_includes_are_inserted_once_in_order(tmp_path: Path) -> None:
    root = write_lua(tmp_path, {
        "main": '--- @include "includes/b"\n--- @include "includes/a"\nreturn b() + a()\n',
        "includes/a": "local function a() return 1 end\n",
        "includes/b": '--- @include "includes/a"\nlocal function b() return a() end\n',
    })
    text = assemble("main", root)
    assert text.count("local function a()") == 1
    assert text.index("local function a()") < text.index("local function b()") < text.index("return b()")
    assert "@include" not in text


def test_duplicate_include_in_one_file_is_inserted_once(tmp_path: Path) -> None:
    root = write_lua(tmp_path, {
        "main": '--- @include "includes/a"\n--- @include "includes/a"\nreturn a()\n',
        "includes/a": "local function a() return 1 end\n",
    })
    assert assemble("main", root).count("local function a()") == 1


def test_include_cycle_names_the_chain(tmp_path: Path) -> None:
    root = write_lua(tmp_path, {
        "main": '--- @include "includes/a"\nreturn 1\n',
        "includes/a": '--- @include "includes/b"\n',
        "includes/b": '--- @include "includes/a"\n',
    })
    with pytest.raises(ScriptLoadError, match="include cycle: main -> includes/a -> includes/b -> includes/a"):
        assemble("main", root)


def test_self_include_is_a_cycle(tmp_path: Path) -> None:
    root = write_lua(tmp_path, {"main": '--- @include "main"\n'})
    with pytest.raises(ScriptLoadError, match="include cycle: main -> main"):
        assemble("main", root)


def test_missing_include_names_the_file_and_chain(tmp_path: Path) -> None:
    root = write_lua(tmp_path, {"main": '--- @include "includes/a"\n', "includes/a": '--- @include "includes/gone"\n'})
    with pytest.raises(ScriptLoadError) as caught:
        assemble("main", root)
    assert "includes/gone.lua" in str(caught.value) and "included from main -> includes/a" in str(caught.value)


def test_missing_script(tmp_path: Path) -> None:
    with pytest.raises(ScriptLoadError, match="Lua file not found"):
        assemble("nothing", tmp_path)


def test_lua_dir_is_the_checkout_folder_here() -> None:
    assert (lua_dir() / "enqueue.lua").is_file() and (lua_dir() / "includes").is_dir()


# --- headers ---------------------------------------------------------------------------------------------------

SCRIPTS = sorted(p.stem for p in lua_dir().glob("*.lua"))
_USED_SLOT = re.compile(r"\b(KEYS|ARGV)\[(\d+)\]")
_DOCUMENTED = re.compile(r"^-- (KEYS|ARGV)\[(\d+)(\.\.)?\]", re.MULTILINE)


@pytest.mark.parametrize("name", SCRIPTS)
def test_every_script_header_documents_its_slots(name: str) -> None:
    text = (lua_dir() / f"{name}.lua").read_text()
    header, _, body = text.partition("\n\n")
    slots = header_slots(text)
    assert slots["KEYS"] or slots["ARGV"], f"{name}.lua has no KEYS/ARGV header"
    documented: dict[str, list[tuple[int, bool]]] = {"KEYS": [], "ARGV": []}
    for kind, index, variadic in _DOCUMENTED.findall(header):
        documented[kind].append((int(index), bool(variadic)))
    for kind, entries in documented.items():
        assert [i for i, _ in entries] == list(range(1, len(entries) + 1)), f"{name}.lua {kind} numbering"
        assert len(slots[kind]) == len(entries) and all(slots[kind])
        last, open_ended = entries[-1] if entries else (0, False)
        for used_kind, used in _USED_SLOT.findall(body):
            if used_kind == kind:
                assert int(used) <= last or open_ended, f"{name}.lua uses {kind}[{used}] not in its header"


def test_header_slots_reads_names_in_order() -> None:
    assert header_slots((lua_dir() / "promote.lua").read_text()) == {
        "KEYS": ["zset", "queues"], "ARGV": ["prefix", "now_s", "limit", "enqueued_at", "wake_cap"]}


# --- calling by SHA ----------------------------------------------------------------------------------------------

ENQ_KEYS = ("queues", "queue:a", "schedule", "pyq:wake:a", "pyq:prio:a", "pyq:prio-seq")


def enq_args(*raws: str) -> tuple[str, ...]:
    return ("a", "", "0", "0", *raws)


def test_run_reloads_after_script_flush(r: redis.Redis) -> None:
    scripts = Scripts(r)
    assert scripts.run("enqueue", ENQ_KEYS, enq_args("j1")) == 1
    r.script_flush()
    assert scripts.run("enqueue", ENQ_KEYS, enq_args("j2", "j3")) == 2
    assert r.lrange("queue:a", 0, -1) == [b"j3", b"j2", b"j1"]


def test_run_many_reloads_only_what_is_missing_and_keeps_order(r: redis.Redis) -> None:
    scripts = Scripts(r)
    r.script_flush()
    calls = [("enqueue", ENQ_KEYS, enq_args("j1")), ("promote", ("schedule", "queues"), ("", NOW, 10, STAMP, 0)),
             ("enqueue", ENQ_KEYS, enq_args("j2", "j3"))]
    assert scripts.run_many(calls) == [1, 0, 2]
    r.script_flush()
    assert scripts.run_many(calls) == [1, 0, 2]
    assert r.llen("queue:a") == 6


def test_run_many_returns_errors_in_place(r: redis.Redis) -> None:
    r.set("queue:b", "string")
    results = Scripts(r).run_many([("enqueue", ("queues", "queue:b", "schedule", "w", "p", "s"), ("b", "", 0, 0, "x")),
                                   ("enqueue", ENQ_KEYS, enq_args("ok"))])
    assert isinstance(results[0], redis.ResponseError) and results[1] == 1


def test_enqueue_schedules_with_the_given_score(r: redis.Redis) -> None:
    Scripts(r).run("enqueue", ENQ_KEYS, ("a", repr(NOW + 0.125), 4, 0, "s1", "s2"))
    assert r.zrange("schedule", 0, -1, withscores=True) == [(b"s1", NOW + 0.125), (b"s2", NOW + 0.125)]
    assert r.llen("queue:a") == 0 and r.exists("queues", "pyq:wake:a") == 0


# --- promote -------------------------------------------------------------------------------------------------------


def promote(r: redis.Redis, key: str = "schedule", now: float = NOW, limit: int = 100, prefix: str = "",
            wake_cap: int = 16) -> int:
    return Scripts(r).run("promote", (prefix + key, prefix + "queues"), (prefix, repr(now), limit, STAMP, wake_cap))


def job_raw(jid: str, queue: str = "default", **extra: object) -> str:
    return dumps({"class": "HardJob", "args": [1], "queue": queue, "jid": jid, **extra})


def test_promote_moves_only_due_jobs(r: redis.Redis) -> None:
    r.zadd("schedule", {job_raw("past"): NOW - 10, job_raw("now", "q2"): NOW, job_raw("future"): NOW + 0.001})
    assert promote(r) == 2
    assert [json.loads(x)["jid"] for x in r.lrange("queue:default", 0, -1)] == ["past"]
    assert [json.loads(x)["jid"] for x in r.lrange("queue:q2", 0, -1)] == ["now"]
    assert r.zrange("schedule", 0, -1) == [job_raw("future").encode()]
    assert r.smembers("queues") == {b"default", b"q2"}
    assert r.llen("pyq:wake:default") == 1 and r.llen("pyq:wake:q2") == 1


def test_promote_honours_the_limit_oldest_first(r: redis.Redis) -> None:
    r.zadd("schedule", {job_raw(f"j{i}"): NOW - 100 + i for i in range(5)})
    assert promote(r, limit=3) == 3
    assert [json.loads(x)["jid"] for x in reversed(r.lrange("queue:default", 0, -1))] == ["j0", "j1", "j2"]
    assert promote(r, limit=3) == 2 and promote(r, limit=3) == 0


def test_promote_works_on_the_retry_set(r: redis.Redis) -> None:
    r.zadd("retry", {job_raw("r1", "mail", retry_count=2, error_class="Boom"): NOW - 1})
    assert promote(r, key="retry") == 1
    job = json.loads(r.lindex("queue:mail", 0))
    assert (job["retry_count"], job["error_class"], job["enqueued_at"]) == (2, "Boom", float(STAMP))


@pytest.mark.parametrize(("raw", "expected"), [
    # no enqueued_at yet: appended at the end, everything else byte for byte
    ('{"class":"X","args":[0.1,1.10,1e5,12345678901234567890],"queue":"default","é":"\\u00e9 ☃","created_at":1.0}',
     '{"class":"X","args":[0.1,1.10,1e5,12345678901234567890],"queue":"default","é":"\\u00e9 ☃","created_at":1.0,'
     '"enqueued_at":' + STAMP + "}"),
    # an old enqueued_at is replaced in place, key order kept
    ('{"enqueued_at":1.5,"class":"X","args":[],"z":{"enqueued_at":"nested"}}',
     '{"enqueued_at":' + STAMP + ',"class":"X","args":[],"z":{"enqueued_at":"nested"}}'),
    # integer milliseconds, spaces and a string that looks like the key
    ('{ "class" : "X", "note": "\\"enqueued_at\\":", "args" : [ ] , "enqueued_at" : 1755400000000 }',
     '{ "class" : "X", "note": "\\"enqueued_at\\":", "args" : [ ] , "enqueued_at" : ' + STAMP + " }"),
])
def test_promote_keeps_every_other_byte(r: redis.Redis, raw: str, expected: str) -> None:
    r.zadd("schedule", {raw: NOW})
    assert promote(r) == 1
    assert r.lindex("queue:default", 0).decode() == expected
    json.loads(expected)


@pytest.mark.parametrize("odd", ["[1,2]", '{"a":1,"b":[2]}'])
def test_promote_never_breaks_json_with_an_odd_enqueued_at(r: redis.Redis, odd: str) -> None:
    raw = '{"class":"X","args":[],"enqueued_at":' + odd + ',"queue":"default"}'
    r.zadd("schedule", {raw: NOW})
    assert promote(r) == 1
    assert r.lindex("queue:default", 0).decode() == raw


def test_promote_leaves_nested_activejob_enqueued_at(r: redis.Redis) -> None:
    envelope = {"job_class": "GreetJob", "arguments": [{"enqueued_at": 5}], "enqueued_at": "2025-01-01T00:00:00Z"}
    raw = dumps({"class": "ActiveJob::QueueAdapters::SidekiqAdapter::JobWrapper", "wrapped": "GreetJob",
                 "queue": "aj", "args": [envelope], "jid": "j", "created_at": NOW})
    r.zadd("schedule", {raw: NOW})
    promote(r)
    job = json.loads(r.lindex("queue:aj", 0))
    assert job["enqueued_at"] == float(STAMP)
    assert job["args"] == [envelope]


@pytest.mark.parametrize("garbage", ["not json", "garbage{", "[1,2]", '{"queue":5,"class":"X"}', '{"queue":""}'])
def test_promote_sends_garbage_to_default_never_drops_it(r: redis.Redis, garbage: str) -> None:
    r.zadd("schedule", {garbage: NOW})
    assert promote(r) == 1
    assert r.zcard("schedule") == 0 and r.llen("queue:default") == 1
    stored = r.lindex("queue:default", 0).decode()
    assert stored == garbage or (json.loads(stored).get("enqueued_at") == float(STAMP))


def test_promote_honours_the_namespace(r: redis.Redis) -> None:
    r.zadd("ns:schedule", {job_raw("n1", "mail"): NOW})
    r.zadd("schedule", {job_raw("plain"): NOW})
    assert promote(r, prefix="ns:") == 1
    assert sorted(r.keys("ns:*")) == [b"ns:pyq:wake:mail", b"ns:queue:mail", b"ns:queues"]
    assert r.zcard("schedule") == 1 and not r.exists("queue:mail")


def test_promote_caps_wake_markers(r: redis.Redis) -> None:
    r.zadd("schedule", {job_raw(f"w{i}"): NOW for i in range(50)})
    assert promote(r, wake_cap=4) == 50
    assert r.llen("pyq:wake:default") == 4 and r.llen("queue:default") == 50


# --- concurrent promoters ---------------------------------------------------------------------------------------------

PROMOTER = """
import sys, time, redis
from pyq.scripts import Scripts
url, now = sys.argv[1], sys.argv[2]
conn = redis.Redis.from_url(url)
scripts = Scripts(conn)
scripts.run("promote", ("schedule", "queues"), ("", "-inf", 1, "0.0", 0))   # load the script
conn.rpush("test:ready", 1)
conn.blpop(["test:go"], timeout=30)
conn.rpush("test:go", 1)
moved = 0
while True:
    n = scripts.run("promote", ("schedule", "queues"), ("", now, 50, "1755400100.5", 16))
    moved += n
    if n < 50:
        break
print(moved)
"""


def test_concurrent_promoters_move_each_job_exactly_once(redis_url: str, r: redis.Redis) -> None:
    # Given 5,000 due jobs over five queues
    total, promoters = 5000, 6
    r.zadd("schedule", {job_raw(f"{i:05d}", f"q{i % 5}"): NOW - i for i in range(total)})
    procs = [subprocess.Popen([sys.executable, "-c", PROMOTER, redis_url, repr(NOW)], stdout=subprocess.PIPE)
             for _ in range(promoters)]
    try:
        # When every promoter process starts at the same moment
        deadline = time.monotonic() + 30
        while r.llen("test:ready") < promoters and time.monotonic() < deadline:
            time.sleep(0.01)
        assert r.llen("test:ready") == promoters
        r.rpush("test:go", 1)
        moved = [int(p.communicate(timeout=60)[0]) for p in procs]
    finally:
        for p in procs:
            p.kill()
            p.wait(5)
    # Then every job sits in its own queue exactly once, and the promoters' counts add up
    assert sum(moved) == total and r.zcard("schedule") == 0
    jids: list[str] = []
    for q in range(5):
        jobs = [json.loads(raw) for raw in r.lrange(f"queue:q{q}", 0, -1)]
        assert all(job["queue"] == f"q{q}" for job in jobs)
        jids += [job["jid"] for job in jobs]
    assert sorted(jids) == [f"{i:05d}" for i in range(total)]
    assert sum(1 for m in moved if m > 0) > 1, f"only one promoter did any work: {moved}"
