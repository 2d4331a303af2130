"""The ERB that Rails apps write in ``sidekiq.yml``, evaluated without running Ruby.

Sidekiq renders the whole file with ERB before parsing the YAML, so a value may be ``<%= ENV["X"] %>``.
pyq does the same on the file text, but reads only the expressions that fetch an environment variable:

- ``ENV["X"]`` / ``ENV['X']`` (unset: empty, as Ruby's ``nil.to_s``), ``ENV["X"] || 5``
- ``ENV.fetch("X")`` (unset: an error), ``ENV.fetch("X", 5)``, ``ENV.fetch("X") { 5 }``
- any of those inside ``Integer(...)`` or followed by ``.to_i``; ``<%# comments %>``; ``<%%`` for ``<%``

Any other tag is an error naming the file and line and showing the ``${X:-5}`` spelling pyq reads
everywhere, because guessing at Ruby would be worse than stopping.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .errors import ConfigError
from .payload import ruby_to_s

__all__ = ["render"]

_TAG = re.compile(r"<%(?P<kind>%|=|#|)(?P<code>.*?)%>", re.S)
_NAME = r"""(?:"(?P<dq>[^"\\]*)"|'(?P<sq>[^'\\]*)')"""
_LIT = r"""(?P<lit>[+-]?\d+(?:\.\d+)?|"[^"\\]*"|'[^'\\]*'|nil|true|false)"""
#: The variable reads, each with the part that gives the value when the variable is unset.
_BLOCK = _LIT.replace("lit", "blk")
_READS = [
    ("index", re.compile(rf"ENV\[\s*{_NAME}\s*\](?:\s*\|\|\s*{_LIT})?")),
    ("fetch", re.compile(rf"ENV\.fetch\(\s*{_NAME}\s*(?:,\s*{_LIT}\s*)?\)(?:\s*\{{\s*{_BLOCK}\s*\}})?")),
]
_ANY_NAME = re.compile(rf"ENV(?:\[\s*{_NAME}|\.fetch\(\s*{_NAME.replace('dq', 'dq2').replace('sq', 'sq2')})")
_RUBY_INT = re.compile(r"\s*[+-]?\d+(?:_\d+)*\s*")
_LEADING_INT = re.compile(r"\s*([+-]?\d+(?:_\d+)*)")


class _Unsupported(Exception):
    """The tag is not one of the forms pyq reads."""


def render(text: str, path: str, env: Mapping[str, str]) -> str:
    """``text`` with every ERB tag replaced by its value; raises :class:`ConfigError` naming the line."""
    if "<%" not in text:
        return text

    def value(match: re.Match[str]) -> str:
        kind, code = match["kind"], match["code"]
        if kind == "%":
            return "<%" + code + "%>"
        if kind == "#":
            return ""
        line = text.count("\n", 0, match.start()) + 1
        if kind != "=":
            raise ConfigError(_unsupported(path, line, match[0]))
        try:
            return _evaluate(code.strip(), env, f"{path}: line {line}")
        except _Unsupported:
            raise ConfigError(_unsupported(path, line, match[0])) from None

    return _TAG.sub(value, text)


def _evaluate(code: str, env: Mapping[str, str], where: str) -> str:
    if code.startswith("Integer(") and code.endswith(")"):
        return str(_integer(_read(code[8:-1].strip(), env, where), where, code))
    if code.endswith(".to_i"):
        inner = code[:-5].strip()
        if inner.startswith("(") and inner.endswith(")"):
            inner = inner[1:-1].strip()
        return str(_to_i(_read(inner, env, where)))
    return ruby_to_s(_read(code, env, where))


def _read(code: str, env: Mapping[str, str], where: str) -> Any:
    """The Ruby value of one variable read: the variable's text, the default given, or nil."""
    for form, pattern in _READS:
        match = pattern.fullmatch(code)
        if match is None:
            continue
        name = match["dq"] if match["dq"] is not None else match["sq"]
        if name in env:
            return env[name]
        default = match["lit"] if form == "index" else (match["lit"] or match["blk"])
        if form == "fetch" and default is None:
            raise ConfigError(f"{where}: environment variable {name} is not set "
                              f"(ENV.fetch without a default; write ENV.fetch(\"{name}\", 5) or ${{{name}:-5}})")
        return _literal(default)
    raise _Unsupported(code)


def _literal(token: str | None) -> Any:
    if token is None or token == "nil":
        return None
    if token in ("true", "false"):
        return token == "true"
    if token[0] in "\"'":
        return token[1:-1]
    return float(token) if "." in token else int(token)




def _integer(value: Any, where: str, code: str) -> int:
    """Ruby's ``Integer()``: whole decimal text or a number, anything else an error."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, str) and _RUBY_INT.fullmatch(value):
        return int(value.replace("_", ""))
    raise ConfigError(f"{where}: {code} is not an integer (got {value!r})")


def _to_i(value: Any) -> int:
    """Ruby's ``.to_i``: the leading integer of the text, else 0."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(value)
    match = _LEADING_INT.match(value) if isinstance(value, str) else None
    return int(match[1].replace("_", "")) if match else 0


def _unsupported(path: str, line: int, tag: str) -> str:
    match = _ANY_NAME.search(tag)
    name = next((g for g in (match.groups() if match else ()) if g), "X")
    return (f"{path}: line {line}: ERB {tag!r} is not supported: pyq reads only ENV[\"X\"], ENV.fetch(\"X\", 5), "
            f"ENV.fetch(\"X\") {{ 5 }} and Integer(...) / .to_i of those; write ${{{name}:-5}} instead")
