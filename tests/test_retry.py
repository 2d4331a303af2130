"""retry.py: Sidekiq's backoff and fields, and every path of the retry / discard / death policy."""

from __future__ import annotations

import random

import pytest

import pyq
from pyq import error_fields, payload, retry
from pyq.errors import Shutdown
from pyq.retry import Policy, decide

NOW = 1_755_400_000.0


class FixedRng(random.Random):
    """randint always answers its lower or upper bound; random() 0 or almost 1."""

    def __init__(self, high: bool) -> None:
        super().__init__(0)
        self.high = high

    def randint(self, a: int, b: int) -> int:
        return b if self.high else a

    def random(self) -> float:
        return 0.999999 if self.high else 0.0


LOW, HIGH = FixedRng(False), FixedRng(True)


def job(**fields):
    return {"class": "X", "args": [1], "queue": "default", "jid": "j1", "retry": True, **fields}


class GatewayError(Exception):
    pass


class GatewayTimeout(GatewayError):
    pass


class CardInvalid(Exception):
    pass


# --- backoff -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("count", "base"), [(0, 15), (1, 16), (5, 640), (10, 10_015), (20, 160_015),
                                             (24, 331_791)])
def test_backoff_is_count4_plus_15_plus_jitter_0_to_9_times_count_plus_1(count: int, base: int) -> None:
    assert retry.backoff_s(count, LOW) == base
    assert retry.backoff_s(count, HIGH) == base + 9 * (count + 1)
    rng = random.Random(count)
    samples = {retry.backoff_s(count, rng) for _ in range(500)}
    assert samples == {base + j * (count + 1) for j in range(10)}


def test_25_retries_take_about_20_days() -> None:
    mean = sum(c**4 + 15 + 4.5 * (c + 1) for c in range(25))
    assert 20.0 < mean / 86400 < 20.6


# Sidekiq's retry_attempts_from: only an Integer is a count; "7" or 7.0 is just true.
@pytest.mark.parametrize(("option", "allowed"), [(True, 25), (None, 25), (False, 0), (0, 0), (3, 3), ("7", 25),
                                                 (7.0, 25), ("x", 25), (-2, 0)])
def test_allowed_retries(option, allowed) -> None:
    assert retry.allowed_retries({"retry": option}, 25) == allowed


# --- fields --------------------------------------------------------------------------------------


def test_first_failure_sets_failed_at_and_count_0_later_ones_retried_at_and_count_plus_1() -> None:
    first = error_fields.with_error_fields(job(unknown="kept"), ValueError("boom"), "default", NOW)
    assert (first["retry_count"], first["failed_at"], first["error_class"], first["error_message"]) == (
        0, NOW, "ValueError", "boom")
    assert "retried_at" not in first and first["unknown"] == "kept"
    second = error_fields.with_error_fields(first, GatewayError("again"), "default", NOW + 20, "ms")
    assert (second["retry_count"], second["failed_at"], second["retried_at"]) == (1, NOW, int((NOW + 20) * 1000))
    assert second["error_class"] == "test_retry.GatewayError"


def test_retry_queue_replaces_the_queue_and_message_is_cut_to_10000_chars() -> None:
    failed = error_fields.with_error_fields(job(retry_queue="slow"), ValueError("x" * 20_000), "default", NOW)
    assert failed["queue"] == "slow" and len(failed["error_message"]) == 10_000


def test_an_exception_whose_str_raises_still_gets_a_message() -> None:
    class Nasty(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no")

    assert error_fields.error_message(Nasty()) == "<unprintable Nasty: str() raised RuntimeError>"


def _raise_deep(n: int) -> None:
    if n == 0:
        raise ValueError("deep")
    _raise_deep(n - 1)


@pytest.mark.parametrize(("option", "lines"), [(True, 5), (2, 2), (False, 0), ("yes", 0), (0, 0)])
def test_backtrace_is_sidekiqs_deflated_base64_json_innermost_first(option, lines: int) -> None:
    try:
        _raise_deep(3)
    except ValueError as exc:
        failed = error_fields.with_error_fields(job(backtrace=option), exc, "default", NOW)
    if not lines:
        assert "error_backtrace" not in failed
        return
    decoded = payload.decode_backtrace(failed["error_backtrace"])
    assert len(decoded) == lines and "\n" not in failed["error_backtrace"]
    assert decoded[0].endswith(":in `_raise_deep'") and "test_retry.py:" in decoded[0]


# --- Sidekiq's default policy -----------------------------------------------------------------------


def test_retry_true_goes_to_the_retry_set_with_the_backoff_score() -> None:
    d = decide(job(), ValueError("x"), "default", now_s=NOW, rng=LOW)
    assert (d.target, d.score, d.death) == ("retry", NOW + 15, False)
    d = decide(job(retry_count=4), ValueError("x"), "default", now_s=NOW, rng=HIGH)
    assert (d.target, d.score, d.job["retry_count"]) == ("retry", NOW + 640 + 9 * 6, 5)


def test_retry_n_runs_n_plus_1_times_then_dead() -> None:
    assert decide(job(retry=2, retry_count=0), ValueError(), "q", now_s=NOW).target == "retry"
    d = decide(job(retry=2, retry_count=1), ValueError(), "q", now_s=NOW)
    assert (d.target, d.job["retry_count"], d.death) == ("dead", 2, True)


def test_max_retries_from_config() -> None:
    assert decide(job(retry_count=1), ValueError(), "q", max_retries=3, now_s=NOW).target == "retry"
    assert decide(job(retry_count=2), ValueError(), "q", max_retries=3, now_s=NOW).target == "dead"


def test_retry_0_dies_at_once_and_retry_false_is_dropped_with_death_handlers() -> None:
    assert decide(job(retry=0), ValueError(), "q", now_s=NOW).target == "dead"
    d = decide(job(retry=False), ValueError(), "q", now_s=NOW)
    assert (d.target, d.death, d.job["discarded_at"]) == ("discard", True, int(NOW * 1000))


@pytest.mark.parametrize(("declared", "target", "stored"), [(0, "dead", 0), (False, "discard", False),
                                                            (True, "retry", True), (2, "retry", 2)])
def test_a_null_retry_takes_the_declared_option_and_the_stored_job_carries_it(declared, target, stored) -> None:
    missing = job()
    del missing["retry"]
    for fetched in (job(retry=None), missing):
        d = decide(fetched, ValueError(), "q", policy=Policy(retry=declared), now_s=NOW)
        assert (d.target, d.job["retry"]) == (target, stored)


def test_a_payload_retry_wins_over_the_declared_option() -> None:
    assert decide(job(retry=True), ValueError(), "q", policy=Policy(retry=0), now_s=NOW).target == "retry"
    assert decide(job(retry=0), ValueError(), "q", policy=Policy(retry=True), now_s=NOW).target == "dead"


def test_dead_false_drops_an_exhausted_job_but_still_counts_as_a_death() -> None:
    d = decide(job(retry=0, dead=False), ValueError(), "q", now_s=NOW)
    assert (d.target, d.death) == ("discard", True)


def test_retry_for_is_a_time_window_from_failed_at_that_replaces_the_count() -> None:
    inside = job(retry=1, retry_count=5, retry_for=3600, failed_at=NOW - 3599)
    assert decide(inside, ValueError(), "q", now_s=NOW).target == "retry"
    outside = job(retry_count=0, retry_for=3600, failed_at=NOW - 3601)
    assert decide(outside, ValueError(), "q", now_s=NOW).target == "dead"
    first = job(retry_for=60)  # first failure: failed_at is now
    assert decide(first, ValueError(), "q", now_s=NOW).target == "retry"
    ms = job(retry_count=0, retry_for=60, failed_at=int((NOW - 61) * 1000))
    assert decide(ms, ValueError(), "q", now_s=NOW).target == "dead"


# --- retry_in hook ---------------------------------------------------------------------------------


def test_retry_in_seconds_replace_the_base_and_keep_the_jitter() -> None:
    seen = []

    def retry_in(count, exc, job):
        seen.append((count, type(exc), job["jid"]))
        return 100

    d = decide(job(retry_count=1), ValueError(), "q", policy=Policy(retry_in=retry_in), now_s=NOW, rng=HIGH)
    assert (d.target, d.score, seen) == ("retry", NOW + 100 + 9 * 3, [(2, ValueError, "j1")])


@pytest.mark.parametrize(("answer", "target", "death"), [("kill", "dead", True), ("discard", "discard", False),
                                                         (None, "retry", False), (0, "retry", False),
                                                         ("later", "retry", False)])
def test_retry_in_kill_discard_or_default(answer, target: str, death: bool) -> None:
    d = decide(job(), ValueError(), "q", policy=Policy(retry_in=lambda count, exc, job: answer), now_s=NOW, rng=LOW)
    assert (d.target, d.death) == (target, death)
    if target == "retry":
        assert d.score == NOW + 15


def test_a_raising_retry_in_hook_falls_back_to_the_default_backoff() -> None:
    d = decide(job(), ValueError(), "q", policy=Policy(retry_in=lambda c, e, j: 1 / 0), now_s=NOW, rng=LOW)
    assert (d.target, d.score) == ("retry", NOW + 15)


def test_retry_in_kill_respects_retries_exhausted_and_dead_false() -> None:
    policy = Policy(retry_in=lambda c, e, j: "kill", retries_exhausted=lambda j, e: None)
    assert decide(job(dead=False), ValueError(), "q", policy=policy, now_s=NOW).target == "discard"


# --- retry_on / discard_on ----------------------------------------------------------------------------


def test_discard_on_drops_the_job_without_death_handlers() -> None:
    d = decide(job(), CardInvalid("bad card"), "q", policy=Policy(discard_on=(CardInvalid,)), now_s=NOW)
    assert (d.target, d.death, d.job["error_class"]) == ("discard", False, "test_retry.CardInvalid")


def test_discard_on_wins_over_retry_on_and_matches_subclasses() -> None:
    policy = Policy(retry_on={GatewayError: {"attempts": 3}}, discard_on=(GatewayError,))
    assert decide(job(), GatewayTimeout(), "q", policy=policy, now_s=NOW).target == "discard"


@pytest.mark.parametrize(("count", "target"), [(None, "retry"), (0, "retry"), (1, "dead")])
def test_retry_on_attempts_counts_every_run_like_activejob(count, target: str) -> None:
    policy = Policy(retry_on={GatewayError: {"attempts": 3, "wait": 7}})
    fields = {} if count is None else {"retry_count": count}
    d = decide(job(retry=False, **fields), GatewayError(), "q", policy=policy, now_s=NOW, rng=HIGH)
    assert d.target == target
    if target == "retry":
        assert d.score == NOW + 7  # fixed seconds: no jitter


def test_retry_on_defaults_to_5_attempts_3_seconds_apart() -> None:
    policy = Policy(retry_on={GatewayError: {}})
    assert decide(job(retry_count=2), GatewayError(), "q", policy=policy, now_s=NOW).score == NOW + 3
    assert decide(job(retry_count=3), GatewayError(), "q", policy=policy, now_s=NOW).target == "dead"
    unlimited = Policy(retry_on={GatewayError: {"attempts": "unlimited"}})
    assert decide(job(retry_count=10_000), GatewayError(), "q", policy=unlimited, now_s=NOW).target == "retry"


@pytest.mark.parametrize(("wait", "low", "high"), [
    ("polynomial", 16 + 0, 16 + 18), ("exponential", 6.0, 6.0 * 1.15), (lambda count, exc: count * 10, 10, 10)])
def test_retry_on_wait_algorithms(wait, low: float, high: float) -> None:
    policy = Policy(retry_on={GatewayError: {"attempts": 10, "wait": wait}})
    lo = decide(job(retry_count=0), GatewayError(), "q", policy=policy, now_s=NOW, rng=LOW)
    hi = decide(job(retry_count=0), GatewayError(), "q", policy=policy, now_s=NOW, rng=HIGH)
    assert lo.job["retry_count"] == 1
    assert lo.score == pytest.approx(NOW + low) and hi.score == pytest.approx(NOW + high, rel=1e-9, abs=1e-3)


def test_retry_on_picks_the_nearest_class_and_leaves_other_errors_to_the_retry_option() -> None:
    policy = Policy(retry_on={GatewayError: {"attempts": 2, "wait": 1}, GatewayTimeout: {"attempts": 9, "wait": 2}})
    assert decide(job(retry_count=3), GatewayTimeout(), "q", policy=policy, now_s=NOW).score == NOW + 2
    assert decide(job(retry_count=3), GatewayError(), "q", policy=policy, now_s=NOW).target == "dead"
    assert decide(job(retry=0), ValueError(), "q", policy=policy, now_s=NOW).target == "dead"


# --- exhaustion ---------------------------------------------------------------------------------------


def test_retries_exhausted_sees_the_failed_job_and_may_discard() -> None:
    seen = []

    def exhausted(job, exc):
        seen.append((job["retry_count"], str(exc)))
        return "discard"

    d = decide(job(retry=0), ValueError("v"), "q", policy=Policy(retries_exhausted=exhausted), now_s=NOW)
    assert (d.target, d.death, seen) == ("discard", False, [(0, "v")])


def test_a_raising_retries_exhausted_hook_still_buries_the_job() -> None:
    d = decide(job(retry=0), ValueError(), "q", policy=Policy(retries_exhausted=lambda j, e: 1 / 0), now_s=NOW)
    assert (d.target, d.death) == ("dead", True)


def test_kill_skips_every_retry() -> None:
    assert decide(job(), ValueError(), "q", now_s=NOW, kill=True).target == "dead"


# --- shutdown and option checks -------------------------------------------------------------------------


def test_caused_by_shutdown_walks_cause_and_context_chains() -> None:
    try:
        try:
            raise Shutdown()
        except Shutdown:
            raise ValueError("while stopping")  # noqa: B904 - the implicit context is the point
    except ValueError as exc:
        implicit = exc
    explicit = RuntimeError("wrapped")
    explicit.__cause__ = implicit
    looped = ValueError("loop")
    looped.__context__ = looped
    assert error_fields.caused_by_shutdown(implicit) and error_fields.caused_by_shutdown(explicit)
    assert not error_fields.caused_by_shutdown(looped) and not error_fields.caused_by_shutdown(ValueError())


@pytest.mark.parametrize(("options", "message"), [
    ({"discard_on": (ValueError, "nope")}, "discard_on takes exception classes"),
    ({"retry_on": {"x": {}}}, "retry_on keys must be exception classes"),
    ({"retry_on": {ValueError: {"tries": 3}}}, "must be a dict with 'attempts'"),
    ({"retry_on": {ValueError: {"attempts": 0}}}, "attempts must be an int >= 1"),
    ({"retry_on": {ValueError: {"wait": "soon"}}}, "wait must be seconds"),
])
def test_malformed_retry_on_and_discard_on_are_refused_at_definition(options, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        pyq.job(name="BadPolicy", **options)(lambda: None)
