"""Sidekiq job payloads: JSON in and out, timestamps, backtraces, ActiveJob envelopes.

Bytes matter here: Ruby parses what pyq writes (Sidekiq's Web UI and workers),
so JSON is written the way Ruby's ``JSON.generate`` writes it (no spaces,
raw UTF-8, ``/`` not escaped, never NaN) and timestamps keep their type
(float seconds, or Sidekiq 8's integer milliseconds).
"""

from __future__ import annotations

import base64
import json
import secrets
import time
import zlib
from typing import Any, Literal

from .errors import InvalidPayload

TimeStyle = Literal["float", "ms"]

#: ActiveJob's Sidekiq wrapper class names (Sidekiq <= 7, Sidekiq 8).
ACTIVEJOB_WRAPPERS = frozenset(
    {"ActiveJob::QueueAdapters::SidekiqAdapter::JobWrapper", "Sidekiq::ActiveJob::Wrapper"}
)
#: Integers below this are epoch seconds from non-Sidekiq producers; above, Sidekiq 8 milliseconds.
_MS_THRESHOLD = 100_000_000_000
#: Sidekiq truncates stored error messages to this many characters.
MAX_ERROR_MESSAGE = 10_000

_encoder = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)
_decode = json.JSONDecoder().decode


def new_jid() -> str:
    """24 lowercase hex characters (12 random bytes), like Sidekiq's jid."""
    return secrets.token_hex(12)


def dumps(job: Any) -> str:
    """Encode a job the way Ruby's ``JSON.generate`` does (compact, UTF-8, no NaN)."""
    return _encoder.encode(job)


def loads(raw: str | bytes) -> dict[str, Any]:
    """Decode and validate one job; raises :class:`InvalidPayload` with the reason."""
    try:
        job = _decode(raw.decode() if isinstance(raw, bytes) else raw)
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidPayload(f"payload is not valid JSON: {exc}") from None
    if not isinstance(job, dict):
        raise InvalidPayload(f"payload is a JSON {type(job).__name__}, expected an object")
    if not isinstance(job.get("class"), str) or not job["class"]:
        raise InvalidPayload("payload has no 'class' string")
    if not isinstance(job.get("args"), list):
        raise InvalidPayload("payload has no 'args' array")
    return job


# --- timestamps ------------------------------------------------------------


def timestamp(now_s: float | None = None, style: TimeStyle = "float") -> float | int:
    """A payload timestamp: float seconds (Sidekiq 6/7) or integer ms (Sidekiq 8)."""
    now_s = time.time() if now_s is None else now_s
    return int(now_s * 1000) if style == "ms" else float(now_s)


def to_epoch_s(value: Any) -> float | None:
    """Read a payload timestamp of either style as float epoch seconds (None if absent)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float):
        return value
    return value / 1000.0 if value >= _MS_THRESHOLD else float(value)


# --- arguments --------------------------------------------------------------


def check_json_native(args: Any, path: str = "args") -> None:
    """Raise TypeError naming the first value (by path) that JSON cannot carry unchanged."""
    if args is None or isinstance(args, (str, bool, int)):
        return
    if isinstance(args, float):
        if args != args or args in (float("inf"), float("-inf")):
            raise TypeError(f"{path}: {args!r} is not JSON-native")
        return
    if isinstance(args, (list, tuple)):
        if isinstance(args, tuple) and path != "args":
            raise TypeError(f"{path}: tuple is not JSON-native (use a list)")
        for i, item in enumerate(args):
            check_json_native(item, f"{path}[{i}]")
        return
    if isinstance(args, dict):
        for key, item in args.items():
            if not isinstance(key, str):
                raise TypeError(f"{path}: key {key!r} is {type(key).__name__}, JSON keys must be strings")
            check_json_native(item, f"{path}[{json.dumps(key, ensure_ascii=False)}]")
        return
    raise TypeError(f"{path}: {type(args).__name__} is not JSON-native")


# --- backtraces ---------------------------------------------------------------


def encode_backtrace(lines: list[str]) -> str:
    """Sidekiq's ``error_backtrace``: JSON array -> zlib deflate -> strict Base64."""
    return base64.b64encode(zlib.compress(dumps(lines).encode())).decode()


def decode_backtrace(value: str) -> list[str]:
    """Inverse of :func:`encode_backtrace`; also reads the older 60-column Base64."""
    data = zlib.decompress(base64.b64decode("".join(value.split())))
    return json.loads(data)


# --- ActiveJob ---------------------------------------------------------------

_AJ_MARKERS = ("_aj_symbol_keys", "_aj_ruby2_keywords", "_aj_hash_with_indifferent_access")


def is_activejob(job: dict[str, Any]) -> bool:
    return job.get("class") in ACTIVEJOB_WRAPPERS


def display_class(job: dict[str, Any]) -> str:
    """The name people see: ActiveJob's ``wrapped`` class, else ``class``."""
    wrapped = job.get("wrapped")
    return wrapped if isinstance(wrapped, str) and wrapped else str(job.get("class", "?"))


def unwrap_activejob(job: dict[str, Any]) -> tuple[str, list[Any], dict[str, Any]]:
    """(job class name, positional args, keyword args) from an ActiveJob envelope."""
    try:
        envelope = job["args"][0]
        name = envelope.get("job_class") or job["wrapped"]
        arguments = list(envelope["arguments"])
    except (KeyError, IndexError, TypeError, AttributeError):
        raise InvalidPayload("ActiveJob payload without args[0]['arguments']") from None
    kwargs: dict[str, Any] = {}
    if arguments and isinstance(arguments[-1], dict) and "_aj_ruby2_keywords" in arguments[-1]:
        kwargs = _strip_markers(arguments.pop())
    return name, [_strip_markers(a) for a in arguments], kwargs


def _strip_markers(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_markers(v) for k, v in value.items() if k not in _AJ_MARKERS}
    if isinstance(value, list):
        return [_strip_markers(v) for v in value]
    return value
