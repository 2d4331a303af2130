"""No config key is silently ignored: environment sections, -e, other gems' keys and sidekiq-scheduler.

Errors are checked through the real CLI (``python -m pyq -C FILE``: exit 2, the message on stderr) and
through :func:`pyq.config.load` for the values read.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from pool import running_pool, wait_until
from pyq.config import load
from pyq.config_scheduler import every_to_cron
from pyq.config_sections import FOREIGN
from pyq.cron import CronStore, parse_schedule
from pyq.errors import ConfigError
from pyq.keys import Keys

CONFIGS = Path(__file__).resolve().parent / "configs"


def cfg(name: str) -> str:
    return str(CONFIGS / name)


def pyq_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m pyq ARGS``; a config that loads by mistake would start a pool, so it is time-bounded."""
    return subprocess.run([sys.executable, "-m", "pyq", *args], capture_output=True, text=True, timeout=30,
                          env={**os.environ, **(env or {})})


def refused(name: str, *args: str, env: dict[str, str] | None = None) -> str:
    """The stderr of ``pyq -C configs/NAME ARGS``, which must exit 2."""
    done = pyq_cli("-C", cfg(name), *args, env=env)
    assert done.returncode == 2, done.stderr
    return done.stderr


# --- unknown keys, whatever their value -------------------------------------------------------------------

@pytest.mark.parametrize(("name", "message"), [
    ("metric_typo.yml", "metric: unknown setting; did you mean 'metrics'?"),
    ("crons_typo.yml", "crons: unknown setting; did you mean 'cron'?"),
    ("section_typo.yml", "qa.concurency: unknown setting; did you mean 'concurrency'?"),
])
def test_cli_refuses_a_mapping_that_is_neither_a_setting_nor_a_clean_section(name: str, message: str) -> None:
    assert f"pyq: {cfg(name)}: {message}" in refused(name)


def test_a_custom_section_holding_settings_is_a_section(tmp_path: Path) -> None:
    path = tmp_path / "sidekiq.yml"
    path.write_text("concurrency: 2\nqa:\n  concurrency: 7\n")
    assert load(path, env={}).concurrency == 2
    assert load(path, environment="qa", env={}).concurrency == 7


def test_usual_environment_names_are_sections_even_when_empty(tmp_path: Path) -> None:
    path = tmp_path / "sidekiq.yml"
    path.write_text("concurrency: 2\nstaging:\nproduction: {}\n")
    assert load(path, environment="staging", env={}).concurrency == 2


def test_an_unselected_section_is_checked_except_for_values_from_variables(tmp_path: Path) -> None:
    # Given a staging section whose redis_url reads a variable only staging has, and a bad production value
    path = tmp_path / "sidekiq.yml"
    path.write_text("staging:\n  redis_url: ${ONLY_ON_STAGING}\nproduction:\n  timeout: soon\n")
    with pytest.raises(ConfigError, match=r"sidekiq\.yml: production\.timeout: expected a number of seconds"):
        load(path, env={})
    path.write_text("staging:\n  redis_url: ${ONLY_ON_STAGING}\n  concurrency: 3\n")
    assert load(path, env={}).concurrency == 10


# --- -e NAME ----------------------------------------------------------------------------------------------

def test_cli_e_naming_no_section_lists_the_sections_there_are() -> None:
    stderr = refused("environments.yml", "-e", "prodution", "queues")
    assert f"pyq: {cfg('environments.yml')}: -e prodution: no such environment section; " \
           "the file has production, staging" in stderr


def test_e_with_a_file_without_sections_uses_the_top_level() -> None:
    assert load(cfg("unset_variable.yml"), environment="production",
                env={"CFG_TEST_UNSET_HOST": "::"}).concurrency == 3


def test_an_environment_from_a_variable_needs_no_section() -> None:
    assert load(cfg("environments.yml"), env={"RACK_ENV": "qa"}).concurrency == 4


# --- other gems' keys -------------------------------------------------------------------------------------

def test_cli_explains_sidekiq_limit_fetch_limits() -> None:
    assert f"pyq: {cfg('limit_fetch.yml')}: limits: {FOREIGN['limits']}" in refused("limit_fetch.yml")


@pytest.mark.parametrize("key", sorted(FOREIGN))
def test_every_other_gems_key_is_refused_with_its_message(tmp_path: Path, key: str) -> None:
    path = tmp_path / "sidekiq.yml"
    path.write_text(f"production:\n  :{key}: 1\n")
    with pytest.raises(ConfigError) as err:
        load(path, environment="production", env={})
    assert str(err.value) == f"{path}: production.{key}: {FOREIGN[key]}"


# --- sidekiq-scheduler ------------------------------------------------------------------------------------

def test_scheduler_section_becomes_cron_schedules(caplog: pytest.LogCaptureFixture) -> None:
    config = load(cfg("scheduler.yml"), env={})
    jobs = {job.name: job for job in parse_schedule(dict(config.cron), "cron")}
    assert set(jobs) == {"hourly_report", "cleanup", "paused"}
    hourly = jobs["hourly_report"]
    assert (hourly.cron, hourly.klass, hourly.queue, hourly.args) == ("0 * * * *", "Reports::Hourly", "low", (1, "two"))
    assert hourly.description == "Hourly numbers"
    cleanup = jobs["cleanup"]
    assert (cleanup.cron, cleanup.queue, cleanup.status) == ("*/15 * * * *", "default", "enabled")
    assert (jobs["paused"].cron, jobs["paused"].status) == ("0 */1 * * *", "disabled")
    assert "scheduler.listened_queues_only: ignored" in caplog.text


def test_top_level_schedule_joins_cron_and_a_name_in_both_is_an_error(tmp_path: Path) -> None:
    config = load(cfg("scheduler_legacy.yml"), env={})
    assert set(config.cron) == {"nightly", "heartbeat"}
    assert config.cron["heartbeat"]["cron"] == "*/30 * * * * *"
    assert config.cron["heartbeat"]["args"] == ["solo"]
    path = tmp_path / "sidekiq.yml"
    path.write_text("cron:\n  a: {cron: '* * * * *', class: A}\nschedule:\n  a: {every: 1m, class: A}\n")
    with pytest.raises(ConfigError, match=r"sidekiq\.yml: schedule\.a: a cron schedule of that name"):
        load(path, env={})


@pytest.mark.parametrize(("name", "message"), [
    ("scheduler_at.yml", "scheduler.schedule.launch.at: a one-off run is not a schedule in pyq; "
                         "enqueue it once with `pyq enqueue CLASS --at TIME`"),
    ("scheduler_every.yml", "schedule.odd.every: '7m' has no cron form pyq can repeat exactly"),
])
def test_cli_refuses_scheduler_entries_pyq_cannot_express(name: str, message: str) -> None:
    assert f"pyq: {cfg(name)}: {message}" in refused(name)


@pytest.mark.parametrize(("period", "expected"), [
    ("30s", "*/30 * * * * *"), ("1m", "*/1 * * * *"), ("20m", "*/20 * * * *"), ("1h", "0 */1 * * *"),
    ("8h", "0 */8 * * *"), ("1d", "0 0 * * *"), ("1w", "0 0 * * 0"),
])
def test_every_periods_that_cron_repeats_exactly(period: str, expected: str) -> None:
    assert every_to_cron(period, "w") == expected


@pytest.mark.parametrize("period", ["7s", "45m", "90m", "5h", "2d", "1h30m", "soon", ""])
def test_every_periods_without_a_cron_form_are_refused(period: str) -> None:
    with pytest.raises(ConfigError, match="has no cron form"):
        every_to_cron(period, "w")


def test_pool_started_on_a_sidekiq_scheduler_file_saves_its_schedules(tmp_path: Path, r: redis.Redis,
                                                                       redis_url: str) -> None:
    # Given a pool whose config carries a sidekiq-scheduler section
    schedule = {"nightly": {"cron": "0 3 * * *", "class": "Reports::Nightly"}, "often": {"every": "5m", "class": "X"}}
    with running_pool(tmp_path, redis_url, processes=1, scheduler={"schedule": schedule}):
        # Then the schedules are in sidekiq-cron's keys, as a `cron:` section would put them
        store = CronStore(r, Keys())
        wait_until(lambda: {job.name for job in store.all()} == {"nightly", "often"})
        often = store.get("often")
        assert often is not None and often.cron == "*/5 * * * *"


def test_the_example_in_configuration_md_loads(tmp_path: Path) -> None:
    # Given the sidekiq.yml example of docs/configuration.md, as a user would copy it
    page = (Path(__file__).resolve().parents[1] / "docs" / "configuration.md").read_text(encoding="utf-8")
    path = tmp_path / "sidekiq.yml"
    path.write_text(page.split("```yaml\n", 1)[1].split("```", 1)[0])
    # Then development reads the ERB defaults and the schedule, production its own concurrency
    config = load(path, env={})
    assert (config.environment, config.concurrency) == ("development", 5)
    assert config.cron["cleanup"]["cron"] == "*/15 * * * *"
    assert load(path, env={"RAILS_ENV": "production", "SIDEKIQ_THREADS": "12"}).concurrency == 12
