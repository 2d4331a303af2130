"""Throwaway certificates made with ``openssl`` and a redis-server that speaks only TLS, for TLS tests."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import RedisServer


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@dataclass(frozen=True)
class Certs:
    """A CA, a server certificate for 127.0.0.1 and a client certificate it signed, and an unrelated CA."""

    dir: Path

    @property
    def ca(self) -> Path:
        return self.dir / "ca.crt"

    @property
    def other_ca(self) -> Path:
        return self.dir / "other-ca.crt"

    def pair(self, name: str) -> tuple[Path, Path]:
        return self.dir / f"{name}.crt", self.dir / f"{name}.key"


def make_certs(directory: Path) -> Certs:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    directory.mkdir(parents=True, exist_ok=True)
    for ca in ("ca", "other-ca"):
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN=pyq test {ca}",
                "-keyout", f"{ca}.key", "-out", f"{ca}.crt", cwd=directory)
    (directory / "server.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    (directory / "client.ext").write_text("extendedKeyUsage=clientAuth\n")
    for name in ("server", "client"):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN=pyq test {name}", "-keyout", f"{name}.key",
                "-out", f"{name}.csr", cwd=directory)
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                "-days", "2", "-extfile", f"{name}.ext", "-out", f"{name}.crt", cwd=directory)
    return Certs(directory)


def tls_server(certs: Certs, *, client_certs: bool) -> RedisServer:
    """redis-server with TLS only (``--port 0``); ``client_certs`` makes it require a client certificate."""
    cert, key = certs.pair("server")
    port = RedisServer().port
    server = RedisServer(port, "--port", "0", "--tls-port", str(port), "--tls-cert-file", str(cert),
                         "--tls-key-file", str(key), "--tls-ca-cert-file", str(certs.ca),
                         "--tls-auth-clients", "yes" if client_certs else "no")
    client_cert, client_key = certs.pair("client")
    server.ping_options = {"host": "127.0.0.1", "ssl": True, "ssl_ca_certs": str(certs.ca),
                           "ssl_certfile": str(client_cert), "ssl_keyfile": str(client_key)}
    return server.start()
