"""Which top-level keys of a file are environment sections, and what other gems' sections get told.

Sidekiq merges the top-level key named after the environment over the rest and ignores every other
key it does not know. pyq refuses unknown keys instead, so a typo (``metric:``, ``crons:``) is never
taken for a section and dropped. A mapping-valued key that is not a setting is an environment section
when its name is a usual environment name (:data:`ENV_NAMES`), is the environment selected, or when it
holds at least one setting (``qa: {concurrency: 2}``); anything else is an unknown setting with a
suggestion. Keys of other gems (sidekiq-limit_fetch, sidekiq-failures, ...) get a message saying what
pyq does instead; sidekiq-scheduler's schedule is read (:mod:`pyq.config_scheduler`).
"""

from __future__ import annotations

import difflib
from typing import Any

from .config_scheduler import OPTIONS as SCHEDULER_KEYS
from .config_schema import SETTING_KEYS
from .errors import ConfigError

#: Names taken for environment sections whatever they hold (an empty ``production:`` included).
ENV_NAMES = frozenset({"development", "test", "staging", "production", "qa", "uat", "demo", "sandbox",
                       "preview", "ci"})
_LIMITS = "sidekiq-limit_fetch's queue limits are not supported"
#: Keys other gems read from sidekiq.yml, and what to do in pyq.
FOREIGN = {
    "limits": f"{_LIMITS}; serve the queue from a pool of its own whose processes x concurrency is the "
              "limit (`pyq -q NAME -P 1 -c N`) and leave it out of this pool's queues",
    "process_limits": f"{_LIMITS}; serve the queue from a pool of its own with `-c N` (`pyq -q NAME -c N`)",
    "global_limits": f"{_LIMITS}; serve the queue from a pool of its own (`pyq -q NAME -P 1 -c N`)",
    "blocking": "sidekiq-limit_fetch's blocking queues are not supported; the nearest is strict order: "
                "list the queues without weights, the blocking ones first",
    "cron_poll_interval": "sidekiq-cron's poll interval is fixed in pyq: the cron poller looks about every "
                          "30 s, sidekiq-cron's default; remove the key",
    "failures_max_count": "sidekiq-failures is not supported: failed jobs are in the retry and dead sets "
                          "(`pyq retry`, `pyq dead`, the dashboard); remove the key",
    "failures_default_mode": "sidekiq-failures is not supported: failed jobs are in the retry and dead sets "
                             "(`pyq retry`, `pyq dead`, the dashboard); remove the key",
}
#: Keys a settings mapping may hold besides the settings: sidekiq-scheduler's.
SCHEDULER = frozenset({"scheduler"}) | SCHEDULER_KEYS


def split(data: dict[str, Any], source: str, environment: str) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The top-level settings and every environment section (``name -> mapping``)."""
    base: dict[str, Any] = {}
    sections: dict[str, dict[str, Any]] = {}
    for key, value in data.items():
        if key in SETTING_KEYS or key in SCHEDULER or key in FOREIGN:
            base[key] = value
        elif is_section(key, value, environment):
            sections[key] = _section_mapping(value, f"{source}: {key}")
        else:
            raise ConfigError(unknown(f"{source}: {key}", key))
    return base, sections


def is_section(key: str, value: Any, environment: str) -> bool:
    """The rule above; a non-mapping value is never a section unless its name says so."""
    if key in ENV_NAMES or key == environment:
        return True
    return isinstance(value, dict) and any(k in SETTING_KEYS or k in SCHEDULER for k in value)


def unknown(where: str, key: str) -> str:
    """An unknown-setting message with the nearest setting, if one is near."""
    close = difflib.get_close_matches(key, sorted(SETTING_KEYS | {"scheduler", "schedule"}), n=1)
    return f"{where}: unknown setting" + (f"; did you mean {close[0]!r}?" if close else "")


def check_selected(sections: dict[str, Any], source: str, environment: str) -> None:
    """``-e NAME`` must name a section when the file has any (a flat file serves every environment)."""
    if sections and environment not in sections:
        raise ConfigError(f"{source}: -e {environment}: no such environment section; "
                          f"the file has {', '.join(sorted(sections))}")


def _section_mapping(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected a mapping of settings (an environment section), got {value!r}")
    return value
