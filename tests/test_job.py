"""Job definitions: the argument check the processor runs before every call."""

from __future__ import annotations

import pytest

import pyq


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
