"""docs/operations.md's Redis Cluster example, run as written against a real 3-primary cluster."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pool import running_pool, wait_until

PAGE = (Path(__file__).resolve().parents[1] / "docs" / "operations.md").read_text()
SECTION = PAGE.split("\n## Redis Cluster\n", 1)[1].split("\n## ", 1)[0]
DOC_URL = "redis://redis-cluster-0:6379/0"


def blocks(language: str) -> list[str]:
    return [part.split("```", 1)[0] for part in SECTION.split(f"```{language}\n")[1:]]


@pytest.mark.slow
def test_the_cluster_example_pushes_and_runs_a_job_under_the_namespace_tag(tmp_path: Path, cluster_url: str,
                                                                            rc) -> None:
    # Given the page's jobs module, its config and its push snippet, pointed at the test cluster
    jobs, push = blocks("python")
    [settings] = blocks("yaml")
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "__init__.py").write_text("")
    (tmp_path / "app" / "jobs.py").write_text(jobs)
    config = yaml.safe_load(settings)
    assert config.pop("redis_url") == DOC_URL and config["cluster"] is True and config["namespace"] == "shop"
    with running_pool(tmp_path, cluster_url, processes=1, **config):
        # When the snippet pushes
        path = os.pathsep.join(filter(None, (str(tmp_path), os.environ.get("PYTHONPATH"))))
        subprocess.run([sys.executable, "-c", push.replace(DOC_URL, cluster_url)], cwd=tmp_path, check=True,
                       env={**os.environ, "PYTHONPATH": path}, timeout=60)
        # Then the pool runs it, and it is counted under the namespace's hash tag
        wait_until(lambda: rc.get("{shop}:stat:processed") == b"1", 30)
    assert "receipt for order 42 sent" in (tmp_path / "pool.log").read_text()
    assert rc.sismember("{shop}:queues", "default") and not rc.exists("queues")
