"""HTTPS rendering, pure: certificate files, the crt-list and the template context.

Nothing here does I/O: certificates arrive as checked
:class:`~cosmos_core.certs.Certificate` values, and the functions return the
bundle files (``certs/<name>.pem``, ``crt-list``, ``maps/acme-challenges.map``)
and the ``https`` dict the HAProxy template renders.  Paths are relative to
the config file's directory (the template sets ``default-path config``).

Policy per service (option ``https``, see :mod:`cosmos_core.options_https`):
``off`` routes on the HTTP frontend only; ``on`` (default) on both frontends,
with the same backends; ``redirect`` answers HTTP with a 308 to the same host,
path and query on HTTPS.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from cosmos_core.contracts import Route

if TYPE_CHECKING:  # cosmos_core.certs only where certificates are loaded (start-up time)
    from cosmos_core.certs import Certificate

CRT_LIST = "crt-list"
CHALLENGE_MAP = "maps/acme-challenges.map"
CHALLENGE_PREFIX = "/.well-known/acme-challenge/"
ALPN = "h2,http/1.1"
MIN_VERSION = "TLSv1.2"
# Mozilla "intermediate" (the profile HAProxy's documentation points to), ECDHE only.
CIPHERS = (
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
)
CIPHERSUITES = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
DEFAULT_POLICY = "on"


@dataclass(frozen=True)
class TLSConfig:
    """What the HTTPS frontend needs besides the services.

    ``bind``: address:port of the HTTPS frontend; ``certificates``: checked
    certificates, one per ``name``; ``default``: the name of the certificate
    served to clients whose SNI no certificate names (``None``: refuse them,
    ``strict-sni``); ``challenges``: whether HAProxy answers ACME HTTP-01
    challenges from :data:`CHALLENGE_MAP`.
    """

    bind: str = ":443"
    certificates: tuple[Certificate, ...] = ()
    default: str | None = None
    challenges: bool = False

    def with_certificates(self, certificates: Sequence[Certificate]) -> "TLSConfig":
        from dataclasses import replace

        return replace(self, certificates=tuple(sorted(certificates, key=lambda c: c.name)))


def policy(options: Mapping[str, Any]) -> str:
    """A service's HTTPS policy (``off`` | ``on`` | ``redirect``)."""
    return str(options.get("https", DEFAULT_POLICY))


def crt_list(tls: TLSConfig) -> str:
    """The crt-list text: one certificate per line, the default one first.

    HAProxy takes the first certificate of a bind line as its default; each
    line serves the names its certificate carries (SNI filters come from the
    certificate itself).
    """
    ordered = sorted(tls.certificates, key=lambda c: (c.name != tls.default, c.name))
    return "".join(f"{cert.file}\n" for cert in ordered)


def files(tls: TLSConfig, challenges: Mapping[str, str] | None = None) -> dict[str, bytes]:
    """The bundle files: ``certs/<name>.pem`` (mode 0600 when written), ``crt-list`` and,
    with ACME, the challenge map (``token key-authorization`` per line)."""
    out = {cert.file: cert.pem for cert in tls.certificates}
    out[CRT_LIST] = crt_list(tls).encode()
    if tls.challenges:
        out[CHALLENGE_MAP] = "".join(f"{t} {v}\n" for t, v in sorted((challenges or {}).items())).encode()
    return out


def port_suffix(bind: str) -> str:
    """``""`` for port 443, else ``":<port>"`` (for redirect locations)."""
    port = bind.rpartition(":")[2]
    return "" if port == "443" else f":{port}"


def context(tls: TLSConfig | None, policies: Mapping[str, str], routes: Sequence[Route]) -> dict[str, Any] | None:
    """The template's ``https`` value, or ``None`` when HTTPS is off.

    ``policies``: backend name -> policy.  Returns ``bind`` (the whole bind
    line after ``bind``), ``routes`` (the routes served on HTTPS, in match
    order), ``off`` (backends not served on HTTPS, sorted), ``redirects`` (per redirecting service: its criteria as one
    ``{ a } || { b }`` condition), ``location`` (the redirect target format)
    and ``challenge_map`` (or ``None``).
    """
    if tls is None:
        return None
    options = f"ssl crt-list {CRT_LIST} alpn {ALPN} ssl-min-ver {MIN_VERSION} ciphers {CIPHERS} ciphersuites {CIPHERSUITES}"
    if tls.default is None:
        options += " strict-sni"
    served = [r for r in routes if policies.get(r.backend, DEFAULT_POLICY) != "off"]
    off = sorted({backend for backend, policy in policies.items() if policy == "off"})
    redirects = [
        {"service": r.backend, "condition": " || ".join(f"{{ {c} }}" for c in r.criteria)}
        for r in routes
        if policies.get(r.backend) == "redirect"
    ]
    return {
        "bind": f"{tls.bind} {options}",
        "routes": served,
        "off": off,
        "redirects": redirects,
        "location": f"https://%[req.hdr(host),field(1,:)]{port_suffix(tls.bind)}%[capture.req.uri]",
        "challenge_map": CHALLENGE_MAP if tls.challenges else None,
        "challenge_prefix": CHALLENGE_PREFIX,
    }
