"""The built wheel works on its own: Lua scripts ship inside it and are found from an installed copy.

Builds the wheel, installs it with its dependencies into a fresh virtualenv,
and from a directory outside the checkout enqueues a job that Ruby Sidekiq's
``Sidekiq::Queue`` then reads.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import redis

from rubyhelp import requires_ruby, ruby_run

REPO = Path(__file__).resolve().parents[1]

ENQUEUE = """
import json, sys
import pyq, pyq.scripts
client = pyq.Client(sys.argv[1])
jid = client.push({"class": "Wheel::Job", "args": [1, "é"], "queue": "wheel"})
later = client.push({"class": "Wheel::Job", "args": [2], "queue": "wheel", "at": 4102444800.0})
print(json.dumps({"jid": jid, "later": later, "pyq": pyq.__file__, "lua": str(pyq.scripts.lua_dir())}))
"""


def run(command: list[str], cwd: Path, timeout: float = 300) -> str:
    """Run ``command`` without the caller's PYTHONPATH, which could put the checkout's pyq first."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(out), str(REPO)], out)
    [built] = out.glob("pyq-*.whl")
    return built


@pytest.mark.slow
def test_wheel_carries_the_lua_scripts(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for lua in REPO.glob("lua/**/*.lua"):
        assert f"pyq/lua/{lua.relative_to(REPO / 'lua')}" in names
    assert "pyq/scripts.py" in names and not any(n.startswith(("tests/", "lua/")) for n in names)


@pytest.mark.slow
@requires_ruby
def test_installed_wheel_enqueues_a_job_ruby_reads(wheel: Path, tmp_path: Path, redis_url: str,
                                                   r: redis.Redis) -> None:
    # Given the wheel installed into an empty virtualenv (dependencies from the package index)
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", str(venv)], tmp_path)
    python = str(venv / "bin" / "python")
    # The wheel's path, not the name: "pyq" on the public index is an unrelated (kdb+) project.
    run([python, "-m", "pip", "install", "--quiet", str(wheel)], tmp_path)
    # When that interpreter enqueues from a directory outside the checkout
    out = json.loads(run([python, "-c", ENQUEUE, redis_url], tmp_path, timeout=60))
    # Then pyq and its scripts came from the installed copy, and Ruby reads the jobs
    assert out["pyq"].startswith(str(venv)) and out["lua"].startswith(str(venv))
    assert Path(out["lua"], "enqueue.lua").is_file()
    seen = json.loads(ruby_run("read_jobs.rb", redis_url, "wheel"))
    [job] = seen["queue"]
    assert (job["jid"], job["klass"], job["args"], job["queue"]) == (out["jid"], "Wheel::Job", [1, "é"], "wheel")
    assert [s["jid"] for s in seen["scheduled"]] == [out["later"]]
    assert seen["scheduled"][0]["score"] == 4102444800.0
