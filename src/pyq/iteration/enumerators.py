"""Ready-made enumerators for :class:`~pyq.iteration.IterableJob`: each yields ``(item, cursor)`` pairs.

The cursor that comes with an item is where iteration resumes *at that item*: a job stopped before
the item, or killed while working on it, starts again with it. Each enumerator also knows its total
number of items (``len()``), which the job reports as progress, except the keyset pages when no
``total`` is given.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Generic, TypeVar

T = TypeVar("T")
_CHUNK_BYTES = 1 << 20


class Enumerator(Generic[T]):
    """An iterable of ``(item, cursor)`` with a known or unknown total (``len()`` raises TypeError if unknown)."""

    def __init__(self, pairs: Callable[[], Iterator[tuple[T, Any]]], total: Callable[[], int | None]) -> None:
        self._pairs = pairs
        self._total = total

    def __iter__(self) -> Iterator[tuple[T, Any]]:
        return self._pairs()

    def __len__(self) -> int:
        total = self._total()
        if total is None:
            raise TypeError("this enumerator does not know how many items it has")
        return total


def range_enumerator(start: int, stop: int, step: int = 1, *, cursor: int | None) -> Enumerator[int]:
    """The integers of ``range(start, stop, step)``; the cursor is the integer itself."""
    whole = range(start, stop, step)
    begin = start if cursor is None else int(cursor)

    def pairs() -> Iterator[tuple[int, Any]]:
        for value in range(begin, stop, step):
            yield value, value

    return Enumerator(pairs, lambda: len(whole))


def array_enumerator(items: Sequence[T], *, cursor: int | None) -> Enumerator[T]:
    """The items of a list; the cursor is the item's index (Sidekiq's ``array_enumerator``)."""
    begin = 0 if cursor is None else int(cursor)

    def pairs() -> Iterator[tuple[T, Any]]:
        for index in range(begin, len(items)):
            yield items[index], index

    return Enumerator(pairs, lambda: len(items))


def csv_enumerator(path: str, *, cursor: int | None, header: bool = True, encoding: str = "utf-8",
                   **fmtparams: Any) -> Enumerator[Any]:
    """The rows of a CSV file (dicts keyed by the header row, or lists with ``header=False``).

    The cursor is the byte offset where the row starts, so a resume seeks straight to it instead of
    reading the file again from the top. Blank lines are skipped. ``len()`` counts the file's lines
    (less the header), which is exact unless a quoted field holds a line break.
    """

    def pairs() -> Iterator[tuple[Any, Any]]:
        with open(path, "rb") as f:
            fieldnames: list[str] | None = None
            begin = 0
            if header:
                names, begin = _first_row(f, encoding, fmtparams)
                fieldnames = names or []
            start = begin if cursor is None else int(cursor)
            f.seek(start)
            position = start

            def lines() -> Iterator[str]:
                nonlocal position
                for raw in iter(f.readline, b""):
                    position += len(raw)
                    yield raw.decode(encoding)

            row_start = start
            for row in csv.reader(lines(), **fmtparams):
                if row:
                    yield (_as_dict(fieldnames, row) if fieldnames is not None else row), row_start
                row_start = position

    def total() -> int:
        lines = _count_lines(path)
        return max(0, lines - 1) if header else lines

    return Enumerator(pairs, total)


def keyset_enumerator(fetch: Callable[[Any], Sequence[T]], *, key: Callable[[T], Any], cursor: Any,
                      pages: bool = False, total: int | None = None) -> Enumerator[Any]:
    """Rows from ``fetch(after)``, a page at a time, where ``after`` is the key of the last row seen (None first).

    ``fetch`` returns the rows whose key comes after ``after`` in key order (``WHERE id > %s ORDER BY id
    LIMIT 500``), and an empty page at the end; ``key(row)`` is the row's key, which must be JSON (it is
    the cursor). Each item is one row, or one whole page with ``pages=True``. ``total`` (if known) is the
    number of items, for progress.
    """

    def pairs() -> Iterator[tuple[Any, Any]]:
        after = cursor
        while True:
            page = list(fetch(after))
            if not page:
                return
            if pages:
                yield page, after
                after = key(page[-1])
                continue
            for row in page:
                yield row, after
                after = key(row)

    return Enumerator(pairs, lambda: total)


def _first_row(f: Any, encoding: str, fmtparams: dict[str, Any]) -> tuple[list[str] | None, int]:
    """The header row of an open binary file and the byte offset just after it."""
    position = 0

    def lines() -> Iterator[str]:
        nonlocal position
        for raw in iter(f.readline, b""):
            position += len(raw)
            yield raw.decode(encoding)

    for row in csv.reader(lines(), **fmtparams):
        if row:
            return row, position
    return None, position


def _as_dict(fieldnames: list[str], row: list[str]) -> dict[str, str | None]:
    """A row keyed by the header, as ``csv.DictReader`` makes it (missing fields None, extra ones dropped)."""
    return {name: row[i] if i < len(row) else None for i, name in enumerate(fieldnames)}


def _count_lines(path: str) -> int:
    """Lines in a file, counted in binary chunks (a last line without a newline counts too)."""
    count, last = 0, b"\n"
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK_BYTES):
            count += chunk.count(b"\n")
            last = chunk[-1:]
    return count + (last != b"\n")
