"""Each Lua script has exactly one wrapper in pyq.scripts, and the wrapper follows the script's header.

A wrapper's positional parameters say what its KEYS are built from; its keyword parameters are the
script's ARGV slots, by name and in header order (``prefix`` comes from the Keys, a slot named like a
positional parameter from that parameter, and a DeadLimits parameter ``dead`` stands for the two slots
``dead_timeout_s`` and ``dead_max_jobs``). Calling each wrapper with sample values checks the KEYS it
builds against the header's slot names, in order.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from typing import Any

import pytest
import redis
from redis.crc import key_slot

from pyq import scripts
from pyq.keys import Keys, utc_day
from pyq.scripts import Call, DeadLimits, assemble, lua_dir

SCRIPTS = sorted(p.stem for p in lua_dir().glob("*.lua"))
K = Keys("ns")
NOW = 1_755_400_000.5
DAY = utc_day(NOW)
_SLOT = re.compile(r"^-- (KEYS|ARGV)\[(\d+)(\.\.)?\]\s+(\w+)", re.MULTILINE)

#: Sample values for the parameters the wrappers take, by name.
SAMPLES: dict[str, Any] = {
    "keys": K, "identity": "h:1:x", "queue_name": "q", "queues": ["q"], "zset": "retry", "digest": "uniquejobs:d",
    "source": "retry", "now_s": NOW, "at_s": NOW + 60, "payloads": ["p"], "raws": [b"r"], "pairs": [("q", b"r")],
    "count": 2, "raw": b"r", "target": "dead", "score": NOW, "job": "j", "dead": DeadLimits(timeout_s=9, max_jobs=8),
    "limit": 3, "enqueued_at": NOW, "stale_after_s": 60.0, "max_crashes": 3, "crash_ttl_s": 86_400, "jid": "J",
    "pttl": 0, "lock_type": "until_executed", "lock_score": "", "payload": "p", "results": [("J", 60, b"v", "B")],
    "bid": "B", "jids": ["J"], "expires_at_s": NOW + 60, "guard": True,
    "callbacks": [("success", "q", "J", "{}")], "batch_members": [("B", "J", "succeeded")],
    "source_key": "ns:queue:q", "kind": "list", "member": "m", "audit_ttl_s": 60, "entry": "e",
    "name": "n", "descriptor": "{}", "lock_timeout_s": 30.0, "token": "t", "seconds": 60.0, "limiter": "n",
    "priority": 5,
}

#: The key each KEYS slot name stands for, given the samples above.
EXPECTED_KEYS = {
    "inflight": "ns:pyq:inflight:h:1:x", "owners": "ns:pyq:inflight-owners", "queues": "ns:queues",
    "queue": "ns:queue:q", "schedule": "ns:schedule", "wake": "ns:pyq:wake:q", "retry": "ns:retry",
    "dead": "ns:dead", "processed": "ns:stat:processed", "processed_day": f"ns:stat:processed:{DAY}",
    "failed": "ns:stat:failed", "failed_day": f"ns:stat:failed:{DAY}", "processes": "ns:processes",
    "process": "ns:h:1:x", "work": "ns:h:1:x:work", "workers": "ns:h:1:x:workers", "zset": "ns:retry",
    "source": "ns:retry", "digest": "ns:uniquejobs:d", "locked": "ns:uniquejobs:d:LOCKED",
    "queued": "ns:uniquejobs:d:QUEUED", "primed": "ns:uniquejobs:d:PRIMED", "info": "ns:uniquejobs:d:INFO",
    "digests": "ns:uniquejobs:digests", "expiring": "ns:uniquejobs:expiring_digests",
    "source_key": "ns:queue:q", "audit": "ns:pyq:cancelled", "iteration": "ns:it-J", "count": "ns:pyq:stat:cancelled",
    "batch": "ns:b-B", "index": "ns:batches", "jids": "ns:b-B-jids", "result": "ns:pyq:result:J",
    "queue_pairs": ("ns:queue:q", "ns:pyq:prio:q"), "prio": "ns:pyq:prio:q", "prio_seq": "ns:pyq:prio-seq",
    "leases": "ns:pyq:lmtr-c-n", "log": "ns:pyq:lmtr-w-n", "bucket": "ns:pyq:lmtr-b-n", "leaky": "ns:pyq:lmtr-l-n",
    "limiters": "ns:pyq:limiters", "over_count": "ns:pyq:stat:over_limit", "over": "ns:pyq:limiters:over",
}


def header(name: str) -> dict[str, list[tuple[str, bool]]]:
    """KEYS and ARGV slot names of a script, in order, each with "open-ended" (``[3..]``)."""
    slots: dict[str, list[tuple[str, bool]]] = {"KEYS": [], "ARGV": []}
    for kind, _, variadic, slot in _SLOT.findall((lua_dir() / f"{name}.lua").read_text().split("\n\n", 1)[0]):
        slots[kind].append((slot, bool(variadic)))
    return slots


def wrapper_parts(name: str) -> tuple[list[str], list[str]]:
    """(positional parameter names, keyword parameter names with ``dead`` expanded)."""
    params = list(inspect.signature(getattr(scripts, name)).parameters.values())
    positional = [p.name for p in params if p.kind is p.POSITIONAL_ONLY]
    keywords: list[str] = []
    for p in params:
        if p.kind is p.KEYWORD_ONLY:
            keywords += [f"dead_{f.name}" for f in dataclasses.fields(DeadLimits)] if p.name == "dead" else [p.name]
    return positional, keywords


def sample_call(name: str) -> Call:
    params = inspect.signature(getattr(scripts, name)).parameters.values()
    positional = [SAMPLES[p.name] for p in params if p.kind is p.POSITIONAL_ONLY]
    keywords = {p.name: SAMPLES[p.name] for p in params  # a slot with a default (wake_cap, day_ttl_s) keeps it
                if p.kind is p.KEYWORD_ONLY and (p.name in SAMPLES or p.default is p.empty)}
    return getattr(scripts, name)(*positional, **keywords)


def test_every_script_has_exactly_one_wrapper_and_every_wrapper_a_script() -> None:
    wrappers = sorted(name for name, fn in vars(scripts).items()
                      if inspect.isfunction(fn) and not name.startswith("_") and fn.__module__ == scripts.__name__
                      and inspect.signature(fn).return_annotation == "Call")
    assert wrappers == SCRIPTS


@pytest.mark.parametrize("name", SCRIPTS)
def test_wrapper_keywords_are_the_argv_slots_in_header_order(name: str) -> None:
    positional, keywords = wrapper_parts(name)
    argv = [slot for slot, _ in header(name)["ARGV"] if slot != "prefix" and slot not in positional]
    assert keywords == argv, f"scripts.{name} keywords vs lua/{name}.lua ARGV"


@pytest.mark.parametrize("name", SCRIPTS)
def test_wrapper_builds_the_keys_the_header_lists_in_order(name: str) -> None:
    call = sample_call(name)
    assert call.script == name
    expected: list[str] = []
    for slot, _ in header(name)["KEYS"]:  # a slot of pairs stands for two keys a queue
        key = EXPECTED_KEYS[slot]
        expected += list(key) if isinstance(key, tuple) else [key]
    assert list(call.keys) == expected


@pytest.mark.parametrize("name", SCRIPTS)
def test_wrapper_fills_every_argv_slot(name: str) -> None:
    call = sample_call(name)
    named = scripts.named_args(call)
    slots = header(name)["ARGV"]
    assert list(named) == [slot for slot, _ in slots]
    if slots and slots[-1][1]:
        assert named[slots[-1][0]], f"{name}: the open-ended slot {slots[-1][0]} got no values"
    if "prefix" in named:
        assert named["prefix"] == K.prefix


@pytest.mark.parametrize("name", SCRIPTS)
def test_on_a_cluster_every_script_gets_keys_and_all_of_them_hash_to_the_prefix_slot(name: str) -> None:
    # A script with no KEYS goes to a random cluster node; one whose keys span slots is refused
    tagged = Keys("ns", cluster=True)
    params = inspect.signature(getattr(scripts, name)).parameters.values()
    positional = [tagged if p.name == "keys" else SAMPLES[p.name] for p in params if p.kind is p.POSITIONAL_ONLY]
    positional = [tagged.prefix + v[3:] if isinstance(v, str) and v.startswith("ns:") else v for v in positional]
    keywords = {p.name: SAMPLES[p.name] for p in params
                if p.kind is p.KEYWORD_ONLY and (p.name in SAMPLES or p.default is p.empty)}
    call = getattr(scripts, name)(*positional, **keywords)
    assert call.keys, f"{name} has no KEYS"
    assert {key_slot(k.encode()) for k in call.keys} == {key_slot(b"{ns}:")}, call.keys
    assert scripts.named_args(call).get("prefix", "{ns}:") == "{ns}:"


def test_a_wrapper_call_runs_on_redis_and_in_a_batch(r: redis.Redis) -> None:
    keys = Keys()
    calls = [scripts.enqueue(keys, "a", at_s=None, payloads=["x", "y"]), scripts.enqueue(keys, "b", at_s=None,
                                                                                           payloads=[])]
    assert scripts.run_many(r, calls) == [2, 0]
    assert scripts.kill(keys, job="x", now_s=NOW, dead=DeadLimits(timeout_s=10, max_jobs=5)).run(r) == 1
    assert r.zscore("dead", "x") == NOW and r.llen("queue:a") == 2


def test_assembled_scripts_define_each_include_once() -> None:
    for name in SCRIPTS:
        text = assemble(name)
        for fn in re.findall(r"^local function (\w+)", text, re.MULTILINE):
            assert text.count(f"local function {fn}(") == 1, f"{name}: {fn} defined twice"
