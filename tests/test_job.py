"""Job definitions: the argument check, names, payload items, hooks, failure policy and the call."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

import pyq
from pyq import retry
from pyq.job import call_parts, wire_name


@pyq.job(name="JobTest::Plain")
def plain(a, b, c=3):
    return a + b + c


@pyq.job(name="JobTest::Star")
def star(a, *rest, flag=False):
    return a


class ClassJob(pyq.Job, name="JobTest::Class"):
    def perform(self, x, y=0):
        return x + y


@pytest.mark.parametrize(("definition", "args", "kwargs", "fits"), [
    (plain, [1, 2], {}, True),
    (plain, [1, 2, 3], {}, True),
    (plain, [1], {}, False),
    (plain, [1, 2, 3, 4], {}, False),
    (plain, [1, 2], {"c": 5}, True),
    (plain, [1, 2], {"d": 5}, False),
    (star, [1, 2, 3], {"flag": True}, True),
    (star, [], {}, False),
    (ClassJob._definition, [1], {}, True),
    (ClassJob._definition, [1, 2, 3], {}, False),
])
def test_check_args_accepts_exactly_what_a_call_would(definition, args, kwargs, fits):
    if fits:
        definition.check_args(args, kwargs)
    else:
        with pytest.raises(TypeError):
            definition.check_args(args, kwargs)


def test_plain_positional_signatures_get_a_length_check_and_others_bind():
    assert plain.arity == (2, 3)
    assert star.arity is None
    assert ClassJob._definition.arity == (1, 2)


# --- the one home of the job model: names, payload items, hooks, policy, the call -----------------
def test_wire_name_reads_definitions_classes_and_strings():
    assert [wire_name(t) for t in (plain, ClassJob, "Ruby::Job")] == [
        "JobTest::Plain", "JobTest::Class", "Ruby::Job"]
    with pytest.raises(TypeError, match="expected a pyq job"):
        wire_name(pyq.Job)  # an abstract base names no job


def test_item_turns_wait_and_wait_until_into_at(monkeypatch):
    monkeypatch.setattr("time.time", lambda: 1000.0)
    assert plain.item([1, 2], {"wait": timedelta(seconds=5), "retry": 2}) == {
        "class": "JobTest::Plain", "args": [1, 2], "queue": "default", "retry": 2, "at": 1005.0}
    assert ClassJob._definition.item([1], {"wait_until": datetime.fromtimestamp(2000.0, timezone.utc)})["at"] == 2000.0


def test_call_parts_unwraps_activejob_envelopes():
    assert call_parts({"class": "A", "args": [1]}) == ("A", [1], {})
    envelope = {"job_class": "Mailer", "arguments": [1, {"to": "x", "_aj_ruby2_keywords": ["to"]}]}
    name, args, kwargs = call_parts({"class": "Sidekiq::ActiveJob::Wrapper", "args": [envelope]})
    assert (name, args, kwargs) == ("Mailer", [1], {"to": "x"})


class Hooked(pyq.Job, name="JobTest::Hooked"):
    discard_on = KeyError

    def perform(self):
        return (self.jid, self.payload["queue"])

    def retry_in(self, count, exc):  # takes fewer arguments than the decision passes
        return 42


def test_hooks_prefer_the_class_method_and_policy_hooks_may_take_fewer_args():
    definition = Hooked._definition
    instance = definition.instance()
    assert definition.hook("retry_in", instance).__self__ is instance
    assert definition.hook("after_perform", instance) is None
    policy = definition.failure_policy(instance)
    assert policy.discard_on == (KeyError,) and policy.retries_exhausted is None
    assert policy.retry_in(3, ValueError(), {"class": "JobTest::Hooked"}) == 42
    assert plain.failure_policy() is retry.NO_POLICY


def test_invoke_gives_a_class_job_its_jid_and_payload():
    definition = Hooked._definition
    assert definition.invoke(definition.instance(), [], {}, job={"jid": "j1", "queue": "q"}) == ("j1", "q")
    assert plain.invoke(plain.instance(), [1, 2], {"c": 0}, job={}) == 3
