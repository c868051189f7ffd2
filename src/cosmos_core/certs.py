"""TLS certificates: load and check PEM files (chain + private key), match host names.

A :class:`Certificate` is one PEM document holding the leaf certificate, its
chain and the private key, checked when it is loaded: it parses, the key
matches the leaf, it has not expired, and it names at least one DNS name (its
SANs; the subject CN only when it has no SANs), each a DNS host name or a
``*.`` wildcard of one (an IP address or a name with spaces is refused).
:func:`load_dir` loads every ``*.pem`` file of a directory and skips a bad one
with one warning naming the file and the reason, so every other certificate
keeps serving.  Each file gets a name of its own (:func:`file_name`): two files
never replace each other.

``cryptography`` is imported inside the functions that need it, never at
module level (the CLI start-up path stays light).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from cosmos_core.errors import CosmosError
from cosmos_core.files import write_bytes  # noqa: F401 (also imported from here by cosmos-acme)
from cosmos_core.logs import get_logger

log = get_logger("cosmos.certs")

_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----\r?\n.*?-----END \1-----", re.S)
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")
# A DNS name a certificate serves: RFC 1123 labels (also '_', which private CAs issue and SNI carries).
_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_DNS_NAME = re.compile(rf"(?=.{{1,253}}\Z){_LABEL}(?:\.{_LABEL})*")
_DIGITS_AND_DOTS = re.compile(r"[0-9.]+")


class CertificateError(CosmosError):
    """A PEM file that cannot serve: the message names the file and the reason."""

    exit_code = 2

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"certificate {source}: {reason}")
        self.source = source
        self.reason = reason


@dataclass(frozen=True)
class Certificate:
    """One checked certificate.

    ``name``: a file-safe identifier (the file stem for a directory certificate,
    the first host name for an ACME one); ``names``: the DNS names it serves,
    lower case, SANs first; ``not_before`` / ``not_after``: UTC datetimes;
    ``source``: ``dir:<path>`` or ``acme:<directory url>``; ``pem``: leaf,
    chain and key, normalised (one block per line group, no blank lines, ending
    in a newline) as HAProxy's runtime API and its config loader accept it.
    ``pem`` holds the private key: never log it.  ``path``: the file it was
    read from (``""`` for an ACME certificate).
    """

    name: str
    names: tuple[str, ...]
    issuer: str
    not_before: dt.datetime
    not_after: dt.datetime
    source: str
    pem: bytes = field(repr=False)
    fingerprint: str = ""
    path: str = ""

    def matches(self, host: str) -> bool:
        """Whether this certificate serves ``host`` (exact name or one-label wildcard)."""
        return any(name_matches(pattern, host) for pattern in self.names)

    def days_left(self, now: dt.datetime | None = None) -> float:
        now = now or utcnow()
        return (self.not_after - now).total_seconds() / 86400

    @property
    def file(self) -> str:
        """The bundle path of this certificate: ``certs/<name>.pem``."""
        return f"certs/{self.name}.pem"


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def safe_name(text: str) -> str:
    """A file-safe form of ``text`` (wildcards become ``_wildcard_``)."""
    return _SAFE_NAME.sub("_", text.replace("*", "_wildcard_"))


def file_name(stem: str) -> str:
    """The certificate name of a ``certs_dir`` file with this stem: the stem itself when it is
    file-safe (letters, digits, ``.``, ``_``, ``-``), else its :func:`safe_name` plus ``-`` and 8 hex
    digits of the stem's SHA-256, so ``a b.pem`` and ``a_b.pem`` do not share ``certs/a_b.pem``."""
    safe = safe_name(stem)
    if safe == stem:
        return stem
    return f"{safe}-{hashlib.sha256(stem.encode('utf-8', 'surrogateescape')).hexdigest()[:8]}"


def dns_name_problem(name: str) -> str | None:
    """Why ``name`` (from a certificate) is not a DNS host name it can serve, or None when it is one:
    an RFC 1123 host name (labels may also hold ``_``), or ``*.`` and one (a wildcard covers one label)."""
    host = name[2:] if name.startswith("*.") else name
    try:
        ipaddress.ip_address(host)
        return f"{name!r} is an IP address, not a DNS host name (SNI carries host names only)"
    except ValueError:
        pass
    if not _DNS_NAME.fullmatch(host) or _DIGITS_AND_DOTS.fullmatch(host):
        return (f"{name!r} is not a DNS host name (dot-separated labels of letters, digits, '-' and '_', "
                "optionally after '*.')")
    return None


def name_matches(pattern: str, host: str) -> bool:
    """``a.example.com`` matches itself; ``*.example.com`` matches exactly one extra label."""
    host = host.lower().rstrip(".")
    pattern = pattern.lower()
    if pattern.startswith("*."):
        head, _, rest = host.partition(".")
        return bool(head) and rest == pattern[2:]
    return host == pattern


def parse_pem(data: bytes, source: str, *, now: dt.datetime | None = None, name: str | None = None,
              origin: str | None = None, path: str = "") -> Certificate:
    """Check one PEM document (leaf first, then chain, plus one private key anywhere).

    Returns a :class:`Certificate`; raises :class:`CertificateError` naming
    ``source`` with the reason (no certificate, no key, two keys, unreadable,
    key does not match, expired, not yet valid, no DNS names, a name that is
    not a DNS host name).  ``path``: the file read (kept as ``Certificate.path``).
    """
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.x509.oid import ExtensionOID, NameOID
    except ImportError:
        raise CosmosError("HTTPS needs the cryptography package: pip install 'cosmos-core[https]'") from None

    now = now or utcnow()
    blocks = [m.group(0) for m in _PEM_BLOCK.finditer(data)]
    certs = [b for b in blocks if b.startswith(b"-----BEGIN CERTIFICATE-----")]
    keys = [b for b in blocks if b"PRIVATE KEY-----" in b.splitlines()[0]]
    if not certs:
        raise CertificateError(source, "no PEM certificate in the file")
    if not keys:
        raise CertificateError(source, "no PEM private key in the file (put the key after the chain)")
    if len(keys) > 1:
        raise CertificateError(source, "more than one private key in the file")
    try:
        chain = [x509.load_pem_x509_certificate(block) for block in certs]
    except ValueError:
        raise CertificateError(source, "a certificate block cannot be parsed") from None
    try:
        key = serialization.load_pem_private_key(keys[0], password=None)
    except (ValueError, TypeError):
        raise CertificateError(source, "the private key cannot be parsed (encrypted keys are not supported)") from None
    leaf = chain[0]
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(*spki) != leaf.public_key().public_bytes(*spki):
        raise CertificateError(source, "the private key does not match the certificate")
    not_before, not_after = leaf.not_valid_before_utc, leaf.not_valid_after_utc
    if not_after <= now:
        raise CertificateError(source, f"expired on {not_after:%Y-%m-%d %H:%M} UTC")
    if not_before > now:
        raise CertificateError(source, f"not valid before {not_before:%Y-%m-%d %H:%M} UTC")
    try:
        sans = leaf.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value
        names = [n.lower() for n in sans.get_values_for_type(x509.DNSName)]
    except x509.ExtensionNotFound:
        names = [str(a.value).lower() for a in leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    names = list(dict.fromkeys(n.rstrip(".") for n in names if n))
    if not names:
        raise CertificateError(source, "names no DNS host (no subjectAltName DNS entries, no CN)")
    for n in names:
        problem = dns_name_problem(n)
        if problem is not None:
            raise CertificateError(source, f"names {problem}")
    issuer = leaf.issuer.rfc4514_string() or "(empty issuer)"
    pem = b"".join(block.strip() + b"\n" for block in certs) + keys[0].strip() + b"\n"
    return Certificate(
        name=name or safe_name(names[0]),
        names=tuple(names),
        issuer=issuer,
        not_before=not_before,
        not_after=not_after,
        source=origin or source,
        pem=pem,
        fingerprint=leaf.fingerprint(hashes.SHA256()).hex(),
        path=path,
    )


def load_dir(path: str | Path, *, now: dt.datetime | None = None) -> list[Certificate]:
    """Every good ``*.pem`` file of ``path``, sorted by name.

    A bad file is skipped with one warning (``certificate_skipped``, naming the
    file and the reason).  A directory that cannot be read is a
    :class:`CertificateError`.
    """
    found, skipped = scan_dir(path, now=now)
    for file, reason in skipped:
        log.warning("certificate_skipped", file=file, reason=reason)
    return found


def scan_dir(path: str | Path, *, now: dt.datetime | None = None) -> tuple[list[Certificate], list[tuple[str, str]]]:
    """``(good certificates sorted by name, [(file, reason) of each bad *.pem file]``), logging nothing.

    Each file's certificate is named by :func:`file_name`; should two files still come to one
    name (a file named like another's hashed name), the later file (by file name) is skipped,
    its reason naming the other.  Raises :class:`CertificateError` when the directory cannot be read.
    """
    directory = Path(path)
    try:
        files = sorted(p for p in directory.iterdir() if p.suffix == ".pem" and p.is_file())
    except OSError as exc:
        raise CertificateError(str(directory), f"directory cannot be read ({exc.strerror})") from None
    found: dict[str, Certificate] = {}
    skipped: list[tuple[str, str]] = []
    for file in files:
        name = file_name(file.stem)
        if name in found:
            skipped.append((str(file), f"its certificate name {name!r} is taken by {found[name].path}"))
            continue
        try:
            data = file.read_bytes()
            cert = parse_pem(data, str(file), now=now, name=name, origin=f"dir:{directory}", path=str(file))
        except OSError as exc:
            skipped.append((str(file), f"cannot be read ({exc.strerror})"))
            continue
        except CertificateError as exc:
            skipped.append((str(file), exc.reason))
            continue
        found[name] = cert
    return [found[n] for n in sorted(found)], skipped


def dir_signature(path: str | Path) -> tuple[tuple[str, int, int, int], ...] | None:
    """A cheap fingerprint of the ``*.pem`` files of ``path``: ``(name, mtime ns, size, inode)`` each,
    sorted; ``None`` when the directory cannot be read.  A new, removed or rewritten file changes it
    (also one renamed over the old, as certificate tools do); nothing is read but directory entries."""
    try:
        entries = [(e.name, e.stat()) for e in os.scandir(path) if e.name.endswith(".pem") and e.is_file()]
    except OSError:
        return None
    return tuple(sorted((name, st.st_mtime_ns, st.st_size, st.st_ino) for name, st in entries))


def merge(*groups: Iterable[Certificate]) -> list[Certificate]:
    """One certificate per ``name``: a later group replaces an earlier one; sorted by name."""
    merged: dict[str, Certificate] = {}
    for group in groups:
        for cert in group:
            merged[cert.name] = cert
    return [merged[k] for k in sorted(merged)]


def for_host(certs: Sequence[Certificate], host: str) -> Certificate | None:
    """The certificate that serves ``host``: an exact name beats a wildcard; later expiry wins."""
    exact = [c for c in certs if host.lower() in c.names]
    pool = exact or [c for c in certs if c.matches(host)]
    return max(pool, key=lambda c: c.not_after, default=None)


def write_files(directory: str | Path, files: dict[str, bytes]) -> None:
    """Write bundle files beside a config, each atomically; ``certs/*`` and ``*.key`` with mode 0600."""
    base = Path(directory)
    for rel, data in sorted(files.items()):
        secret = rel.startswith("certs/") or rel.endswith(".key")
        write_bytes(base / rel, data, 0o600 if secret else 0o644)


def report(certs: Sequence[Certificate], hosts: Iterable[tuple[str, str, str]],
           now: dt.datetime | None = None) -> list[dict[str, object]]:
    """What ``cosmos certs`` shows: per certificate its names, issuer, expiry, source and users.

    ``hosts``: ``(table, service, host)`` for every host-routed service.  A
    service uses the certificate that :func:`for_host` picks for its host.
    """
    users: dict[str, list[str]] = {c.name: [] for c in certs}
    for table, service, host in hosts:
        chosen = for_host(certs, host)
        if chosen is not None:
            users[chosen.name].append(f"{table}/{service}")
    return [
        {
            "name": c.name,
            "names": list(c.names),
            "issuer": c.issuer,
            "not_after": c.not_after.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "days_left": round(c.days_left(now), 1),
            "source": c.source,
            "fingerprint_sha256": c.fingerprint,
            "services": sorted(users[c.name]),
        }
        for c in certs
    ]
