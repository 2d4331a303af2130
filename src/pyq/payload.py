"""Sidekiq job payloads: JSON in and out, timestamps, backtraces, ActiveJob envelopes.

Bytes matter here: Ruby parses what pyq writes (Sidekiq's Web UI and workers),
so JSON is written the way Ruby's ``JSON.generate`` writes it (no spaces,
raw UTF-8, ``/`` not escaped, never NaN) and timestamps keep their type
(float seconds, or Sidekiq 8's integer milliseconds).
"""

from __future__ import annotations

import base64
import json
import math
import re
import secrets
import time
import zlib
from typing import Any, Literal

from .errors import InvalidPayload

TimeStyle = Literal["float", "ms"]

#: ActiveJob's Sidekiq wrapper class name that every Sidekiq version runs (the adapter's, Sidekiq <= 7).
ACTIVEJOB_WRAPPER = "ActiveJob::QueueAdapters::SidekiqAdapter::JobWrapper"
#: Every ActiveJob wrapper class name (Sidekiq <= 7, Sidekiq 8).
ACTIVEJOB_WRAPPERS = frozenset({ACTIVEJOB_WRAPPER, "Sidekiq::ActiveJob::Wrapper"})
#: Integers below this are epoch seconds from non-Sidekiq producers; above, Sidekiq 8 milliseconds.
MS_THRESHOLD = 100_000_000_000
#: Deepest array or object inside ``args`` (``args`` itself is 0): Ruby's JSON.parse refuses documents
#: nested over 100 levels, and the job object and its args array take two of them.
MAX_ARGS_NESTING = 98
#: Sidekiq truncates stored error messages to this many characters.
MAX_ERROR_MESSAGE = 10_000

_encoder = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)
_decode = json.JSONDecoder().decode
_SURROGATE = re.compile("[\ud800-\udfff]")


def new_jid() -> str:
    """24 lowercase hex characters (12 random bytes), like Sidekiq's jid."""
    return secrets.token_hex(12)


def new_jids(count: int) -> list[str]:
    """``count`` jids from one read of the system's random source."""
    pool = secrets.token_hex(12 * count)
    return [pool[i:i + 24] for i in range(0, 24 * count, 24)]


def dumps(job: Any) -> str:
    """Encode a job the way Ruby's ``JSON.generate`` does (compact, UTF-8, no NaN).

    A lone surrogate (a broken string, e.g. decoded from Ruby's ``"\\ud800"``) is written as its
    ``\\uXXXX`` escape, as Ruby writes it, because raw it cannot be encoded as UTF-8 at all.
    """
    text = _encoder.encode(job)
    if not text.isascii() and _SURROGATE.search(text):
        text = _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    return text


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


def try_loads(raw: str | bytes | None) -> dict[str, Any] | None:
    """The job in ``raw``, or None when it is missing or not a job (for readers that skip such entries)."""
    if raw is None:
        return None
    try:
        return loads(raw)
    except InvalidPayload:
        return None


def queue_of(job: dict[str, Any] | None) -> str:
    """The queue a job goes back to: its ``queue`` field, ``default`` when it has none (as the Lua scripts decide)."""
    queue = job.get("queue") if job else None
    return queue if isinstance(queue, str) and queue else "default"


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
    return value / 1000.0 if value >= MS_THRESHOLD else float(value)


def time_style_of(job: dict[str, Any]) -> TimeStyle:
    """The style a job's ``created_at`` uses, for writing its other timestamps alike (Sidekiq 8: integer ms)."""
    created = job.get("created_at")
    ms = isinstance(created, int) and not isinstance(created, bool) and created >= MS_THRESHOLD
    return "ms" if ms else "float"


# --- arguments --------------------------------------------------------------


def check_json_native(args: Any, path: str = "args") -> None:
    """Raise TypeError naming the first value (by path) that JSON cannot carry unchanged.

    Walks the value without recursion and refuses nesting deeper than :data:`MAX_ARGS_NESTING`
    with a ValueError: Ruby's JSON parser (Sidekiq's Web UI and workers) stops at 100 levels.
    """
    if _plainly_native(args):
        return
    todo: list[tuple[Any, str, int]] = [(args, path, 0)]
    while todo:
        value, where, depth = todo.pop()
        if depth > MAX_ARGS_NESTING and isinstance(value, (list, tuple, dict)):
            raise ValueError(f"{path}: nested deeper than {MAX_ARGS_NESTING} levels (Ruby's JSON parser stops "
                             f"at 100)")
        todo.extend(_children(value, where, depth))


_SCALARS = (str, int, bool, type(None))


def _plainly_native(args: Any) -> bool:
    """The fast answer for the usual case (no path strings built); False sends the caller to the
    walk that names the offending value."""
    todo: list[tuple[Any, int]] = [(args, 0)]
    while todo:
        value, depth = todo.pop()
        if depth > MAX_ARGS_NESTING:
            return False
        if isinstance(value, list) or (isinstance(value, tuple) and not depth):
            for item in value:
                if type(item) is float:
                    if not math.isfinite(item):
                        return False
                elif not isinstance(item, _SCALARS):
                    todo.append((item, depth + 1))
        elif isinstance(value, dict):
            if not all(type(k) is str for k in value):
                return False
            todo.extend((item, depth + 1) for item in value.values() if not isinstance(item, _SCALARS))
        elif not isinstance(value, _SCALARS) and not (type(value) is float and math.isfinite(value)):
            return False
    return True


def _children(value: Any, where: str, depth: int) -> list[tuple[Any, str, int]]:
    if value is None or isinstance(value, (str, bool, int)):
        return []
    if isinstance(value, float):
        if not math.isfinite(value):
            raise TypeError(f"{where}: {value!r} is not JSON-native")
        return []
    if isinstance(value, (list, tuple)):
        if isinstance(value, tuple) and depth:
            raise TypeError(f"{where}: tuple is not JSON-native (use a list)")
        return [(item, f"{where}[{i}]", depth + 1) for i, item in reversed(list(enumerate(value)))]
    if isinstance(value, dict):
        for key in value:
            if not isinstance(key, str):
                raise TypeError(f"{where}: key {key!r} is {type(key).__name__}, JSON keys must be strings")
        return [(item, f"{where}[{json.dumps(key, ensure_ascii=False)}]", depth + 1)
                for key, item in reversed(list(value.items()))]
    raise TypeError(f"{where}: {type(value).__name__} is not JSON-native")


# --- backtraces ---------------------------------------------------------------


def encode_backtrace(lines: list[str]) -> str:
    """Sidekiq's ``error_backtrace``: JSON array -> zlib deflate -> strict Base64."""
    return base64.b64encode(zlib.compress(dumps(lines).encode())).decode()


def decode_backtrace(value: str) -> list[str]:
    """Inverse of :func:`encode_backtrace`; also reads the older 60-column Base64."""
    data = zlib.decompress(base64.b64decode("".join(value.split())))
    return json.loads(data)


def read_backtrace(value: Any) -> list[str] | None:
    """The lines of a stored ``error_backtrace`` as Sidekiq's Web UI reads it: compressed text, or the plain
    array older Sidekiq versions stored; None when there is none, one explanatory line when unreadable."""
    if value is None:
        return None
    if isinstance(value, list):
        return [str(line) for line in value]
    try:
        lines = decode_backtrace(str(value))
    except (ValueError, zlib.error) as exc:  # binascii.Error and JSON errors are ValueErrors
        return [f"(error_backtrace is not readable: {exc})"]
    return [str(line) for line in lines] if isinstance(lines, list) else [str(lines)]


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


def ruby_to_s(value: Any) -> str:
    """``value.to_s`` as Ruby writes it (``nil`` → ``""``, ``true``/``false``), for text Ruby reads back."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
