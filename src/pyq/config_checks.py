"""Value checks for the config loader: each turns a raw YAML or environment value into a typed one.

A check takes ``(value, where)`` and returns the typed value, or raises :class:`ConfigError` whose message
names ``where`` (file and dotted key), what was expected and what was given (passwords redacted).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, NoReturn
from urllib.parse import urlsplit

from .connection import redact
from .errors import ConfigError
from .keys import QUEUE_NAME_RULE, is_queue_name
from .payload import TimeStyle

_INT = re.compile(r"\s*[+-]?\d+\s*")
_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


@dataclass(frozen=True)
class QueueWeight:
    """One configured queue; weight 0 means it was listed without a weight."""

    name: str
    weight: int = 0



Check = Callable[[Any, str], Any]


def fail(where: str, expected: str, value: Any) -> NoReturn:
    raise ConfigError(redact(f"{where}: expected {expected}, got {value!r}"))


def integer(expected: str, low: int, high: int | None = None) -> Check:
    def check(value: Any, where: str) -> int:
        number = int(value) if isinstance(value, str) and _INT.fullmatch(value) else value
        if isinstance(number, bool) or not isinstance(number, int) or number < low or (high and number > high):
            fail(where, expected, value)
        return number
    return check


def number(expected: str, positive: bool) -> Check:
    def check(value: Any, where: str) -> float:
        try:
            number = float(value) if isinstance(value, (int, float, str)) and not isinstance(value, bool) else -1.0
        except ValueError:
            number = -1.0
        if not math.isfinite(number) or number < 0 or (positive and number == 0):
            fail(where, expected, value)
        return number
    return check


def boolean(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower() if isinstance(value, (str, int)) else None
    if word in _TRUE or word in _FALSE:
        return word in _TRUE
    fail(where, "true or false", value)


def text(value: Any, where: str) -> str:
    if not isinstance(value, str):
        fail(where, "a string", value)
    return value


def namespace(value: Any, where: str) -> str:
    if not isinstance(value, str) or re.search(r"[\s{}]", value) or value.endswith(":"):
        fail(where, "a key prefix without spaces, braces or a trailing ':'", value)
    return value


def choice(*options: str) -> Check:
    def check(value: Any, where: str) -> str:
        if not isinstance(value, str) or value.strip().lower() not in options:
            fail(where, "one of " + ", ".join(options), value)
        return value.strip().lower()
    return check


def time_style(value: Any, where: str) -> TimeStyle:
    """``float`` or ``ms``, typed as the payload timestamp style every writer takes."""
    word = value.strip().lower() if isinstance(value, str) else None
    if word not in ("float", "ms"):
        fail(where, "one of float, ms", value)
    return "ms" if word == "ms" else "float"


def tracing(value: Any, where: str) -> str:
    """``off`` (false, the default), or how a consumer span relates to its producer: ``link`` (true), ``child``,
    ``none`` (:data:`pyq.tracing.PROPAGATIONS`)."""
    word = value.strip().lower() if isinstance(value, str) else value
    if word in ("link", "child", "none", "off"):
        return word
    if isinstance(word, bool) or word in _TRUE or word in _FALSE:
        return "link" if word is True or word in _TRUE else "off"
    fail(where, "false, true, link, child or none", value)


def optional(inner: Check) -> Check:
    def check(value: Any, where: str) -> Any:
        empty = value is None or (isinstance(value, str) and value.strip().lower() in ("", "null", "none"))
        return None if empty else inner(value, where)
    return check


def strings(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    if value is None:
        return ()
    if not isinstance(value, (list, tuple)) or not all(isinstance(item, str) and item for item in value):
        fail(where, "a list of strings", value)
    return tuple(value)


def mapping(value: Any, where: str) -> Mapping[str, Any]:
    if value is not None and not isinstance(value, Mapping):
        fail(where, "a mapping", value)
    return MappingProxyType(dict(value or {}))


def url(value: Any, where: str) -> str:
    schemes = ("redis", "rediss", "unix", "redis+sentinel")
    text = value.strip() if isinstance(value, str) else ""
    url = urlsplit(text)
    if url.scheme.lower() not in schemes or not (url.netloc or url.path) or re.search(r"\s", text):
        fail(where, "a URL starting with " + ", ".join(s + "://" for s in schemes), value)
    if url.scheme.lower() == "redis+sentinel" and (not url.hostname or not url.path.strip("/")):
        fail(where, "a Sentinel URL redis+sentinel://[:password@]host:port[,host:port...]/service[/db]", value)
    return text


def parse_queue(item: Any, where: str) -> QueueWeight:
    """One ``queues`` entry: ``name``, ``"name,weight"``, ``[name, weight]`` or ``{name: weight}``.

    ``where`` starts the error message (``"config/queue.yml: queues[2]"``, ``"-q"``).
    """
    if isinstance(item, QueueWeight):
        parts: list[Any] = [item.name, item.weight]
    elif isinstance(item, str):
        parts = [part.strip() for part in item.split(",")]
    elif isinstance(item, (list, tuple)):
        parts = list(item)
    elif isinstance(item, Mapping) and len(item) == 1:
        parts = list(next(iter(item.items())))
    else:
        parts = []
    weight = parts[1] if len(parts) == 2 else 0
    if isinstance(weight, str) and _INT.fullmatch(weight):
        weight = int(weight)
    if (not 1 <= len(parts) <= 2 or not is_queue_name(parts[0])
            or isinstance(weight, bool) or not isinstance(weight, int) or weight < 0):
        fail(where, f"a queue name ({QUEUE_NAME_RULE}) or name,weight with an integer weight >= 0", item)
    return QueueWeight(parts[0], weight)


def queues(value: Any, where: str) -> tuple[QueueWeight, ...]:
    if isinstance(value, str):
        value = [item for item in re.split(r"[\s;]+", value) if item]
    if not isinstance(value, (list, tuple)) or not value:
        fail(where, "a non-empty list of queues", value)
    queues = tuple(parse_queue(item, f"{where}[{i}]") for i, item in enumerate(value))
    twice = [q.name for i, q in enumerate(queues) if q.name in {p.name for p in queues[:i]}]
    if twice:
        raise ConfigError(f"{where}: queue {twice[0]!r} is listed twice")
    return queues


POSITIVE_INT = integer("a positive integer", 1)
COUNT = integer("an integer >= 0", 0)
SECONDS = number("a positive number of seconds", positive=True)
