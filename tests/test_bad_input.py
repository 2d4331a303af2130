"""Bad input from every side: payload fields of the wrong type, huge and deep payloads, odd unicode,
hostile queue names, broken exceptions. Each ends in a clear error or a stored failure; nothing is lost."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pyq
from pool import running_worker, wait_until
from pyq import config, payload
from pyq.client import Client
from pyq.keys import Keys

IDENTITY = "badhost:1:0123456789ab"
KEYS = Keys()
SRC = Path(__file__).resolve().parent.parent / "src" / "pyq"
seen: list[object] = []


@pyq.job(name="Bad::Echo")
def echo(*args: object) -> None:
    seen.append(list(args))


@pyq.job(name="Bad::Boom")
def boom(*args: object) -> None:
    raise ValueError("boom")


class Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no text")


@pyq.job(name="Bad::Unprintable")
def unprintable() -> None:
    raise Unprintable()


@pytest.fixture(autouse=True)
def _clear() -> None:
    seen.clear()






def settled(r: redis.Redis) -> list[dict]:
    """Every job in the retry and dead sets (decoded)."""
    return [json.loads(raw) for key in ("retry", "dead") for raw in r.zrange(key, 0, -1)]


def a_job(klass: str, args: list, **fields: object) -> str:
    return payload.dumps({"class": klass, "args": args, "queue": "default", "jid": payload.new_jid(),
                          "retry": True, "created_at": 1755400000.0, **fields})


# --- wrong types for every payload field, in a real worker ---------------------------------------------

WRONG_FIELDS = [(field, value) for field, values in {
    "jid": [5, None, [], {"a": 1}],
    "queue": [5, None, "", ["x"]],
    "retry": ["yes", None, -1, 1.5, {}],
    "retry_count": ["3", None, -1, [], 1e300],
    "created_at": ["yesterday", None, True, []],
    "enqueued_at": ["now", {}],
    "failed_at": ["then", []],
    "retried_at": ["x"],
    "backtrace": ["all", -1, 1e9],
    "error_message": [5, {}],
    "error_class": [5],
    "wrapped": [5, []],
    "tags": ["a", 5],
    "retry_for": ["1 day", -5],
    "dead": ["no", 3],
}.items() for value in values]


@pytest.mark.parametrize(("field", "value"), WRONG_FIELDS, ids=[f"{f}={v!r}" for f, v in WRONG_FIELDS])
def test_a_failing_job_with_a_wrong_typed_field_is_stored_with_its_error(redis_url, r, field, value):
    # Given a job whose field has the wrong type, then a good job behind it
    r.lpush("queue:default", a_job("Bad::Boom", [1], **{field: value}))
    r.lpush("queue:default", a_job("Bad::Echo", ["after"]))
    # When a real worker takes both
    with running_worker(redis_url, IDENTITY) as worker:
        wait_until(lambda: seen == [["after"]] and len(settled(r)) == 1)
        assert all(t.is_alive() for t in worker._threads.values())
    # Then the failing one sits in the retry or dead set with the error, and nothing is in flight
    [entry] = settled(r)
    assert entry["error_class"] and entry["error_message"]
    assert r.llen(KEYS.inflight(IDENTITY)) == 0 and r.llen("queue:default") == 0


@pytest.mark.parametrize(("field", "value"), WRONG_FIELDS, ids=[f"{f}={v!r}" for f, v in WRONG_FIELDS])
def test_a_succeeding_job_with_a_wrong_typed_field_runs_or_is_stored(redis_url, r, field, value):
    r.lpush("queue:default", a_job("Bad::Echo", [field], **{field: value}))
    with running_worker(redis_url, IDENTITY):
        wait_until(lambda: seen == [[field]] or settled(r))
    assert r.llen(KEYS.inflight(IDENTITY)) == 0 and r.llen("queue:default") == 0


# --- size, depth and text -----------------------------------------------------------------------------

def test_a_10_mb_argument_is_enqueued_run_and_kept_whole_on_failure(client: Client, r, redis_url):
    big = "x" * 10_000_000
    client.push({"class": "Bad::Echo", "args": [big]})
    client.push({"class": "Bad::Boom", "args": [big]})
    with running_worker(redis_url, IDENTITY):
        wait_until(lambda: seen and r.zcard("retry") == 1, timeout=20)
    assert seen[0] == [big]
    assert json.loads(r.zrange("retry", 0, -1)[0])["args"] == [big]


def nested(depth: int) -> list:
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


def test_10000_levels_of_nesting_are_refused_at_enqueue_with_a_clear_error(client: Client, r):
    with pytest.raises((TypeError, ValueError), match="(?i)deep|nest|depth"):
        client.push({"class": "Bad::Echo", "args": [nested(10_000)]})
    assert r.dbsize() == 0


def test_10000_levels_of_nesting_are_refused_at_enqueue_and_nothing_is_stored(client: Client, r):
    with pytest.raises((TypeError, ValueError, RecursionError)):
        client.push({"class": "Bad::Echo", "args": [nested(10_000)]})
    assert r.dbsize() == 0


def test_a_10000_level_nested_argument_pushed_raw_goes_to_the_dead_set(redis_url, r):
    raw = '{"class":"Bad::Echo","args":[' + "[" * 10_000 + "]" * 10_000 + '],"jid":"deep"}'
    r.lpush("queue:default", raw)
    r.lpush("queue:default", a_job("Bad::Echo", ["after"]))
    with running_worker(redis_url, IDENTITY):
        wait_until(lambda: seen == [["after"]] and r.zcard("dead") == 1)
    [entry] = settled(r)
    assert entry["error_class"] == "pyq.errors.InvalidPayload" and "recursion" in entry["error_message"]
    assert r.llen(KEYS.inflight(IDENTITY)) == 0


TEXTS = ["nul\x00inside", "\u202eRTL override\u202c", "emoji \U0001f600\u200d\U0001f525", "\ufeffbom", "e\u0301",
         "line\nbreak\ttab", "\\u0000 literally", "\U0010ffff"]


@pytest.mark.parametrize("text", TEXTS)
def test_unicode_arguments_arrive_unchanged(client: Client, redis_url, text):
    client.push({"class": "Bad::Echo", "args": [text, {text: text}]})
    with running_worker(redis_url, IDENTITY):
        wait_until(lambda: seen)
    assert seen == [[text, {text: text}]]


@pytest.mark.parametrize("job_class", ["Bad::Echo", "Bad::Boom"])
def test_a_lone_surrogate_escaped_in_json_neither_stops_the_worker_nor_is_lost(redis_url, r, job_class):
    # Ruby's JSON writes "\ud800" for a broken string; Python decodes it to a str UTF-8 cannot encode
    r.lpush("queue:default", '{"class":"' + job_class + '","args":["\\ud800"],"jid":"sur","retry":true}')
    r.lpush("queue:default", a_job("Bad::Echo", ["after"]))
    with running_worker(redis_url, IDENTITY) as worker:
        wait_until(lambda: ["after"] in seen and (job_class == "Bad::Echo" or settled(r)))
        assert all(t.is_alive() for t in worker._threads.values())
    assert r.llen(KEYS.inflight(IDENTITY)) == 0
    if job_class == "Bad::Boom":
        [entry] = settled(r)
        assert entry["jid"] == "sur" and entry["error_class"] == "ValueError"


def test_an_exception_whose_str_raises_is_stored_with_a_placeholder_message(client: Client, r, redis_url):
    client.push({"class": "Bad::Unprintable", "args": []})
    with running_worker(redis_url, IDENTITY) as worker:
        wait_until(lambda: r.zcard("retry") == 1)
        assert all(t.is_alive() for t in worker._threads.values())
    [entry] = settled(r)
    assert entry["error_class"].endswith("Unprintable") and "unprintable" in entry["error_message"]


# --- hostile queue names --------------------------------------------------------------------------------

HOSTILE_QUEUES = ["with space", "new\nline", "*", "queue:*", "ünï\u202e", "{braces}", "a,2", "a/b"]
ODD_BUT_VALID_QUEUES = ["x" * 10_000, "queue:default", "a.b-c_d:1", "UPPER"]


def _accepted(call: Any) -> bool:
    try:
        call()
    except (TypeError, ValueError, pyq.errors.ConfigError):
        return False
    return True


@pytest.mark.parametrize("name", HOSTILE_QUEUES + ODD_BUT_VALID_QUEUES, ids=lambda n: repr(n[:20]))
def test_the_client_and_a_worker_config_apply_one_queue_name_rule(client: Client, r, redis_url, name):
    # A queue the client pushes to is one a pyq worker may serve, and the other way round
    pushed = _accepted(lambda: client.push({"class": "Bad::Echo", "args": [], "queue": name}))
    served = _accepted(lambda: config.load(None, overrides={"redis_url": redis_url, "queues": [[name, 1]]}, env={}))
    assert pushed == served == (name in ODD_BUT_VALID_QUEUES)
    if not pushed:
        assert r.dbsize() == 0


@pytest.mark.parametrize("name", HOSTILE_QUEUES)
def test_a_refused_queue_name_is_named_with_the_rule(client: Client, r, name):
    with pytest.raises(ValueError, match=re.escape(f"job 'queue' is {name!r}: a queue name is made of letters")):
        client.push({"class": "Bad::Echo", "args": [], "queue": name})
    with pytest.raises(ValueError, match=re.escape(f"job 'retry_queue' is {name!r}")):
        client.push({"class": "Bad::Echo", "args": [], "retry_queue": name})
    assert r.dbsize() == 0


@pytest.mark.parametrize("name", ODD_BUT_VALID_QUEUES, ids=lambda n: repr(n[:20]))
def test_odd_but_valid_queue_names_are_stored_under_their_exact_key(client: Client, r, name):
    jid = client.push({"class": "Bad::Echo", "args": [], "queue": name})
    [raw] = r.lrange(KEYS.queue(name), 0, -1)
    assert json.loads(raw)["jid"] == jid and json.loads(raw)["queue"] == name
    assert r.smembers("queues") == {name.encode()}
    assert [k for k in r.keys("queue:*")] == [KEYS.queue(name).encode()]


# --- properties ---------------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(exclude_categories=("Cs",))),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(args=st.lists(json_values, max_size=5), queue=st.from_regex(r"[A-Za-z0-9_:.\-]{1,30}", fullmatch=True))
def test_any_json_args_survive_enqueue_lua_byte_for_value(client: Client, r, args, queue):
    # enqueue.lua rewrites enqueued_at inside the JSON text: no argument may be disturbed by it
    r.flushdb()
    client.push({"class": "Bad::Echo", "args": args, "queue": queue, "enqueued_at": "x"})
    [raw] = r.lrange(KEYS.queue(queue), 0, -1)
    job = payload.loads(raw)
    assert job["args"] == args and job["queue"] == queue


# --- no code execution from data --------------------------------------------------------------------------

UNSAFE = re.compile(r"\beval\(|\bexec\(|\bpickle\b|\bmarshal\b|yaml\.load\((?![^)]*SafeLoader)|yaml\.unsafe_load|"
                    r"\bshelve\b|__import__\(")


def test_src_never_evaluates_unpickles_or_unsafely_loads_yaml():
    hits = [f"{path.relative_to(SRC)}:{n}: {line.strip()}"
            for path in sorted(SRC.rglob("*.py")) for n, line in enumerate(path.read_text().splitlines(), 1)
            if UNSAFE.search(line)]
    assert hits == []
