"""The dashboard's pages: one module per page, each a ``render(ctx)`` function, listed in :data:`PAGES`.

Adding a page is one function and one line here: write ``render(ctx) -> str``
(or ``(title, body)``) in a new module, reading through :mod:`pyq.api` and
building markup with :mod:`pyq.web.render`, and append a :class:`Page`. Pages
with ``nav=True`` appear in the nav bar; ``prefix=True`` serves every path
under ``path + "/"`` (``ctx.path`` is then the rest, e.g. a queue's name).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..context import Ctx
from . import batches, busy, cron, job, limits, overview, processes, progress, queues, sets

Rendered = str | tuple[str, str]


@dataclass(frozen=True)
class Page:
    path: str
    title: str
    render: Callable[[Ctx], Rendered]
    nav: bool = True
    prefix: bool = False

    def show(self, ctx: Ctx) -> tuple[str, str]:
        """(title, body) of the page for this request."""
        shown = self.render(ctx)
        return (self.title, shown) if isinstance(shown, str) else shown


PAGES: list[Page] = [
    Page("/", "Overview", overview.render),
    Page("/queues", "Queues", queues.listing),
    Page("/queues", "Queue", queues.one, nav=False, prefix=True),
    Page("/busy", "Busy", busy.render),
    Page("/retries", "Retries", sets.retries),
    Page("/scheduled", "Scheduled", sets.scheduled),
    Page("/dead", "Dead", sets.dead),
    Page("/job", "Job", job.render, nav=False),
    Page("/cron", "Cron", cron.render),
    Page("/processes", "Processes", processes.render),
    Page("/batches", "Batches", batches.listing_page),
    Page("/batches", "Batch", batches.one, nav=False, prefix=True),
    Page("/limits", "Limits", limits.render),
    Page("/progress", "Progress", progress.render),
]
#: (path, label) of the nav bar, in order.
NAV = [(p.path, p.title) for p in PAGES if p.nav]


def find_page(path: str) -> tuple[Page, str] | None:
    """The page serving ``path`` and the rest of the path after a prefix page's own (else ``path``)."""
    for page in PAGES:
        if not page.prefix and path == page.path:
            return page, path
        if page.prefix and path.startswith(page.path + "/") and len(path) > len(page.path) + 1:
            return page, path[len(page.path) + 1:]
    return None
