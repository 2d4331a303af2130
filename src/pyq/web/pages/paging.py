"""Paging and filtering shared by the list pages: page numbers from the query, in-memory lists."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from ..context import Ctx

T = TypeVar("T")
#: Rows per page of every list.
PAGE_SIZE = 25


def span(ctx: Ctx, total: int) -> tuple[int, int, int]:
    """(page, pages, index of its first row) for ``total`` rows; ``?page=`` is 1-based and clamped."""
    pages = max(1, -(-total // PAGE_SIZE))
    page = ctx.int_arg("page", 1, 1, pages)
    return page, pages, (page - 1) * PAGE_SIZE


def in_memory(ctx: Ctx, rows: Sequence[T], words: Callable[[T], str]) -> tuple[list[T], int, int]:
    """Filter (``?q=`` substring of ``words(row)``) and page a list already in memory (small lists only:
    processes, busy threads, cron entries); returns (this page's rows, page, pages)."""
    needle = ctx.arg("q")
    kept = [r for r in rows if needle in words(r)] if needle else list(rows)
    page, pages, start = span(ctx, len(kept))
    return kept[start:start + PAGE_SIZE], page, pages
