"""Running real Ruby Sidekiq next to the tests: Ruby scripts, a Sidekiq server, and the skip rule.

Ruby code runs with ``REDIS_URL`` pointing at the test Redis, which Sidekiq's
client and server both read, so scripts need no connection code. Scripts in
``tests/ruby/`` start with ``require_relative "helper"`` (Sidekiq, its API,
JSON, silenced redis-rb 4.8 deprecation warnings); code given as a string gets
the same helper loaded first.

Tests that need Ruby use :func:`requires_ruby`: they are skipped on a machine
without Ruby Sidekiq, and they fail when the ``CI`` environment variable is
set, so a CI image that lost Ruby cannot turn the interop suite green by
skipping it.
"""

from __future__ import annotations

import functools
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, TypeVar

import pytest
import redis

#: Folder of the Ruby scripts the tests run.
RUBY_DIR = Path(__file__).resolve().parent / "ruby"
#: Loaded before every script and snippet: Sidekiq's client and API, JSON, quiet redis-rb.
HELPER_RB = RUBY_DIR / "helper.rb"
#: Seconds a Ruby script may run before it is killed and the test fails.
RUBY_TIMEOUT_S = 30.0

F = TypeVar("F", bound=Callable[..., Any])


class RubyError(AssertionError):
    """A Ruby script exited non-zero or ran past its timeout; the message carries its stderr."""


@functools.cache
def ruby_missing_reason() -> str | None:
    """Why Ruby Sidekiq cannot run here, or None when ``ruby -e 'require "sidekiq"'`` works."""
    ruby = shutil.which("ruby")
    if ruby is None:
        return "ruby is not installed"
    probe = subprocess.run([ruby, "-e", 'require "sidekiq"; require "sidekiq/api"'], capture_output=True,
                           timeout=RUBY_TIMEOUT_S)
    if probe.returncode != 0:
        return f"Ruby Sidekiq is not installed: {probe.stderr.decode(errors='replace').strip()[:200]}"
    return None


def ensure_ruby() -> None:
    """Skip the calling test when Ruby Sidekiq is missing; fail it instead when ``CI`` is set."""
    reason = ruby_missing_reason()
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI must install ruby and ruby-sidekiq)")
    pytest.skip(reason)


def requires_ruby(test: F) -> F:
    """Decorator for tests that run Ruby: marks them ``ruby`` and applies :func:`ensure_ruby` first."""

    @functools.wraps(test)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ensure_ruby()
        return test(*args, **kwargs)

    return pytest.mark.ruby(wrapper)


def ruby_env(redis_url: str, **extra: str) -> dict[str, str]:
    """The environment for Ruby processes: this one plus ``REDIS_URL`` and ``extra``."""
    return {**os.environ, "REDIS_URL": redis_url, "RUBYOPT": "-W0", **extra}


def ruby_run(script: str | Path, redis_url: str, *args: str, timeout: float = RUBY_TIMEOUT_S) -> str:
    """Run a Ruby script file (a path, or a name in ``tests/ruby/``) or a code string; return stdout.

    ``args`` become ``ARGV``. A non-zero exit or a timeout raises :class:`RubyError`
    with Ruby's stderr, so a failing script shows why in the test report.
    """
    command = ["ruby", "-r", str(HELPER_RB)]
    path = _script_path(script)
    command += [str(path)] if path else ["-e", str(script)]
    try:
        done = subprocess.run([*command, *args], env=ruby_env(redis_url), capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise RubyError(f"ruby ran past {timeout} s: {_text(exc.stderr)}") from None
    if done.returncode != 0:
        raise RubyError(f"ruby exited {done.returncode}: {_text(done.stderr)}")
    return done.stdout.decode()


def _script_path(script: str | Path) -> Path | None:
    if isinstance(script, Path):
        return script
    if "\n" in script or not script.endswith(".rb"):
        return None
    path = Path(script)
    return path if path.is_absolute() or path.exists() else RUBY_DIR / script


def _text(data: bytes | None) -> str:
    return (data or b"").decode(errors="replace").strip()[-2000:]


def sidekiq_command() -> list[str]:
    """Debian's ``/usr/bin/sidekiq`` when present, else ``ruby -S sidekiq``."""
    binary = shutil.which("sidekiq")
    return [binary] if binary else ["ruby", "-S", "sidekiq"]


@contextmanager
def sidekiq_server(require: str | Path, redis_url: str, queue: str = "default", *, concurrency: int = 2,
                   start_timeout: float = 20.0) -> Iterator[subprocess.Popen[bytes]]:
    """A real Ruby Sidekiq server (``sidekiq -r FILE -q QUEUE -c N``) for the duration of a ``with``.

    It runs in its own process group with ``REDIS_URL`` set; the block starts once
    the server has registered in Sidekiq's ``processes`` set. On exit the whole
    group gets SIGTERM, then SIGKILL after a few seconds, so no Ruby process
    outlives the test. The server's output is in the ``RubyError`` raised when
    it fails to start.
    """
    require = Path(require) if Path(require).is_absolute() else RUBY_DIR / require
    command = [*sidekiq_command(), "-r", str(require), "-q", queue, "-c", str(concurrency), "-t", "2"]
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(command, env=ruby_env(redis_url), stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            _wait_registered(proc, redis_url, log, start_timeout)
            yield proc
        finally:
            _kill_group(proc)


def _wait_registered(proc: subprocess.Popen[bytes], redis_url: str, log: Any, timeout: float) -> None:
    conn = redis.Redis.from_url(redis_url, socket_timeout=5)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            if any(member.split(b":")[-2:-1] == [str(proc.pid).encode()]
                   for member in conn.smembers("processes")):
                return
            time.sleep(0.05)
    finally:
        conn.close()
    log.seek(0)
    raise RubyError(f"sidekiq did not start (exit {proc.poll()}): {_text(log.read())}")


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with suppress(subprocess.TimeoutExpired):
        proc.wait(5)
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(5)
