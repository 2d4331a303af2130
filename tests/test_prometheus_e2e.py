"""A real Prometheus server scrapes a running pyq pool every second; the job counters come back through
Prometheus's HTTP API.

pyq's ``job`` label (the job class) meets Prometheus's own ``job`` target label: with the default
``honor_labels: false`` Prometheus keeps the scraped one as ``exported_job``, which is what is queried here.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import free_port
from pool import running_pool, wait_until
from pyq.client import Client

pytestmark = pytest.mark.slow


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[tuple[int, int]]:
    """(Prometheus port, port it scrapes) with a 1 s scrape interval; killed afterwards."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("prometheus is not installed (apt-get install prometheus)")
    port, target = free_port(), free_port()
    cfg = tmp_path / "prometheus.yml"
    cfg.write_text(f"""
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: pyq
    static_configs:
      - targets: ["127.0.0.1:{target}"]
""")
    with open(tmp_path / "prometheus.log", "wb") as log:
        proc = subprocess.Popen([binary, f"--config.file={cfg}", f"--storage.tsdb.path={tmp_path / 'data'}",
                                 f"--web.listen-address=127.0.0.1:{port}"], stdout=log, stderr=subprocess.STDOUT)
        try:
            yield port, target
        finally:
            proc.kill()
            proc.wait(10)


def query(port: int, expr: str) -> list[dict]:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return json.load(resp)["data"]["result"]
    except OSError:
        return []


def value(port: int, expr: str) -> float | None:
    result = query(port, expr)
    return float(result[0]["value"][1]) if result else None


def test_prometheus_reads_the_pools_job_counters(tmp_path: Path, redis_url: str, client: Client,
                                                 prometheus: tuple[int, int]) -> None:
    prom_port, metrics_port = prometheus
    # Given a pool serving /metrics on the port Prometheus scrapes
    with running_pool(tmp_path, redis_url, processes=2, metrics={"port": metrics_port, "host": "127.0.0.1"}):
        # When 25 jobs run
        for i in range(25):
            client.push({"class": "Record", "args": [f"t{i}"]})
        # Then Prometheus reports them, summed across both worker processes
        wait_until(lambda: value(prom_port, 'sum(pyq_jobs_processed_total{exported_job="Record"})') == 25, timeout=30,
                   interval=0.5)
        rows = query(prom_port, "pyq_jobs_processed_total")
        assert {r["metric"]["queue"] for r in rows} == {"default"}
        assert value(prom_port, "up") == 1
        wait_until(lambda: value(prom_port, "pyq_processes") == 2, timeout=30, interval=0.5)
        assert value(prom_port, 'pyq_queue_size{queue="default"}') == 0
        assert value(prom_port, 'sum(pyq_job_duration_seconds_count{exported_job="Record"})') == 25
        print(f"\nPrometheus: sum(pyq_jobs_processed_total) = {value(prom_port, 'sum(pyq_jobs_processed_total)')}")
