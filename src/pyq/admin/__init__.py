"""Admin subcommands of ``pyq``: read and change state in Redis (tables for people, ``--json`` for scripts).

Every command finds Redis through ``--redis-url`` or the group's ``-C`` config
(``ctx.obj``). Bad arguments print one line and exit 2; a Redis failure prints
one line and exits 1. The work itself is done by :mod:`pyq.api` and
:mod:`pyq.cron`; this module only parses, calls and prints.
"""

from __future__ import annotations

from . import operate, state  # noqa: F401  (importing registers the commands on pyq's click group)
