"""pyq.config: YAML files (pyq and Sidekiq style), environment sections, ${VAR}, PYQ_* and overrides."""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyq.config import Config, QueueWeight, load, parse_queue
from pyq.config_schema import TOP_LEVEL, file_key
from pyq.connection import connect
from pyq.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = Path(__file__).resolve().parent / "configs"


def cfg(name: str) -> str:
    return str(CONFIGS / name)


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "queue.yml"
    path.write_text(text)
    return str(path)


# --- files --------------------------------------------------------------------------------------------

def test_empty_file_and_no_file_give_the_defaults() -> None:
    assert load(cfg("empty.yml"), env={}) == Config(source=cfg("empty.yml"))
    assert load(env={}) == Config()


def test_shipped_queue_yml_loads_from_the_project_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    config = load("config/queue.yml", env={})
    assert config.redis_url == "redis://localhost:6379/0"
    assert (config.concurrency, config.processes) == (10, 2)
    assert config.queues == (QueueWeight("critical", 3), QueueWeight("default", 2), QueueWeight("low", 1))
    assert config.require == ("examples.jobs",)
    assert config.source == "config/queue.yml"


def test_shipped_queue_yml_lists_every_key_with_its_default() -> None:
    # Given the shipped file's keys, flattened the way load() reads them
    data = yaml.safe_load((ROOT / "config/queue.yml").read_text())
    keys = set(data) - {"production", "metrics"} | {f"metrics.{k}" for k in data["metrics"]}
    # Then every settable field is there, and the ones not chosen for the example hold the default
    settable = {f.name for f in dataclasses.fields(Config)} - {"environment", "source"}
    assert keys == {file_key(name) for name in settable}
    config = load(ROOT / "config/queue.yml", env={"REDIS_URL": "redis://elsewhere:6379/1"})
    chosen = {"redis_url", "processes", "queues", "require", "source"}
    for f in dataclasses.fields(Config):
        if f.name not in chosen:
            assert getattr(config, f.name) == getattr(Config(), f.name), f.name
    assert config.redis_url == "redis://elsewhere:6379/1"


def test_sidekiq_style_file_with_colon_keys_and_mixed_queue_spellings() -> None:
    config = load(cfg("sidekiq.yml"), env={})
    assert config.concurrency == 5
    assert config.timeout_s == 8.0
    assert config.strict is False
    assert config.dead_timeout_s == 3600
    assert config.queues == (QueueWeight("critical", 3), QueueWeight("low", 1), QueueWeight("default", 0))
    assert config.queue_names() == ["critical", "low", "default"]
    assert (config.metrics_port, config.metrics_host) == (9100, "0.0.0.0")
    assert config.labels == ("reports", "eu")


def test_sidekiq_environment_section_merges_nested_metrics() -> None:
    config = load(cfg("sidekiq.yml"), environment="production", env={})
    assert config.concurrency == 20
    assert (config.metrics_port, config.metrics_host) == (9100, "127.0.0.1")
    assert config.environment == "production"


@pytest.mark.ruby
def test_shipped_sidekiq_yml_reads_the_same_in_ruby_sidekiq(tmp_path: Path) -> None:
    # Given Sidekiq's own parser (the CLI's parse_config) on the shipped file
    if shutil.which("ruby") is None:
        pytest.skip("ruby is not installed")
    script = tmp_path / "parse.rb"
    script.write_text('require "json"\nrequire "sidekiq/cli"\ncli = Sidekiq::CLI.instance\n'
                      'cli.environment = ARGV[1]\nputs JSON.generate(cli.send(:parse_config, ARGV[0]))\n')
    out = subprocess.run(["ruby", str(script), str(ROOT / "config/sidekiq.yml"), "production"],
                         capture_output=True, text=True, timeout=30, check=True).stdout
    ruby = json.loads(out)
    # Then pyq reads the same concurrency and the same weights (Sidekiq repeats a queue `weight` times)
    config = load(ROOT / "config/sidekiq.yml", environment="production", env={})
    assert ruby["concurrency"] == config.concurrency == 20
    assert ruby["queues"] == [q.name for q in config.queues for _ in range(max(q.weight, 1))]
    assert (ruby["tag"], ruby["labels"]) == (config.tag, list(config.labels))


# --- environment sections ---------------------------------------------------------------------------

@pytest.mark.parametrize(("given", "env", "expected"), [
    (None, {}, "development"),
    ("production", {}, "production"),
    (None, {"PYQ_ENV": "production", "APP_ENV": "staging"}, "production"),
    (None, {"APP_ENV": "production", "RAILS_ENV": "staging"}, "production"),
    (None, {"RAILS_ENV": "production", "RACK_ENV": "staging"}, "production"),
    (None, {"RACK_ENV": "production"}, "production"),
    ("production", {"PYQ_ENV": "staging"}, "production"),
])
def test_environment_is_chosen_by_argument_then_pyq_env_then_sidekiqs_order_then_development(
        given: str | None, env: dict[str, str], expected: str | None) -> None:
    config = load(cfg("environments.yml"), environment=given, env=env)
    assert config.environment == expected
    assert config.concurrency == (30 if expected == "production" else 4)


def test_environment_section_overrides_the_base_and_other_sections_are_ignored() -> None:
    # The staging section refers to an unset variable: it must not even be expanded
    config = load(cfg("environments.yml"), environment="production", env={})
    assert (config.concurrency, config.log_level) == (30, "warning")
    assert config.queues == (QueueWeight("critical", 5), QueueWeight("default", 0))


def test_environment_from_a_variable_without_a_section_uses_the_base() -> None:
    assert load(cfg("environments.yml"), env={"RAILS_ENV": "test"}).concurrency == 4


@pytest.mark.parametrize("environment", [None, "production"])
def test_error_inside_any_environment_section_names_the_section(tmp_path: Path, environment: str | None) -> None:
    # Given a bad value in the production section, and development selected or production
    path = write(tmp_path, "concurrency: 2\nproduction:\n  concurrency: lots\n")
    with pytest.raises(ConfigError, match=r"queue\.yml: production\.concurrency: expected a positive integer"):
        load(path, environment=environment, env={})


# --- ${VAR} expansion -------------------------------------------------------------------------------

def test_variables_expand_with_and_without_defaults_before_types_are_checked() -> None:
    config = load(cfg("expand.yml"), env={"CFG_TEST_WORKERS": "7", "CFG_TEST_APP": "shop"})
    assert config.redis_url == "redis://localhost:6379/3"
    assert config.concurrency == 7
    assert config.tag == "shop-eu"
    assert config.require == ("shop.jobs",)


def test_empty_variable_takes_the_default_like_the_shell() -> None:
    env = {"CFG_TEST_REDIS": "", "CFG_TEST_APP": "", "CFG_TEST_ZONE": "us"}
    config = load(cfg("expand.yml"), env=env)
    assert config.redis_url == "redis://localhost:6379/3"
    assert config.tag == "-us"


def test_unset_variable_without_default_names_variable_file_and_key() -> None:
    with pytest.raises(ConfigError) as err:
        load(cfg("unset_variable.yml"), env={})
    message = str(err.value)
    assert "unset_variable.yml: metrics.host:" in message
    assert "CFG_TEST_UNSET_HOST is not set" in message


# --- PYQ_* variables and overrides --------------------------------------------------------------------

def test_pyq_variables_override_the_file_and_its_environment_section() -> None:
    env = {"PYQ_CONCURRENCY": "12", "PYQ_PROCESSES": "3", "PYQ_TIMEOUT": "2.5", "PYQ_LOG_LEVEL": "DEBUG",
           "PYQ_NAMESPACE": "shop", "PYQ_QUEUES": "critical,3 default;low,1", "PYQ_STRICT": "yes",
           "PYQ_METRICS_PORT": "9200", "PYQ_REQUIRE": "a.jobs, b.jobs", "PYQ_PREFETCH": ""}
    config = load(cfg("environments.yml"), environment="production", env=env)
    assert (config.concurrency, config.processes, config.timeout_s) == (12, 3, 2.5)
    assert (config.log_level, config.namespace, config.strict) == ("debug", "shop", True)
    assert config.queues == (QueueWeight("critical", 3), QueueWeight("default", 0), QueueWeight("low", 1))
    assert config.metrics_port == 9200
    assert config.require == ("a.jobs", "b.jobs")
    assert config.prefetch is None


def test_redis_url_comes_from_pyq_redis_url_then_file_then_redis_url(tmp_path: Path) -> None:
    with_url = write(tmp_path, "redis_url: redis://file:6379/0\n")
    assert load(env={"REDIS_URL": "redis://plain:1/0"}).redis_url == "redis://plain:1/0"
    assert load(with_url, env={"REDIS_URL": "redis://plain:1/0"}).redis_url == "redis://file:6379/0"
    env = {"REDIS_URL": "redis://plain:1/0", "PYQ_REDIS_URL": "rediss://pyq:2/0"}
    assert load(with_url, env=env).redis_url == "rediss://pyq:2/0"


def test_overrides_win_over_everything_and_none_means_not_given() -> None:
    env = {"PYQ_CONCURRENCY": "12", "PYQ_LOG_LEVEL": "error"}
    config = load(cfg("environments.yml"), environment="production", env=env,
                  overrides={"concurrency": 2, "log_level": None, "queues": ["urgent,4", "default"]})
    assert config.concurrency == 2
    assert config.log_level == "error"
    assert config.queues == (QueueWeight("urgent", 4), QueueWeight("default", 0))


def test_overrides_take_the_command_line_shapes() -> None:
    # Given what the CLI builds from repeated -q / -r flags: tuples, queues already parsed
    queues = (parse_queue("critical,2", "-q"), parse_queue("low", "-q"))
    config = load(env={}, overrides={"queues": queues, "require": ("app.jobs", "more.py"), "timeout": 0})
    assert config.queues == (QueueWeight("critical", 2), QueueWeight("low", 0))
    assert config.require == ("app.jobs", "more.py")
    assert config.timeout_s == 0.0


def test_unknown_override_is_an_error() -> None:
    with pytest.raises(ConfigError, match="overrides: concurency: unknown setting"):
        load(env={}, overrides={"concurency": 3})


def test_loaded_redis_url_reaches_the_real_server(redis_url: str) -> None:
    config = load(env={"PYQ_REDIS_URL": redis_url})
    conn = connect(config.redis_url)
    try:
        assert conn.ping()
    finally:
        conn.close()


# --- file-level errors --------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "pattern"), [
    ("missing.yml", r"missing\.yml: cannot read the config file: No such file"),
    ("bad_syntax.yml", r"bad_syntax\.yml: line \d+: invalid YAML"),
    ("top_level_list.yml", r"top_level_list\.yml: expected a mapping of settings at the top level, got list"),
    ("unknown_key.yml", r"unknown_key\.yml: concurency: unknown setting; did you mean 'concurrency'\?"),
    ("capsules.yml", r"capsules\.yml: capsules: capsules are not supported"),
    ("duplicate_queue.yml", r"duplicate_queue\.yml: queues: queue 'default' is listed twice"),
    ("both_spellings.yml", r"both_spellings\.yml: concurrency: given twice"),
    ("metrics_unknown.yml", r"metrics_unknown\.yml: metrics\.path: unknown setting"),
])
def test_file_problems_name_the_file_and_key(name: str, pattern: str) -> None:
    with pytest.raises(ConfigError, match=pattern):
        load(cfg(name), env={})


def test_yaml_syntax_error_reports_the_line() -> None:
    with pytest.raises(ConfigError, match=r"line 4: invalid YAML"):
        load(cfg("bad_syntax.yml"), env={})


def test_pidfile_and_logfile_are_ignored_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="pyq.config"):
        config = load(cfg("pidfile.yml"), env={})
    assert config.concurrency == 2
    assert [r.getMessage().split(": ")[1] for r in caplog.records] == ["pidfile", "logfile"]


def test_cron_section_is_kept_raw_and_frozen() -> None:
    config = load(cfg("cron.yml"), env={})
    assert config.cron["nightly_report"]["class"] == "Reports::Nightly"
    assert config.cron["nightly_report"]["args"] == [1, "two"]
    assert (config.schedule_file, config.sidekiq_cron_version) == ("config/schedule.yml", 1)
    with pytest.raises(TypeError):
        config.cron["other"] = {}  # type: ignore[index]


# --- values -----------------------------------------------------------------------------------------------

INVALID = [
    ("concurrency", "ten", "a positive integer"),
    ("concurrency", 0, "a positive integer"),
    ("concurrency", 2.5, "a positive integer"),
    ("concurrency", True, "a positive integer"),
    ("processes", -1, "a positive integer"),
    ("timeout", -1, "a number of seconds >= 0"),
    ("timeout", "soon", "a number of seconds >= 0"),
    ("timeout", ".nan", "a number of seconds >= 0"),
    ("max_retries", -2, "an integer >= 0"),
    ("dead_max_jobs", "many", "an integer >= 0"),
    ("dead_timeout", 1.5, "an integer >= 0"),
    ("dead_timeout_in_seconds", "x", "an integer >= 0"),
    ("strict", "maybe", "true or false"),
    ("execution_metrics", 2, "true or false"),
    ("log_level", "verbose", "one of debug, info, warning, error"),
    ("log_format", "xml", "one of text, json"),
    ("time_format", "seconds", "one of float, ms"),
    ("redis_url", "http://localhost:6379", "a URL starting with redis://"),
    ("redis_url", 6379, "a URL starting with redis://"),
    ("namespace", "my app", "a key prefix"),
    ("namespace", "app:", "a key prefix"),
    ("queues", [], "a non-empty list of queues"),
    ("queues", {"default": 1}, "a non-empty list of queues"),
    ("require", [1, 2], "a list of strings"),
    ("labels", {"a": 1}, "a list of strings"),
    ("cron", ["a"], "a mapping"),
    ("schedule_file", 5, "a string"),
    ("sidekiq_cron_version", 3, "1 or 2"),
    ("average_scheduled_poll_interval", 0, "a positive number of seconds"),
    ("poll_interval_average", -5, "a positive number of seconds"),
    ("heartbeat_interval", "fast", "a positive number of seconds"),
    ("recovery_timeout", 0, "a positive number of seconds"),
    ("fetch_wait", [1], "a positive number of seconds"),
    ("prefetch", -1, "an integer >= 0"),
    ("tag", ["a"], "a string"),
    ("metrics", 9100, "a mapping with port and host"),
    ("metrics.port", 70000, "a port number"),
    ("metrics.port", "http", "a port number"),
    ("metrics.host", 127, "a string"),
]


@pytest.mark.parametrize(("key", "value", "expected"), INVALID, ids=[f"{k}={v!r}" for k, v, _ in INVALID])
@pytest.mark.parametrize("colon", [False, True], ids=["plain", "sidekiq"])
def test_invalid_value_names_file_key_expected_and_got(tmp_path: Path, key: str, value: Any, expected: str,
                                                       colon: bool) -> None:
    # Given one bad value, spelled `key:` or `:key:`, possibly nested under metrics
    parts = key.split(".")
    data: Any = value
    for part in reversed(parts):
        data = {f":{part}" if colon else part: data}
    path = write(tmp_path, yaml.safe_dump(data))
    # Then the error names the file, the dotted key, what was expected and what was given
    with pytest.raises(ConfigError) as err:
        load(path, env={})
    assert str(err.value).startswith(f"{path}: {key}")
    assert f"expected {expected}" in str(err.value)


@pytest.mark.parametrize(("var", "value"), [("PYQ_CONCURRENCY", "ten"), ("PYQ_TIMEOUT", "-3"),
                                            ("PYQ_QUEUES", "a,b"), ("PYQ_METRICS_PORT", "0"),
                                            ("PYQ_LOG_LEVEL", "loud"), ("PYQ_EXECUTION_METRICS", "perhaps")])
def test_invalid_pyq_variable_names_the_variable(var: str, value: str) -> None:
    with pytest.raises(ConfigError, match=rf"^{var}(\[\d\])?: expected .*, got '{value}'"):
        load(env={var: value})


SECRET_URL = "http://admin:hunter2secret@cache.internal:6379/0"


@pytest.mark.parametrize("source", ["file", "env", "override", "queue"])
def test_passwords_never_appear_in_errors(source: str) -> None:
    with pytest.raises(ConfigError) as err:
        if source == "file":
            load(cfg("bad_password_url.yml"), env={})
        elif source == "env":
            load(env={"PYQ_REDIS_URL": SECRET_URL})
        elif source == "override":
            load(env={}, overrides={"redis_url": SECRET_URL.replace("http", "redis") + " trailing"})
        else:
            load(env={"PYQ_QUEUES": "default " + SECRET_URL})
    assert "hunter2secret" not in str(err.value)
    assert "admin:***@" in str(err.value)


def test_redacted_url_hides_the_password() -> None:
    config = load(env={"PYQ_REDIS_URL": "redis://user:topsecret@host:6379/0"})
    assert "topsecret" not in config.redacted_url()
    assert config.redis_url.endswith("topsecret@host:6379/0")


@pytest.mark.parametrize("url", ["redis://h:6379/0", "rediss://h:6380/1", "unix:///tmp/redis.sock",
                                 "redis+sentinel://:pw@s1:26379,s2:26379/mymaster/0"])
def test_every_supported_url_scheme_is_accepted(url: str) -> None:
    assert load(env={}, overrides={"redis_url": url}).redis_url == url


# --- parse_queue ------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("item", "expected"), [
    ("default", QueueWeight("default", 0)),
    ("low,1", QueueWeight("low", 1)),
    (" low , 4 ", QueueWeight("low", 4)),
    (["critical", 3], QueueWeight("critical", 3)),
    (["critical"], QueueWeight("critical", 0)),
    (("a:b.c-d_e", "2"), QueueWeight("a:b.c-d_e", 2)),
    ({"mailers": 2}, QueueWeight("mailers", 2)),
    (QueueWeight("x", 1), QueueWeight("x", 1)),
])
def test_parse_queue_accepts_every_spelling(item: Any, expected: QueueWeight) -> None:
    assert parse_queue(item, "-q") == expected


@pytest.mark.parametrize("item", ["", "has space", "a,b", "a,-1", "a,1,2", ["a", 1, 2], [3, 1], ["a", True],
                                  {"a": 1, "b": 2}, None, 5, "émoji"])
def test_parse_queue_rejects_bad_items_naming_where(item: Any) -> None:
    with pytest.raises(ConfigError, match=r"^-q: expected "):
        parse_queue(item, "-q")


# --- Config --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("environment", [None, "production"])
def test_keys_without_values_take_empty_values(environment: str | None) -> None:
    config = load(cfg("nulls.yml"), environment=environment, env={})
    assert config == Config(source=cfg("nulls.yml"), environment=environment or "development")
    assert (config.require, config.labels, dict(config.cron)) == ((), (), {})


def test_config_is_hashable_despite_the_cron_mapping() -> None:
    assert hash(load(cfg("cron.yml"), env={})) == hash(load(cfg("cron.yml"), env={}))


def test_config_is_frozen_and_replace_returns_a_copy() -> None:
    config = Config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.concurrency = 3  # type: ignore[misc]
    changed = config.replace(concurrency=3)
    assert (config.concurrency, changed.concurrency) == (10, 3)


# --- property: any valid mapping round-trips through YAML --------------------------------------------

_names = st.from_regex(r"[A-Za-z0-9_:.\-]{1,12}", fullmatch=True)
_words = st.from_regex(r"[a-z][a-z0-9_.]{0,10}", fullmatch=True)
_seconds = st.floats(min_value=0.001, max_value=1e6, allow_nan=False, allow_infinity=False)

VALID = st.fixed_dictionaries({}, optional={
    "concurrency": st.integers(1, 10_000), "processes": st.integers(1, 64),
    "queues": st.lists(st.tuples(_names, st.integers(0, 100)), min_size=1, max_size=6,
                       unique_by=lambda q: q[0]),
    "strict": st.none() | st.booleans(), "timeout": st.floats(0, 1e6, allow_nan=False),
    "max_retries": st.integers(0, 1000), "dead_max_jobs": st.integers(0, 10**9),
    "dead_timeout": st.integers(0, 10**10), "require": st.lists(_words, max_size=4),
    "namespace": st.just("") | _words, "tag": _words, "labels": st.lists(_words, max_size=3),
    "log_level": st.sampled_from(["debug", "info", "warning", "error"]),
    "log_format": st.sampled_from(["text", "json"]), "time_format": st.sampled_from(["float", "ms"]),
    "execution_metrics": st.booleans(), "sidekiq_cron_version": st.sampled_from([1, 2]),
    "heartbeat_interval": _seconds, "recovery_timeout": _seconds, "fetch_wait": _seconds,
    "average_scheduled_poll_interval": _seconds, "poll_interval_average": st.none() | _seconds,
    "prefetch": st.none() | st.integers(0, 1000),
    "metrics": st.fixed_dictionaries({"port": st.integers(1, 65535), "host": st.sampled_from(["::", "127.0.0.1"])}),
})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=VALID, colon=st.booleans())
def test_any_valid_mapping_round_trips_through_yaml(data: dict[str, Any], colon: bool) -> None:
    text = yaml.safe_dump({(f":{k}" if colon else k): v for k, v in data.items()})
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "queue.yml"
        path.write_text(text)
        config = load(str(path), env={})
    expected = dict(data)
    if "queues" in expected:
        expected["queues"] = tuple(QueueWeight(name, weight) for name, weight in expected["queues"])
    for key in ("require", "labels"):
        if key in expected:
            expected[key] = tuple(expected[key])
    metrics = expected.pop("metrics", None)
    if metrics:
        expected.update(metrics_port=metrics["port"], metrics_host=metrics["host"])
    fields = {TOP_LEVEL.get(key, key): value for key, value in expected.items()}
    assert config == Config(**fields, source=str(path))


@pytest.mark.parametrize("url", ["redis+sentinel://:pw@/mymaster", "redis+sentinel://127.0.0.1:26379",
                                 "redis+sentinel://127.0.0.1:26379/"])
def test_sentinel_url_needs_hosts_and_a_service_name(url):
    with pytest.raises(ConfigError, match="Sentinel URL") as err:
        load(None, overrides={"redis_url": url})
    assert "pw" not in str(err.value)
