"""A job's options: which travel in the payload, which stay in Python, their checks, and hook calls.

Sidekiq options travel inside the payload so Ruby tools see them; Python-only policy (failure
rules, hooks) stays in the definition. Both are checked when the job is defined, so a typo fails
at import time rather than on the first failure in production.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from ..keys import QUEUE_NAME_RULE, is_queue_name
from ..priority import PRIORITY_MAX, PRIORITY_MIN, is_priority
from ..retry import DEFAULT_ATTEMPTS, DEFAULT_WAIT_S, WAIT_ALGORITHMS, is_seconds

#: ``check(options, name)`` for payload options another package owns (the ``lock*`` fields of unique
#: jobs); it raises TypeError or ValueError. ``pyq/__init__.py`` adds them: the job model imports no feature.
OptionCheck = Callable[[Mapping[str, Any], str], None]
_option_checks: list[OptionCheck] = []
_policy_checks: list[OptionCheck] = []

#: Options copied into every payload when set (Sidekiq's ``sidekiq_options`` names).
PAYLOAD_OPTIONS = (
    "queue", "retry", "backtrace", "tags", "retry_queue", "dead", "retry_for", "timeout",
    "lock", "lock_ttl", "lock_timeout", "on_conflict", "unique_across_queues", "unique_across_workers",
    "result_ttl", "priority",
)
#: Options that shape behaviour in pyq only and never enter the payload.
POLICY_OPTIONS = (
    "retry_on", "discard_on", "retry_in", "retries_exhausted", "after_discard", "lock_args",
    "before_perform", "after_perform", "around_perform", "limits", "limits_concurrency",
)
#: Policy options a ``pyq.Job`` class may define as methods (looked up on the instance when it runs).
HOOKS = ("retry_in", "retries_exhausted", "after_discard", "before_perform", "after_perform",
         "around_perform", "lock_args")


def split_options(options: Mapping[str, Any], name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(payload options with ``queue`` defaulted, policy); unset (None) options are dropped."""
    unknown = set(options) - set(PAYLOAD_OPTIONS) - set(POLICY_OPTIONS)
    if unknown:
        raise TypeError(f"unknown job option(s) for {name}: {', '.join(sorted(unknown))}")
    sent = {k: v for k, v in options.items() if k in PAYLOAD_OPTIONS and v is not None}
    sent.setdefault("queue", "default")
    check_payload_options(sent, name)
    policy = {k: v for k, v in options.items() if k in POLICY_OPTIONS and v is not None}
    check_policy(policy, name)
    return sent, policy


def add_option_check(check: OptionCheck, *, policy: bool = False) -> None:
    """Run ``check`` on every job's payload options when it is defined (and on ``set(...)`` overrides);
    with ``policy=True``, on its policy options (the Python-only ones) when it is defined."""
    checks = _policy_checks if policy else _option_checks
    if check not in checks:
        checks.append(check)


def check_payload_options(sent: Mapping[str, Any], name: str) -> None:
    """Refuse payload options no worker could honour (``retry="five"``, an unknown lock), as TypeError."""
    for key, value in sent.items():
        rule = _PAYLOAD_RULES.get(key)
        if rule is not None and not rule[0](value):
            raise TypeError(f"{name}: {key} must be {rule[1]}, got {value!r}")
    for check in _option_checks:
        try:
            check(sent, name)
        except ValueError as exc:
            raise TypeError(str(exc)) from None


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


#: Sidekiq payload option -> (test, what it must be).
_PAYLOAD_RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "queue": (is_queue_name, f"a queue name ({QUEUE_NAME_RULE})"),
    "retry_queue": (is_queue_name, f"a queue name ({QUEUE_NAME_RULE})"),
    "retry": (lambda v: isinstance(v, bool) or _count(v), "True, False or a number of retries >= 0"),
    "backtrace": (lambda v: isinstance(v, bool) or _count(v), "True, False or a number of lines >= 0"),
    "dead": (lambda v: isinstance(v, bool), "True or False"),
    "retry_for": (is_seconds, "a number of seconds >= 0"),
    "result_ttl": (lambda v: is_seconds(v) and v >= 1, "a number of seconds >= 1"),
    "timeout": (lambda v: is_seconds(v) and v > 0, "a number of seconds > 0"),
    "priority": (is_priority, f"an int from {PRIORITY_MIN} to {PRIORITY_MAX} (higher runs first)"),
    "tags": (lambda v: isinstance(v, (list, tuple)) and all(isinstance(t, str) for t in v), "a list of strings"),
}


def discard_classes(discard_on: Any) -> tuple[Any, ...]:
    """``discard_on`` as a tuple: it takes one exception class or a list/tuple of them."""
    return tuple(discard_on) if isinstance(discard_on, (tuple, list)) else (discard_on,)


def check_policy(policy: Mapping[str, Any], name: str) -> None:
    """Refuse malformed ``retry_on`` / ``discard_on`` options when the job is defined."""
    for cls in discard_classes(policy.get("discard_on", ())):
        if not (isinstance(cls, type) and issubclass(cls, BaseException)):
            raise TypeError(f"{name}: discard_on takes exception classes, got {cls!r}")
    for cls, rule in dict(policy.get("retry_on", {})).items():
        if not (isinstance(cls, type) and issubclass(cls, BaseException)):
            raise TypeError(f"{name}: retry_on keys must be exception classes, got {cls!r}")
        _check_rule(name, cls, rule)
    for check in _policy_checks:
        check(policy, name)


def _check_rule(name: str, cls: type, rule: Any) -> None:
    if not isinstance(rule, Mapping) or set(rule) - {"attempts", "wait"}:
        raise TypeError(f"{name}: retry_on[{cls.__name__}] must be a dict with 'attempts' and/or 'wait'")
    attempts = rule.get("attempts", DEFAULT_ATTEMPTS)
    if attempts != "unlimited" and (isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1):
        raise TypeError(f"{name}: retry_on[{cls.__name__}] attempts must be an int >= 1 or 'unlimited'")
    wait = rule.get("wait", DEFAULT_WAIT_S)
    if not (callable(wait) or wait in WAIT_ALGORITHMS or is_seconds(wait)):
        raise TypeError(f"{name}: retry_on[{cls.__name__}] wait must be seconds, 'polynomial', "
                        f"'exponential' or a callable(count, exc), got {wait!r}")


def call_hook(hook: Callable[..., Any], *args: Any) -> Any:
    """Call ``hook`` with as many of ``args`` as it accepts (``retry_in(count, exc)`` works too)."""
    try:
        params = inspect.signature(hook).parameters.values()
    except (TypeError, ValueError):
        return hook(*args)
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return hook(*args)
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return hook(*args[: len(positional)])
