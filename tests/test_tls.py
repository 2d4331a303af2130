"""``rediss://`` against a real TLS redis-server: with and without client certificates, checked by default.

The certificates (a CA, a server and a client certificate, and an unrelated CA) are made with openssl.
The config examples in docs/operations.md run here against these servers.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

import pyq
from conftest import RedisServer
from pool import doc_config, running_pool, wait_until
from pyq.connection import connect
from tls import Certs, make_certs, tls_server

DONE = "test:done"


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def server_auth(certs: Certs) -> Iterator[RedisServer]:
    """TLS only; clients must show a certificate signed by the CA."""
    server = tls_server(certs, client_certs=True)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def server_open(certs: Certs) -> Iterator[RedisServer]:
    """TLS only; no client certificate asked for."""
    server = tls_server(certs, client_certs=False)
    yield server
    server.stop()


def tls_url(server: RedisServer, certs: Certs, *, ca: Path | None = None, client_cert: bool = False) -> str:
    query = [f"ssl_ca_certs={ca or certs.ca}"]
    if client_cert:
        cert, key = certs.pair("client")
        query += [f"ssl_certfile={cert}", f"ssl_keyfile={key}"]
    return f"rediss://127.0.0.1:{server.port}/0?{'&'.join(query)}"


def raw(server: RedisServer) -> redis.Redis:
    return redis.Redis(port=server.port, **server.ping_options)


def test_without_a_client_certificate_the_client_pushes_over_tls(server_open: RedisServer, certs: Certs) -> None:
    jid = pyq.Client(tls_url(server_open, certs)).push({"class": "Record", "args": ["tls"]})
    assert jid is not None and jid.encode() in raw(server_open).lindex("queue:default", 0)


def test_a_server_that_asks_for_a_client_certificate_gets_one(server_auth: RedisServer, certs: Certs) -> None:
    assert connect(tls_url(server_auth, certs, client_cert=True)).ping()
    # Refused: the server's "certificate required" alert, or (TLS 1.3 lets the client write first) a
    # connection the server already closed
    with pytest.raises(redis.ConnectionError, match="(?i)certificate|EOF|reset|closed"):
        connect(tls_url(server_auth, certs), socket_timeout=2).ping()


def test_the_certificate_is_checked_by_default(server_open: RedisServer, certs: Certs) -> None:
    with pytest.raises(redis.ConnectionError, match="CERTIFICATE_VERIFY_FAILED"):
        connect(f"rediss://127.0.0.1:{server_open.port}/0", socket_timeout=2).ping()  # the system CAs only


def refused_start(tmp_path: Path, url: str) -> list[str]:
    """Start a pool against ``url``; it must exit 2 on its own. Returns its error lines."""
    with running_pool(tmp_path, url) as proc:
        assert proc.wait(timeout=30) == 2, "the pool should stop, not retry forever"
    log = (tmp_path / "pool.log").read_text(errors="replace")
    assert "Traceback" not in log
    return [line for line in log.splitlines() if "ERROR" in line]


@pytest.mark.parametrize("mistake", ["wrong CA", "no client certificate"])
def test_a_pool_that_cannot_verify_or_be_verified_exits_2(tmp_path: Path, server_auth: RedisServer,
                                                          certs: Certs, mistake: str) -> None:
    url = (tls_url(server_auth, certs, ca=certs.other_ca, client_cert=True) if mistake == "wrong CA"
           else tls_url(server_auth, certs))
    lines = refused_start(tmp_path, url)
    # A missing client certificate can first look like a dropped connection: under TLS 1.3 the client
    # may write before it reads the server's alert. The start retries until it reads the alert.
    assert len(lines) == 1 if mistake == "wrong CA" else len(lines) <= 3, lines
    line = lines[-1]
    assert f"TLS to Redis at rediss://127.0.0.1:{server_auth.port}/0" in line
    assert "CERTIFICATE" in line


@pytest.mark.slow
def test_the_documented_tls_config_runs_a_pool(tmp_path: Path, server_auth: RedisServer, certs: Certs) -> None:
    # Given the example of docs/operations.md, pointed at this server and these files
    example = doc_config("tls")
    cert, key = certs.pair("client")
    url = (example["redis_url"].replace("${REDIS_PASSWORD:-}", "")
           .replace("redis.internal:6380", f"127.0.0.1:{server_auth.port}")
           .replace("/etc/pyq/ca.crt", str(certs.ca)).replace("/etc/pyq/client.crt", str(cert))
           .replace("/etc/pyq/client.key", str(key)))
    # Then a pool runs a job pushed over TLS, recording it over TLS
    with running_pool(tmp_path, url, require=["hajobs"], processes=1):
        pyq.Client(url).push({"class": "HARecord", "args": ["over-tls"]})
        wait_until(lambda: raw(server_auth).sismember(DONE, "over-tls"), timeout=30)
