"""The it-JID hash as Ruby reads and writes it, and the enumerators' cursors.

Debian's Sidekiq is 6.4, which has no IterableJob: the Ruby side runs the exact Redis operations of
Sidekiq 7.3's ``lib/sidekiq/job/iterable.rb`` and ``Sidekiq::Client#cancel!`` (``tests/ruby/iteration_state.rb``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import pytest
import redis

import pyq
import pyq.testing
from iterjobs import DONE, HOOKS, Recording
from pool import running_worker, wait_until
from pyq.iteration import (
    IterableJob,
    IterationState,
    StateStore,
    array_enumerator,
    csv_enumerator,
    keyset_enumerator,
    range_enumerator,
)
from pyq.keys import Keys
from rubyhelp import requires_ruby, ruby_run


@requires_ruby
def test_ruby_reads_the_state_pyq_saves_and_pyq_resumes_from_the_state_ruby_writes(r: redis.Redis, redis_url: str):
    store = StateStore(r, Keys(), "abc123")
    cursor = {"id": 42, "name": "Zoë/x", "ratio": 0.5}
    assert store.save(IterationState(executions=3, cursor=cursor, runtime_s=12.25, done=7)) is False
    read = json.loads(ruby_run("iteration_state.rb", redis_url, "read", "abc123"))
    assert (read["ex"], read["cursor"], read["rt"], read["cancelled"]) == (3, cursor, 12.25, None)
    assert 30 * 86_400 - 5 < read["ttl"] <= 30 * 86_400
    # Ruby's own flush, then its cancel!: pyq reads both
    ruby_run("iteration_state.rb", redis_url, "write", "abc123", "3", json.dumps([7, "b"]), "3.5")
    cancelled_at = int(ruby_run("iteration_state.rb", redis_url, "cancel", "abc123"))
    loaded = store.load()
    assert (loaded.executions, loaded.cursor, loaded.runtime_s, loaded.cancelled_at) == (3, [7, "b"], 3.5,
                                                                                        cancelled_at)
    assert store.save(loaded) is True  # every save reports the cancel


@requires_ruby
def test_a_job_cancelled_from_ruby_stops_and_resumes_nothing(r: redis.Redis, client: Any, redis_url: str):
    jid = Recording.perform_async(200, 0.05)
    with running_worker(redis_url):
        wait_until(lambda: r.llen(DONE) >= 2)
        ruby_run("iteration_state.rb", redis_url, "cancel", jid)
        wait_until(lambda: b"complete:1" in r.lrange(HOOKS, 0, -1))
    assert r.llen(DONE) < 200 and b"cancel:1" in r.lrange(HOOKS, 0, -1) and not r.zcard("retry")


def resume_all(make: Any) -> list[Any]:
    """Every item, resuming from each item's cursor in turn: each resume must start at that very item."""
    items = [item for item, _ in make(None)]
    for index, (_, cursor) in enumerate(list(make(None))):
        assert [item for item, _ in make(cursor)] == items[index:]
    return items


def test_range_and_array_enumerators_resume_at_the_item_of_the_cursor() -> None:
    assert resume_all(lambda c: range_enumerator(3, 20, 4, cursor=c)) == [3, 7, 11, 15, 19]
    assert len(range_enumerator(3, 20, 4, cursor=11)) == 5
    assert resume_all(lambda c: array_enumerator(["a", "b", "c"], cursor=c)) == ["a", "b", "c"]


def test_csv_enumerator_resumes_at_the_byte_offset_of_a_row(tmp_path: Path) -> None:
    path = tmp_path / "users.csv"
    path.write_bytes('email,name\r\nada@x.org,Ada\r\n\r\nbob@x.org,"Bob, ""the"" builder"\r\nzoe@x.org,"Zoë\nline"\r\n'
                     .encode())
    rows = resume_all(lambda c: csv_enumerator(str(path), cursor=c))
    assert rows == [{"email": "ada@x.org", "name": "Ada"}, {"email": "bob@x.org", "name": 'Bob, "the" builder'},
                    {"email": "zoe@x.org", "name": "Zoë\nline"}]
    assert [c for _, c in csv_enumerator(str(path), cursor=None)][0] == len(b"email,name\r\n")
    assert resume_all(lambda c: csv_enumerator(str(path), cursor=c, header=False))[0] == ["email", "name"]


def test_keyset_enumerator_fetches_pages_after_the_cursor_key() -> None:
    table = [{"id": i} for i in range(1, 12)]
    calls: list[Any] = []

    def fetch(after: Any) -> list[dict[str, int]]:
        calls.append(after)
        return [row for row in table if after is None or row["id"] > after][:4]

    assert resume_all(lambda c: keyset_enumerator(fetch, key=lambda row: row["id"], cursor=c)) == table
    calls.clear()
    pages = [page for page, _ in keyset_enumerator(fetch, key=lambda row: row["id"], cursor=None, pages=True)]
    assert [len(p) for p in pages] == [4, 4, 3] and calls == [None, 4, 8, 11]


class Collect(IterableJob):
    items: ClassVar[list[int]] = []

    def build_enumerator(self, count: int, *, cursor: Any) -> Any:
        return range_enumerator(0, count, cursor=cursor)

    def each_iteration(self, item: int, count: int) -> None:
        Collect.items.append(item)


def test_inline_mode_runs_every_item_without_redis_and_the_arguments_are_checked() -> None:
    with pyq.testing.inline():
        Collect.perform_async(5)
    assert Collect.items == [0, 1, 2, 3, 4]
    with pytest.raises(TypeError):
        Collect.perform_async(5, 6)
    with pytest.raises(TypeError, match="not perform"):
        type("Bad", (IterableJob,), {"perform": lambda self: None})
