"""Every Redis URL kind pyq accepts reaches a real server, and no password ever reaches a log or an error."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis

import pyq
from conftest import free_port
from pool import running_pool, wait_until
from pyq.config import load
from pyq.connection import connect, redact
from pyq.errors import ConfigError
from pyq.keys import Keys

QUEUE = Keys().queue("default")
DONE = "test:done"


@contextmanager
def redis_process(args: list[str], ready: Callable[[], Any], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A redis-server (or sentinel) child logging to ``log``, up once ``ready()`` stops raising; killed afterwards."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    with open(log, "wb") as out:
        proc = subprocess.Popen([binary, *args], stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                ready()
                break
            except (redis.ConnectionError, OSError):
                if proc.poll() is not None or time.monotonic() > deadline:
                    tail = log.read_text(errors="replace")[-500:]
                    raise RuntimeError(f"redis-server {args} did not come up: {tail}") from None
                time.sleep(0.02)
        yield proc
    finally:
        proc.kill()
        proc.wait(10)


def server_args(tmp_path: Path, *extra: str) -> list[str]:
    return ["--save", "", "--appendonly", "no", "--dir", str(tmp_path), *extra]


def ping(**kwargs: Any) -> Callable[[], Any]:
    return lambda: redis.Redis(socket_timeout=1, **kwargs).ping()


def enqueue_and_read_back(url: str, raw: redis.Redis) -> None:
    """pyq.Client pushes through ``url``; ``raw`` (a direct connection) finds the payload in the queue."""
    client = pyq.Client(url)
    try:
        jid = client.push({"class": "Record", "args": ["x"]})
    finally:
        client.redis.close()
    assert jid is not None and jid.encode() in raw.lindex(QUEUE, 0)


# --- redact -------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("url", "expected"), [
    ("redis://app:s3cret@h:6379/0", "redis://app:***@h:6379/0"),
    ("redis://:s3cret@h:6379/0", "redis://:***@h:6379/0"),
    ("redis://h:6379/0", "redis://h:6379/0"),
    ("redis://app@h/0", "redis://app@h/0"),
    ("rediss://:s3cret@h:6380/1?ssl_cert_reqs=none", "rediss://:***@h:6380/1?ssl_cert_reqs=none"),
    ("redis+sentinel://:s3cret@a:26379,b:26380,c/mymaster/2", "redis+sentinel://:***@a:26379,b:26380,c/mymaster/2"),
    ("unix://:s3cret@/tmp/r.sock?db=0", "unix://:***@/tmp/r.sock?db=0"),
    ("unix:///tmp/a@b/r.sock", "unix:///tmp/a@b/r.sock"),
    ("redis://:pa/ss@h/0", "redis://:***@h/0"),
    ("redis://u:p@ss@h/0", "redis://u:***@h/0"),
    ("redis://h/0?password=s3cret&db=1", "redis://h/0?password=***&db=1"),
    ("rediss://h/0?ssl_password=s3cret", "rediss://h/0?ssl_password=***"),
])
def test_redact_masks_the_password_and_keeps_everything_else(url: str, expected: str) -> None:
    assert redact(url) == expected


def test_redact_masks_every_url_inside_a_message() -> None:
    text = "got 'redis://:one@a/0', then redis://u:two@b/1 failed"
    assert redact(text) == "got 'redis://:***@a/0', then redis://u:***@b/1 failed"


@pytest.mark.parametrize("bad", ["http://:s3cret@h/0", "sentinel://:s3cret@h/m", "redis://:s3cret@h /0"])
def test_config_errors_about_the_url_mask_the_password(bad: str) -> None:
    with pytest.raises(ConfigError) as err:
        load(env={"PYQ_REDIS_URL": bad})
    assert "s3cret" not in str(err.value) and ":***@" in str(err.value)


def test_sentinel_url_without_a_service_name_is_refused_with_the_password_masked() -> None:
    with pytest.raises(ValueError, match="service name") as err:
        connect("redis+sentinel://:s3cret@127.0.0.1:26379")
    assert "s3cret" not in str(err.value)


# --- unix:// ------------------------------------------------------------------------------------------

@pytest.fixture
def unix_url(tmp_path: Path) -> Iterator[str]:
    sock = tmp_path / "r.sock"
    args = server_args(tmp_path, "--port", "0", "--unixsocket", str(sock), "--unixsocketperm", "700")
    with redis_process(args, ping(unix_socket_path=str(sock)), tmp_path / "unix-redis.log"):
        yield f"unix://{sock}?db=0"


def test_client_enqueues_through_a_unix_socket(unix_url: str) -> None:
    raw = redis.Redis.from_url(unix_url)
    enqueue_and_read_back(unix_url, raw)
    assert raw.smembers(Keys().queues) == {b"default"}


@pytest.mark.slow
def test_pool_runs_a_job_over_a_unix_socket(tmp_path: Path, unix_url: str) -> None:
    raw = redis.Redis.from_url(unix_url)
    with running_pool(tmp_path, unix_url, processes=1):
        pyq.Client(unix_url).push({"class": "Record", "args": ["over-unix"]})
        wait_until(lambda: raw.llen(DONE) == 1)
    assert raw.lrange(DONE, 0, -1) == [b"over-unix"]
    assert raw.llen(QUEUE) == 0


# --- rediss:// ----------------------------------------------------------------------------------------

def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=30)


def make_certs(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1 signed by it."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=pyq test CA",
            "-keyout", "ca.key", "-out", "ca.crt", cwd=tmp_path)
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", "server.key",
            "-out", "server.csr", cwd=tmp_path)
    (tmp_path / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-days", "2", "-extfile", "san.ext", "-out", "server.crt", cwd=tmp_path)
    return tmp_path / "ca.crt", tmp_path / "server.crt", tmp_path / "server.key"


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """redis-server speaking only TLS; yields its port and the CA that signed its certificate."""
    ca, cert, key = make_certs(tmp_path)
    port = free_port()
    args = server_args(tmp_path, "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1",
                       "--tls-cert-file", str(cert), "--tls-key-file", str(key), "--tls-ca-cert-file", str(ca),
                       "--tls-auth-clients", "no")
    log = tmp_path / "tls-redis.log"
    try:
        server = redis_process(args, ping(port=port, ssl=True, ssl_cert_reqs="none"), log)
        server.__enter__()
    except RuntimeError:
        if "tls-port" in log.read_text(errors="replace"):  # "Bad directive": built without TLS
            pytest.skip(f"this redis-server was built without TLS: {log.read_text(errors='replace')[-300:]}")
        raise
    try:
        yield port, ca
    finally:
        server.__exit__(None, None, None)


@pytest.mark.parametrize("verify", ["ssl_cert_reqs=none", "ssl_ca_certs={ca}"])
def test_client_enqueues_over_tls(tls_server: tuple[int, Path], verify: str) -> None:
    port, ca = tls_server
    url = f"rediss://127.0.0.1:{port}/0?{verify.format(ca=ca)}"
    raw = redis.Redis(host="127.0.0.1", port=port, ssl=True, ssl_ca_certs=str(ca))
    enqueue_and_read_back(url, raw)
    assert connect(url).connection_pool.connection_class is redis.SSLConnection


def test_tls_port_refuses_a_plain_redis_url(tls_server: tuple[int, Path]) -> None:
    port, _ = tls_server
    with pytest.raises(redis.ConnectionError):
        connect(f"redis://127.0.0.1:{port}/0", socket_timeout=2).ping()


def test_tls_with_an_unknown_ca_is_refused(tls_server: tuple[int, Path]) -> None:
    port, _ = tls_server
    with pytest.raises(redis.ConnectionError, match="(?i)certificate"):
        connect(f"rediss://127.0.0.1:{port}/0", socket_timeout=2).ping()


# --- Sentinel -----------------------------------------------------------------------------------------

@contextmanager
def sentinel_for(tmp_path: Path, master_port: int, *conf: str, password: str | None = None) -> Iterator[int]:
    """One Sentinel watching ``mymaster`` on ``master_port`` (``requirepass`` if ``password``); yields its port."""
    port = free_port()
    path = tmp_path / "sentinel.conf"
    lines = [f"port {port}", "bind 127.0.0.1", f"dir {tmp_path}",
             f"sentinel monitor mymaster 127.0.0.1 {master_port} 1", *conf]
    lines += [f"requirepass {password}"] if password else []
    path.write_text("\n".join(lines) + "\n")
    ready = ping(port=port, password=password)
    with redis_process([str(path), "--sentinel"], ready, tmp_path / "sentinel.log"):
        yield port


@pytest.fixture
def master(tmp_path: Path) -> Iterator[int]:
    port = free_port()
    args = server_args(tmp_path, "--port", str(port), "--bind", "127.0.0.1")
    with redis_process(args, ping(port=port), tmp_path / "master.log"):
        yield port


def test_client_enqueues_through_sentinel_to_the_master(tmp_path: Path, master: int) -> None:
    with sentinel_for(tmp_path, master) as sentinel_port:
        enqueue_and_read_back(f"redis+sentinel://127.0.0.1:{sentinel_port}/mymaster/0", redis.Redis(port=master))


@pytest.mark.slow  # redis-py backs off ~3s on the dead Sentinel before asking the next one
def test_sentinel_url_selects_the_db_and_skips_a_dead_sentinel(tmp_path: Path, master: int) -> None:
    with sentinel_for(tmp_path, master) as sentinel_port:
        url = f"redis+sentinel://127.0.0.1:{free_port()},127.0.0.1:{sentinel_port}/mymaster/3"
        enqueue_and_read_back(url, redis.Redis(port=master, db=3))
    assert redis.Redis(port=master, db=0).llen(QUEUE) == 0


def test_sentinel_with_an_unknown_service_fails_clearly(tmp_path: Path, master: int) -> None:
    with sentinel_for(tmp_path, master) as sentinel_port:
        conn = connect(f"redis+sentinel://127.0.0.1:{sentinel_port}/nosuchservice/0")
        with pytest.raises(redis.ConnectionError, match="nosuchservice"):
            conn.ping()


@pytest.fixture
def protected_master(tmp_path: Path) -> Iterator[int]:
    port = free_port()
    args = server_args(tmp_path, "--port", str(port), "--bind", "127.0.0.1", "--requirepass", "m4ster")
    with redis_process(args, ping(port=port, password="m4ster"), tmp_path / "master.log"):
        yield port


@pytest.mark.parametrize("sentinel_password", [None, "m4ster"], ids=["open-sentinel", "protected-sentinel"])
def test_sentinel_url_password_reaches_a_protected_master(tmp_path: Path, protected_master: int,
                                                         sentinel_password: str | None) -> None:
    auth = "sentinel auth-pass mymaster m4ster"
    with sentinel_for(tmp_path, protected_master, auth, password=sentinel_password) as port:
        url = f"redis+sentinel://:m4ster@127.0.0.1:{port}/mymaster/0"
        enqueue_and_read_back(url, redis.Redis(port=protected_master, password="m4ster"))


def test_sentinel_url_with_a_wrong_password_is_refused(tmp_path: Path, protected_master: int) -> None:
    with sentinel_for(tmp_path, protected_master, "sentinel auth-pass mymaster m4ster") as port:
        conn = connect(f"redis+sentinel://:wrong@127.0.0.1:{port}/mymaster/0")
        with pytest.raises(redis.AuthenticationError) as err:
            conn.ping()
    assert "wrong" not in str(err.value)


# --- passwords in logs --------------------------------------------------------------------------------

def refused_start(tmp_path: Path, url: str) -> list[str]:
    """Run a pool against ``url``; it must exit 2 by itself. Returns its error lines."""
    with running_pool(tmp_path, url) as proc:
        assert proc.wait(timeout=20) == 2, "the pool should stop, not retry forever"
    log = (tmp_path / "pool.log").read_text(errors="replace")
    assert "Traceback" not in log
    return [line for line in log.splitlines() if "ERROR" in line]


def test_pool_with_a_wrong_password_exits_2_with_one_masked_line(tmp_path: Path, protected_master: int) -> None:
    [line] = refused_start(tmp_path, f"redis://:n0tTheP4ss@127.0.0.1:{protected_master}/0")
    assert f"redis://:***@127.0.0.1:{protected_master}/0 refused pyq" in line
    assert "n0tTheP4ss" not in line


def test_pool_without_the_password_redis_asks_for_exits_2(tmp_path: Path, protected_master: int) -> None:
    [line] = refused_start(tmp_path, f"redis://127.0.0.1:{protected_master}/0")
    assert f"redis://127.0.0.1:{protected_master}/0 refused pyq" in line


def test_pool_whose_acl_user_may_not_run_scripts_exits_2(tmp_path: Path, protected_master: int) -> None:
    # Given a user that may PING but not load or run scripts
    admin = redis.Redis(port=protected_master, password="m4ster")
    admin.execute_command("ACL", "SETUSER", "pinger", "on", ">p1ng", "+ping", "+hello", "+client", "~*")
    [line] = refused_start(tmp_path, f"redis://pinger:p1ng@127.0.0.1:{protected_master}/0")
    assert f"redis://pinger:***@127.0.0.1:{protected_master}/0 refused pyq" in line
