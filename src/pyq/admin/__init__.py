"""Admin subcommands of ``pyq``: read and change state in Redis (tables for people, ``--json`` for scripts).

Every command finds Redis through ``--redis-url`` or the group's ``-C`` config
(``ctx.obj``). Bad arguments print one line and exit 2; a Redis failure prints
one line and exits 1. The work itself is done by :mod:`pyq.api` and
:mod:`pyq.cron`; this module only parses, calls and prints.
"""

from __future__ import annotations

import click

from .batches import batches
from .cancel import cancel
from .limits import limits
from .operate import IMPORT_JOBS, cron, enqueue, processes, web
from .state import busy, dead, queue, queues, retry, scheduled, stats

__all__ = ["COMMANDS", "IMPORT_JOBS"]

#: Every admin subcommand; ``pyq.cli`` adds each to the ``pyq`` group.
COMMANDS: list[click.Command] = [stats, queues, queue, busy, processes, cron, enqueue, web, retry, dead, scheduled,
                                 cancel, batches, limits]
