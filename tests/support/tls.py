"""Test certificates made with ``cryptography``: a CA, leaf PEMs (chain + key), bad variants."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


def _key():
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _pem_cert(cert) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return cert.public_bytes(serialization.Encoding.PEM)


@dataclass
class CA:
    key: object
    cert: object

    @property
    def pem(self) -> bytes:
        return _pem_cert(self.cert)

    def issue(self, names: list[str], *, days: float = 90, start_days: float = -1, key=None,
              cn: str | None = None, san: bool = True) -> bytes:
        """A PEM: leaf + this CA + the leaf's private key (``key`` overrides the leaf's public key)."""
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes
        from cryptography.x509.oid import NameOID

        leaf_key = _key()
        now = dt.datetime.now(dt.timezone.utc)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn or (names[0] if names else "x"))]))
            .issuer_name(self.cert.subject)
            .public_key(leaf_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now + dt.timedelta(days=start_days))
            .not_valid_after(now + dt.timedelta(days=days))
        )
        if san and names:
            builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), False)
        leaf = builder.sign(self.key, hashes.SHA256())
        return _pem_cert(leaf) + self.pem + _pem_key(key or leaf_key)


def make_ca(name: str = "Cosmos Test CA") -> CA:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    key = _key()
    now = dt.datetime.now(dt.timezone.utc)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    return CA(key, cert)


def other_key_pem() -> bytes:
    return _pem_key(_key())


def https_get(port: int, sni: str, path: str = "/", *, host: str | None = None, cafile: str | None = None,
              cadata: bytes | None = None, alpn: list[str] | None = None, timeout: float = 5.0,
              address: str = "127.0.0.1"):
    """One HTTP/1.1 GET over TLS to ``address``:``port`` with SNI ``sni``, verifying the chain and name.

    Returns ``(status, headers dict (lower-case names), body str, negotiated ALPN, peer cert DER)``.
    Raises ``ssl.SSLError`` / ``ssl.SSLCertVerificationError`` when the handshake fails.
    """
    import socket
    import ssl

    ctx = ssl.create_default_context(cafile=cafile, cadata=cadata.decode() if cadata else None)
    if alpn:
        ctx.set_alpn_protocols(alpn)
    with socket.create_connection((address, port), timeout=timeout) as raw:
        with ctx.wrap_socket(raw, server_hostname=sni) as conn:
            negotiated = conn.selected_alpn_protocol()
            der = conn.getpeercert(binary_form=True)
            if negotiated == "h2":
                return None, {}, "", negotiated, der
            conn.sendall(f"GET {path} HTTP/1.1\r\nHost: {host or sni}\r\nConnection: close\r\n\r\n".encode())
            data = b""
            while chunk := conn.recv(65536):
                data += chunk
    return (*parse_response(data), negotiated, der)


def http_get(port: int, host: str, path: str = "/", timeout: float = 5.0):
    """One plain HTTP/1.1 GET to 127.0.0.1:``port``: ``(status, headers, body)``."""
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
        conn.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    return parse_response(data)


def parse_response(data: bytes):
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, body.decode("utf-8", "replace")
