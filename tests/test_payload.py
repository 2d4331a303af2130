"""payload.py: the exact JSON bytes Ruby reads, timestamps of both styles, backtraces, ActiveJob envelopes."""

from __future__ import annotations

import base64
import json
import math
import zlib
from datetime import datetime, timezone
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyq import payload
from pyq.errors import InvalidPayload

# --- JSON bytes ---------------------------------------------------------------------------------------


def test_dumps_is_compact_with_raw_utf8_and_unescaped_slash() -> None:
    job = {"class": "A::B", "args": ["café/ü", "☃", {"k": [1, None, True]}], "url": "http://x/y"}
    assert payload.dumps(job) == '{"class":"A::B","args":["café/ü","☃",{"k":[1,null,true]}],"url":"http://x/y"}'


def test_dumps_keeps_key_order_and_large_integers() -> None:
    assert payload.dumps({"z": 1, "a": 2**70}) == '{"z":1,"a":1180591620717411303424}'


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_dumps_refuses_nan_and_infinity(value: float) -> None:
    with pytest.raises(ValueError):
        payload.dumps({"args": [value]})


@pytest.mark.parametrize(("value", "text"), [(1755400000.0, "1755400000.0"), (0.5, "0.5"), (1e20, "1e+20"),
                                             (-0.0, "-0.0"), (3.0, "3.0")])
def test_floats_always_carry_a_fraction_or_exponent(value: float, text: str) -> None:
    assert payload.dumps(value) == text


def test_loads_accepts_bytes_and_str() -> None:
    raw = '{"class":"X","args":["é"]}'
    assert payload.loads(raw.encode()) == payload.loads(raw) == {"class": "X", "args": ["é"]}


@pytest.mark.parametrize(("raw", "message"), [
    (b"not json", "not valid JSON"),
    (b"\xff\xfe", "not valid JSON"),
    (b"[1, 2]", "JSON list, expected an object"),
    (b'{"args": []}', "no 'class' string"),
    (b'{"class": "", "args": []}', "no 'class' string"),
    (b'{"class": "X", "args": {}}', "no 'args' array"),
    (b'{"class": "X"}', "no 'args' array"),
])
def test_loads_rejects_non_jobs_with_the_reason(raw: bytes, message: str) -> None:
    with pytest.raises(InvalidPayload, match=message):
        payload.loads(raw)


def test_jid_is_24_lowercase_hex_and_unique() -> None:
    jids = {payload.new_jid() for _ in range(1000)}
    assert len(jids) == 1000
    assert all(len(j) == 24 and j == j.lower() and int(j, 16) >= 0 for j in jids)


# --- timestamps -----------------------------------------------------------------------------------------


def test_timestamp_float_style_is_a_float_even_for_whole_seconds() -> None:
    stamp = payload.timestamp(1755400000, "float")
    assert type(stamp) is float and payload.dumps(stamp) == "1755400000.0"


def test_timestamp_ms_style_is_an_integer() -> None:
    stamp = payload.timestamp(1755400000.1234, "ms")
    assert type(stamp) is int and stamp == 1755400000123


def test_timestamp_defaults_to_now() -> None:
    now = datetime.now(timezone.utc).timestamp()
    assert abs(payload.timestamp() - now) < 5
    assert abs(payload.timestamp(style="ms") / 1000 - now) < 5


@pytest.mark.parametrize(("value", "seconds"), [
    (1755400000.25, 1755400000.25),     # Sidekiq 6/7 float seconds
    (1755400000250, 1755400000.25),     # Sidekiq 8 integer milliseconds
    (1755400000, 1755400000.0),         # integer seconds from other producers
    (0, 0.0),
])
def test_to_epoch_s_reads_both_styles(value: float, seconds: float) -> None:
    assert payload.to_epoch_s(value) == pytest.approx(seconds)
    assert type(payload.to_epoch_s(value)) is float


@pytest.mark.parametrize("value", [None, True, "1755400000.0", [1], {}])
def test_to_epoch_s_is_none_for_non_numbers(value: object) -> None:
    assert payload.to_epoch_s(value) is None


def test_both_styles_round_trip_through_to_epoch_s() -> None:
    now = 1755400000.5
    assert payload.to_epoch_s(payload.timestamp(now, "float")) == now
    assert payload.to_epoch_s(payload.timestamp(now, "ms")) == now


# --- argument checks ---------------------------------------------------------------------------------------


def test_check_json_native_accepts_plain_values_and_top_level_tuple() -> None:
    payload.check_json_native((1, "a", 2.5, None, True, [1, {"k": [False]}]))


@pytest.mark.parametrize(("args", "message"), [
    ([1, {"when": datetime(2025, 1, 1)}], 'args[1]["when"]: datetime is not JSON-native'),
    ([Decimal("1.5")], "args[0]: Decimal is not JSON-native"),
    ([{1: "a"}], "args[0]: key 1 is int, JSON keys must be strings"),
    ([[1, (2, 3)]], "args[0][1]: tuple is not JSON-native (use a list)"),
    ([math.nan], "args[0]: nan is not JSON-native"),
    ([{"a": [math.inf]}], 'args[0]["a"][0]: inf is not JSON-native'),
    ([{"é": {1, 2}}], 'args[0]["é"]: set is not JSON-native'),
    ([b"bytes"], "args[0]: bytes is not JSON-native"),
])
def test_check_json_native_names_the_offending_value(args: list[object], message: str) -> None:
    with pytest.raises(TypeError) as caught:
        payload.check_json_native(args)
    assert str(caught.value) == message


# --- backtraces ------------------------------------------------------------------------------------------------


LINES = ["app/jobs/x.py:10:in `perform'", "lib/ü.py:2:in `<main>'"]


def test_backtrace_is_strict_base64_of_deflated_json() -> None:
    encoded = payload.encode_backtrace(LINES)
    assert "\n" not in encoded
    assert json.loads(zlib.decompress(base64.b64decode(encoded, validate=True))) == LINES
    assert payload.decode_backtrace(encoded) == LINES


def test_backtrace_decodes_the_older_60_column_base64() -> None:
    lines = [f"frame {i} " + "x" * 40 for i in range(50)]
    strict = base64.b64encode(zlib.compress(json.dumps(lines).encode())).decode()
    wrapped = "".join(strict[i:i + 60] + "\n" for i in range(0, len(strict), 60))
    assert wrapped.count("\n") > 1
    assert payload.decode_backtrace(wrapped) == lines


def test_backtrace_garbage_raises() -> None:
    with pytest.raises((ValueError, zlib.error)):
        payload.decode_backtrace("not base64 at all!")


# --- ActiveJob ---------------------------------------------------------------------------------------------------


def _activejob(arguments: list[object], wrapper: str = "ActiveJob::QueueAdapters::SidekiqAdapter::JobWrapper"):
    return {"class": wrapper, "wrapped": "GreetJob", "queue": "default", "jid": "a" * 24,
            "args": [{"job_class": "GreetJob", "job_id": "uuid", "arguments": arguments,
                      "enqueued_at": "2025-01-01T00:00:00.000000000Z"}]}


def test_unwrap_activejob_splits_kwargs_and_strips_markers() -> None:
    job = _activejob(["bob", {"sym": 1, "_aj_symbol_keys": ["sym"]},
                      {"greeting": "hi", "count": 2, "_aj_ruby2_keywords": ["greeting", "count"]}])
    assert payload.is_activejob(job)
    name, args, kwargs = payload.unwrap_activejob(job)
    assert (name, args, kwargs) == ("GreetJob", ["bob", {"sym": 1}], {"greeting": "hi", "count": 2})


def test_unwrap_activejob_strips_nested_markers_and_keeps_plain_last_hash_positional() -> None:
    job = _activejob([[{"a": 1, "_aj_hash_with_indifferent_access": True}], {"plain": True}],
                     wrapper="Sidekiq::ActiveJob::Wrapper")
    name, args, kwargs = payload.unwrap_activejob(job)
    assert args == [[{"a": 1}], {"plain": True}] and kwargs == {}


def test_unwrap_activejob_does_not_change_the_job() -> None:
    job = _activejob([{"k": 1, "_aj_ruby2_keywords": ["k"]}])
    before = json.dumps(job)
    payload.unwrap_activejob(job)
    assert json.dumps(job) == before


@pytest.mark.parametrize("args", [[], ["string"], [{"job_class": "X"}], [{"arguments": 5}]])
def test_unwrap_activejob_rejects_broken_envelopes(args: list[object]) -> None:
    job = {"class": "Sidekiq::ActiveJob::Wrapper", "args": args}
    with pytest.raises(InvalidPayload, match="arguments"):
        payload.unwrap_activejob(job)


def test_display_class_prefers_wrapped() -> None:
    assert payload.display_class(_activejob([])) == "GreetJob"
    assert payload.display_class({"class": "HardJob", "args": []}) == "HardJob"
    assert not payload.is_activejob({"class": "HardJob", "args": []})


# --- round trip -----------------------------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=25,
)


@settings(max_examples=60)
@given(args=st.lists(json_values, max_size=6), extra=st.dictionaries(st.text(min_size=1), json_values, max_size=4))
def test_round_trip_keeps_every_value_and_type(args: list[object], extra: dict[str, object]) -> None:
    job = {**extra, "class": "Round::Trip", "args": args}
    payload.check_json_native(args)
    raw = payload.dumps(job)
    assert payload.loads(raw.encode()) == job
    assert payload.dumps(payload.loads(raw)) == raw


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_every_float_is_written_as_a_float(value: float) -> None:
    text = payload.dumps(value)
    assert any(c in text for c in ".e") and json.loads(text) == value


def test_args_nesting_limit_is_ruby_jsons_and_the_message_is_clear():
    def nested(depth: int, leaf: object = 1) -> object:
        value = leaf
        for _ in range(depth):
            value = [value]
        return value

    payload.check_json_native([nested(payload.MAX_ARGS_NESTING)])
    payload.check_json_native([nested(payload.MAX_ARGS_NESTING - 1, {"k": 1.5})])
    with pytest.raises(ValueError, match="nested deeper than 98 levels"):
        payload.check_json_native([nested(payload.MAX_ARGS_NESTING + 1)])
    with pytest.raises(ValueError, match="nested deeper"):
        payload.check_json_native([nested(10_000)])
