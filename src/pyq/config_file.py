"""One config file read into a layer: ERB, YAML, ``:key:`` spelling, ``${VAR}``, sections, nested keys.

The text goes through :mod:`pyq.config_erb` first (as Sidekiq renders ERB before parsing), then YAML.
Every environment section is checked, the selected one is applied over the top level. The keys of the
others are checked, and their values too unless they read a ``${VAR}`` or the file holds ERB (those
variables may belong to the other environment only).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

import yaml

from . import config_checks as checks
from . import config_erb, config_scheduler, config_sections
from .config_schema import IGNORED, SCHEMA, TOP_LEVEL, WARNED
from .connection import redact
from .errors import ConfigError

log = logging.getLogger("pyq.config")

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")

Layer = dict[str, tuple[Any, str]]  # field -> (raw value, where it came from)


def file_layer(path: str, environment: str, explicit: bool, env: Mapping[str, str]) -> Layer:
    """The file's top level with the section of ``environment`` over it; every section checked."""
    data, rendered = read(path, env)
    base, sections = config_sections.split(data, path, environment)
    if explicit:
        config_sections.check_selected(sections, path, environment)
    layer = section_layer(base, path, "", env)
    for name, section in sections.items():
        if name == environment:
            layer.update(section_layer(section, path, f"{name}.", env))
        else:
            _check_unselected(section, path, f"{name}.", env, values=not rendered)
    return layer


def read(path: str, env: Mapping[str, str]) -> tuple[dict[str, Any], bool]:
    """The file as a mapping with ``:key:`` spelled ``key``, and whether ERB tags were evaluated."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the config file: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        rendered = config_erb.render(text, path, env)
        data = yaml.safe_load(rendered)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f"line {mark.line + 1}: " if mark is not None else ""
        raise ConfigError(redact(f"{path}: {line}invalid YAML: {getattr(exc, 'problem', None) or exc}")) from None
    if data is None:
        return {}, False
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of settings at the top level, got {type(data).__name__}")
    return _normalise(data, path, ""), rendered != text


def _normalise(node: Any, source: str, path: str) -> Any:
    """Sidekiq's ``:key:`` spelling becomes ``key`` in every mapping; a key given both ways is an error."""
    if isinstance(node, list):
        return [_normalise(item, source, f"{path}[{i}]") for i, item in enumerate(node)]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        name = key[1:] if isinstance(key, str) and key.startswith(":") else key
        where = f"{path}.{name}" if path else str(name)
        if not isinstance(name, str):
            raise ConfigError(f"{source}: {where}: expected a string key, got {name!r}")
        if name in out:
            raise ConfigError(f"{source}: {where}: given twice (as {name!r} and ':{name}')")
        out[name] = _normalise(value, source, where)
    return out


def _expand(node: Any, env: Mapping[str, str], where: str) -> Any:
    """``${VAR}`` / ``${VAR:-default}`` replaced in every string below ``node``."""
    if isinstance(node, str):
        return _VAR.sub(lambda m: _lookup(m, env, where), node)
    if isinstance(node, list):
        return [_expand(item, env, f"{where}[{i}]") for i, item in enumerate(node)]
    if isinstance(node, dict):
        return {key: _expand(value, env, f"{where}.{key}") for key, value in node.items()}
    return node


def _lookup(match: re.Match[str], env: Mapping[str, str], where: str) -> str:
    name, default = match.group(1), match.group(2)
    value = env.get(name)
    if value or (value is not None and default is None):
        return value
    if default is not None:
        return default
    raise ConfigError(f"{where}: environment variable {name} is not set (write ${{{name}:-default}} for a default)")


def _reads_a_variable(node: Any) -> bool:
    if isinstance(node, str):
        return _VAR.search(node) is not None
    values = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
    return any(_reads_a_variable(item) for item in values)


def _check_unselected(section: dict[str, Any], source: str, prefix: str, env: Mapping[str, str], *,
                      values: bool) -> None:
    """Keys always; values unless they read a variable (``${VAR}``, or any value once ERB was evaluated)."""
    plain = {key: value for key, value in section.items() if values and not _reads_a_variable(value)}
    for key in set(section) - set(plain):
        if key not in config_sections.SETTING_KEYS and key not in config_sections.SCHEDULER:
            raise ConfigError(config_sections.unknown(f"{source}: {prefix}{key}", key))
    for name, (value, where) in section_layer(plain, source, prefix, env).items():
        SCHEMA[name](value, where)


def section_layer(data: dict[str, Any], source: str, prefix: str, env: Mapping[str, str]) -> Layer:
    """One settings mapping as a layer; ``prefix`` is ``""`` or ``"production."``."""
    out: Layer = {}
    for key, value in data.items():
        where = f"{source}: {prefix}{key}"
        if key in config_sections.SCHEDULER:
            continue
        value = _expand(value, env, where)
        if key == "metrics":
            out.update(_metrics(value, where))
        else:
            _setting(out, key, value, where)
    legacy = {key: data[key] for key in data if key in config_scheduler.OPTIONS}
    _add_schedule(out, legacy, f"{source}: {prefix}", env)
    if "scheduler" in data:
        where = f"{source}: {prefix}scheduler"
        _add_schedule(out, _scheduler_options(data["scheduler"], where), where + ".", env)
    return out


def _setting(out: Layer, key: str, value: Any, where: str) -> None:
    if key == "capsules":
        raise ConfigError(f"{where}: capsules are not supported; run one pyq per queue group instead")
    if key in config_sections.FOREIGN:
        raise ConfigError(f"{where}: {config_sections.FOREIGN[key]}")
    if key in TOP_LEVEL:
        name = TOP_LEVEL[key]
        if name in out:
            raise ConfigError(f"{where}: {key} is already given in this section")
        out[name] = (value, where)
    elif key in WARNED:
        log.warning("%s: %s", where, WARNED[key].format(value=value))
    elif key not in IGNORED:
        raise ConfigError(config_sections.unknown(where, key))


def _scheduler_options(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        checks.fail(where, "a mapping of sidekiq-scheduler options (schedule: ...)", value)
    return value


def _add_schedule(out: Layer, options: dict[str, Any], where: str, env: Mapping[str, str]) -> None:
    """sidekiq-scheduler's entries joined to this mapping's ``cron:``; a name in both is an error."""
    entries = config_scheduler.read_options(_expand(options, env, where.rstrip(". ")), where) if options else None
    if entries is None:
        return
    cron, cron_where = out.get("cron", ({}, where + "schedule"))
    if not isinstance(cron, dict):
        return  # the cron check names the bad value
    for name in sorted(set(cron) & set(entries)):
        raise ConfigError(f"{where}schedule.{name}: a cron schedule of that name is already defined")
    out["cron"] = ({**cron, **entries}, cron_where)


def _metrics(value: Any, where: str) -> Layer:
    if value is None:
        return {}
    if not isinstance(value, dict):
        checks.fail(where, "a mapping with port and host", value)
    unknown = sorted(set(value) - {"port", "host"})
    if unknown:
        raise ConfigError(f"{where}.{unknown[0]}: unknown setting (metrics takes port and host)")
    return {f"metrics_{key}": (item, f"{where}.{key}") for key, item in value.items()}
