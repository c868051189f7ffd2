"""pebble (ACME test CA) and pebble-challtestsrv (mock DNS) on loopback, unique ports per run.

challtestsrv answers every A query with ``address`` (the HAProxy under test)
and no AAAA; pebble resolves through it and connects to ``http_port`` for
HTTP-01 validation, so point the HAProxy's HTTP frontend at ``http_port``.
pebble's API certificate is a throw-away self-signed one made with
``cryptography`` for ``localhost`` and ``127.0.0.1``; clients trust it through
``api_ca`` (a PEM file path).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import shutil
import ssl
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.net import free_port, free_udp_port, stop_process


class PebbleUnavailable(RuntimeError):
    pass


def self_signed(cert_path: Path, key_path: Path) -> None:
    """A self-signed certificate for ``localhost`` / ``127.0.0.1`` (pebble's own API TLS)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    os.chmod(key_path, 0o600)


@dataclass
class Pebble:
    workdir: Path
    address: str = "127.0.0.1"
    http_port: int = field(default_factory=free_port)
    api_port: int = field(default_factory=free_port)
    mgmt_port: int = field(default_factory=free_port)
    dns_port: int = field(default_factory=free_udp_port)
    challsrv_mgmt_port: int = field(default_factory=free_port)
    procs: list[subprocess.Popen] = field(default_factory=list)

    @property
    def directory(self) -> str:
        return f"https://127.0.0.1:{self.api_port}/dir"

    @property
    def api_ca(self) -> str:
        return str(self.workdir / "pebble-api.pem")

    def start(self) -> "Pebble":
        for tool in ("pebble", "pebble-challtestsrv"):
            if shutil.which(tool) is None:
                raise PebbleUnavailable(f"{tool} not installed (apt-get install pebble)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self_signed(Path(self.api_ca), self.workdir / "pebble-api.key")
        config = {"pebble": {
            "listenAddress": f"127.0.0.1:{self.api_port}",
            "managementListenAddress": f"127.0.0.1:{self.mgmt_port}",
            "certificate": self.api_ca, "privateKey": str(self.workdir / "pebble-api.key"),
            "httpPort": self.http_port, "tlsPort": free_port(),
            "ocspResponderURL": "", "externalAccountBindingRequired": False,
        }}
        (self.workdir / "pebble.json").write_text(json.dumps(config))
        log_dns = open(self.workdir / "challtestsrv.log", "wb")
        self.procs.append(subprocess.Popen(
            ["pebble-challtestsrv", "-defaultIPv4", self.address, "-defaultIPv6", "",
             "-dns01", f"127.0.0.1:{self.dns_port}", "-http01", "", "-https01", "", "-tlsalpn01", "",
             "-management", f"127.0.0.1:{self.challsrv_mgmt_port}"],
            stdout=log_dns, stderr=subprocess.STDOUT))
        env = {**os.environ, "PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0"}
        log = open(self.workdir / "pebble.log", "wb")
        self.procs.append(subprocess.Popen(
            ["pebble", "-config", str(self.workdir / "pebble.json"), "-dnsserver", f"127.0.0.1:{self.dns_port}"],
            stdout=log, stderr=subprocess.STDOUT, env=env))
        deadline = time.monotonic() + 15
        while True:
            try:
                self.get(f"https://127.0.0.1:{self.api_port}/dir")
                self.root_pem()
                return self
            except OSError:
                if time.monotonic() > deadline or any(p.poll() is not None for p in self.procs):
                    self.stop()
                    raise PebbleUnavailable(f"pebble did not start: {self.log()}") from None
                time.sleep(0.1)

    def get(self, url: str) -> bytes:
        ctx = ssl.create_default_context(cafile=self.api_ca)
        with urllib.request.urlopen(url, context=ctx, timeout=5) as response:
            return response.read()

    def root_pem(self) -> bytes:
        """The root that signs issued certificates (management endpoint ``/roots/0``)."""
        return self.get(f"https://127.0.0.1:{self.mgmt_port}/roots/0")

    def log(self) -> str:
        path = self.workdir / "pebble.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def stop(self) -> None:
        for proc in self.procs:
            stop_process(proc)
        self.procs.clear()
