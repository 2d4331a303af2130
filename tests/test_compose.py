"""docker-compose.yml, the Dockerfile and deploy/prometheus.yml agree with the code and config files.

Docker is not run here: the files are parsed and checked against the Compose specification's
top-level and service keys, pyq's CLI parser and pyq's config loader.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from pyq.cli import main
from pyq.config import load

ROOT = Path(__file__).resolve().parent.parent
#: Top-level elements of the Compose specification.
COMPOSE_TOP = {"version", "name", "services", "networks", "volumes", "configs", "secrets", "include"}
#: The service elements these files use, all from the Compose specification.
SERVICE_KEYS = {"image", "build", "command", "environment", "ports", "volumes", "depends_on", "healthcheck",
                "restart", "stop_signal", "stop_grace_period", "user", "working_dir", "entrypoint"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, argument) pairs, continuation lines joined and comments dropped."""
    lines = [ln.strip() for ln in (ROOT / "Dockerfile").read_text().splitlines()]
    text = "\n".join(ln for ln in lines if not ln.startswith("#")).replace("\\\n", " ")
    return [(ln.split(None, 1)[0], ln.split(None, 1)[1]) for ln in text.splitlines() if ln]


def _seconds(text: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    return sum(float(n) * units[u] for n, u in re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", text))


def _worker_config(compose: dict[str, Any]) -> Any:
    worker = compose["services"]["worker"]
    ctx = main.make_context("pyq", list(worker["command"][1:]))
    return ctx.params, load(ROOT / ctx.params["config_path"], env=dict(worker["environment"]),
                            overrides={"require": ctx.params["requires"] or None})


def test_only_compose_specification_keys(compose: dict[str, Any]) -> None:
    assert set(compose) <= COMPOSE_TOP
    assert set(compose["services"]) == {"redis", "worker", "prometheus"}
    for name, service in compose["services"].items():
        assert set(service) <= SERVICE_KEYS, name
        assert ("image" in service) != ("build" in service), f"{name}: exactly one of image/build"


def test_redis_persists_to_a_named_volume(compose: dict[str, Any]) -> None:
    redis = compose["services"]["redis"]
    command = redis["command"]
    assert command[0] == "redis-server"
    assert command[command.index("--appendonly") + 1] == "yes"
    volume, _, target = redis["volumes"][0].partition(":")
    assert volume in compose["volumes"] and target == "/data"
    assert "redis-cli" in redis["healthcheck"]["test"]


def test_worker_runs_the_pool_against_the_redis_service(compose: dict[str, Any]) -> None:
    worker = compose["services"]["worker"]
    assert (ROOT / worker["build"]["context"] / worker["build"]["dockerfile"]).is_file()
    assert worker["command"][0] == "pyq"
    params, config = _worker_config(compose)
    assert params["config_path"] == "config/queue.yml"
    assert "examples.jobs" in config.require
    for module in config.require:
        assert importlib.util.find_spec(module) is not None, module
    assert config.redis_url.startswith("redis://redis:")
    assert worker["depends_on"]["redis"]["condition"] == "service_healthy"


def test_stop_grace_outlasts_the_shutdown_timeout(compose: dict[str, Any]) -> None:
    worker = compose["services"]["worker"]
    _, config = _worker_config(compose)
    assert worker["stop_signal"] == "SIGTERM"
    assert _seconds(worker["stop_grace_period"]) > config.timeout_s


def test_metrics_port_agrees_everywhere(compose: dict[str, Any]) -> None:
    _, config = _worker_config(compose)
    assert config.metrics_port is not None
    published = {int(p.split(":")[-1]) for p in compose["services"]["worker"]["ports"]}
    assert config.metrics_port in published
    prometheus = yaml.safe_load((ROOT / "deploy/prometheus.yml").read_text())
    targets = [t for job in prometheus["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]]
    assert targets == [f"worker:{config.metrics_port}"]
    mount = compose["services"]["prometheus"]["volumes"][0].split(":")
    assert (ROOT / mount[0]).resolve() == ROOT / "deploy/prometheus.yml"
    assert mount[1] in compose["services"]["prometheus"]["command"][0]


def test_dockerfile_builds_a_non_root_image_that_stops_on_term(
        dockerfile: list[tuple[str, str]], compose: dict[str, Any]) -> None:
    instructions = dict(dockerfile)
    assert instructions["FROM"] == "python:3.11-slim"
    assert ("RUN", "pip install .") in dockerfile
    assert instructions["USER"] not in ("root", "0")
    assert instructions["STOPSIGNAL"] == "SIGTERM"
    assert yaml.safe_load(instructions["CMD"]) == ["pyq", "-C", "config/queue.yml"]
    for instruction, arg in dockerfile:
        if instruction == "COPY":
            for source in arg.split()[:-1]:
                assert (ROOT / source).exists(), source
    names = [arg.split()[0] for instruction, arg in dockerfile if instruction == "COPY"]
    assert {"src", "lua", "pyproject.toml"} <= set(names)


def test_dockerignore_keeps_what_the_image_copies() -> None:
    ignored = {ln.strip() for ln in (ROOT / ".dockerignore").read_text().splitlines() if ln.strip()}
    assert not ignored & {"src", "lua", "config", "examples", "pyproject.toml", "README.md"}
