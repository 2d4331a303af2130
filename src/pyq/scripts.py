"""Loads the Lua scripts in ``lua/`` and calls them by SHA.

Each script is one file with a header that lists its KEYS and ARGV. Shared
helpers live in ``lua/includes/`` and are pulled in with a line
``--- @include "includes/NAME"``; each include is inserted once, and a cycle
or a missing file is an error that names the chain of includes.

Calls run EVALSHA; when Redis answers NOSCRIPT (after a restart or SCRIPT
FLUSH) the source is loaded again and the call repeated. Pipelined calls do
the same for just the calls that got NOSCRIPT, so a batch costs one round
trip in the common case (redis-py's own pipeline asks SCRIPT EXISTS first,
which would cost a second one).
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from redis.exceptions import NoScriptError

from .errors import PyqError

_INCLUDE = re.compile(r'^--- @include "([\w/.-]+)"\s*$', re.MULTILINE)
_HEADER_SLOT = re.compile(r"^-- (KEYS|ARGV)\[(\d+)(?:\.\.)?\]\s+(\w+)", re.MULTILINE)

#: One pipelined script call: (script name, keys, args).
Call = tuple[str, Sequence[Any], Sequence[Any]]


class ScriptLoadError(PyqError):
    """A script or include that cannot be read or assembled."""


def lua_dir() -> Path:
    """The ``lua/`` folder: inside an installed wheel (``pyq/lua``), else the checkout's top level."""
    packaged = Path(str(resources.files("pyq"))) / "lua"
    if packaged.is_dir():
        return packaged
    checkout = Path(__file__).resolve().parents[2] / "lua"
    if checkout.is_dir():
        return checkout
    raise ScriptLoadError(f"pyq's Lua scripts are missing: looked in {packaged} and {checkout}")


def assemble(name: str, root: Path | None = None) -> str:
    """The source of ``lua/NAME.lua`` with every include inserted once, in order."""
    root = root or lua_dir()
    seen: set[str] = set()

    def expand(rel: str, chain: tuple[str, ...]) -> str:
        path = root / f"{rel}.lua"
        try:
            text = path.read_text()
        except OSError:
            where = f" (included from {' -> '.join(chain)})" if chain else ""
            raise ScriptLoadError(f"Lua file not found: {path}{where}") from None
        seen.add(rel)

        def insert(match: re.Match[str]) -> str:
            inc = match.group(1)
            if inc in (*chain, rel):
                raise ScriptLoadError(f"include cycle: {' -> '.join((*chain, rel, inc))}")
            if inc in seen:
                return f"-- (included above: {inc})"
            return expand(inc, (*chain, rel))

        return _INCLUDE.sub(insert, text)

    return expand(name, ())


def header_slots(text: str) -> dict[str, list[str]]:
    """Names of the KEYS and ARGV slots a script's header documents, in order."""
    slots: dict[str, list[str]] = {"KEYS": [], "ARGV": []}
    for kind, _index, slot_name in _HEADER_SLOT.findall(text.split("\n\n", 1)[0]):
        slots[kind].append(slot_name)
    return slots


@functools.cache
def _compiled(name: str) -> tuple[str, str]:
    text = assemble(name)
    return text, hashlib.sha1(text.encode()).hexdigest()


class Scripts:
    """Runs pyq's scripts by SHA on a client, a pipeline, or a batch of calls."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def run(self, name: str, keys: Sequence[Any], args: Sequence[Any], client: Any = None) -> Any:
        """One call, one round trip (two after a Redis restart)."""
        client = client or self.client
        text, sha = _compiled(name)
        try:
            return client.evalsha(sha, len(keys), *keys, *args)
        except NoScriptError:
            client.script_load(text)
            return client.evalsha(sha, len(keys), *keys, *args)

    def run_many(self, calls: Sequence[Call], client: Any = None) -> list[Any]:
        """Several calls in one pipeline; results in order, errors returned as exceptions."""
        client = client or self.client
        results = self._pipeline(client, calls)
        missing = [i for i, r in enumerate(results) if isinstance(r, NoScriptError)]
        if missing:
            for name in {calls[i][0] for i in missing}:
                client.script_load(_compiled(name)[0])
            for i, result in zip(missing, self._pipeline(client, [calls[i] for i in missing]), strict=True):
                results[i] = result
        return results

    @staticmethod
    def _pipeline(client: Any, calls: Sequence[Call]) -> list[Any]:
        pipe = client.pipeline(transaction=False)
        for name, keys, args in calls:
            pipe.evalsha(_compiled(name)[1], len(keys), *keys, *args)
        return pipe.execute(raise_on_error=False)
