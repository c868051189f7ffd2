"""Routing modes ``host`` (Host header, with or without a port) and ``path`` (URL path prefix)."""

from __future__ import annotations

import re

from cosmos_core import Provides, hookimpl
from cosmos_core.options_routing import normalize_path

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOSTNAME = re.compile(rf"(?=.{{1,253}}\Z){_LABEL}(?:\.{_LABEL})*")




def path_key(path: str) -> str:
    """A path prefix as a map key: ``/api`` -> ``/api/``, ``/`` -> ``/``.

    The request's key is its path plus ``/``, so the prefix ``/api/`` matches
    ``/api`` and ``/api/...`` but not ``/apifoo``.
    """
    return path if path == "/" else path + "/"

# The request's path with percent-encoded characters decoded (RFC 3986 6.2.2.2), except
# "%2F": an encoded "/" is data, not a segment separator, so it stays encoded ("%252F"
# decodes to "%2F").  "%25" is decoded once ("%2561" stays "%61").  Predicates hold only
# unreserved characters and "/", so decoding reserved ones can never create a match.
REQUEST_PATH = "path,regsub(%2[fF],%252F,g),url_dec"


class HostMode:
    """Host-header routing: one or more hosts, exact or ``*.``-wildcard, optionally with a path.

    ``predicate`` lists hosts separated by commas (``example.com,www.example.com``);
    ``*.example.com`` matches exactly one more label (``a.example.com``, not
    ``example.com`` nor ``a.b.example.com``).  The Host header matches with or
    without a port and a trailing dot, in any case.  The service option ``path``
    narrows the rule to a path prefix.
    """

    precedence = 10
    takes_path = True

    def normalize(self, predicate: str) -> str:
        hosts = []
        for raw in predicate.split(","):
            host = raw.strip().lower()
            host = host[:-1] if host.endswith(".") else host
            name = host[2:] if host.startswith("*.") else host
            if not _HOSTNAME.fullmatch(name):
                raise ValueError("must be RFC 1123 host names (letters, digits, '-', dot-separated labels), "
                                 "each optionally '*.'-prefixed, separated by commas")
            hosts.append(host)
        return ",".join(sorted(set(hosts)))

    def criteria(self, predicate: str, path: str | None = None) -> list[str]:
        """ACL lines (for templates that route by ACL; the built-in template uses maps)."""
        exact = [h for h in predicate.split(",") if not h.startswith("*.")]
        wild = [h[1:] for h in predicate.split(",") if h.startswith("*.")]
        if path and path != "/":
            # One ACL line must hold host and path: a regex over the decoded Host + path.
            hosts = "|".join([h.replace(".", "[.]") for h in exact] + ["[^.:/]+" + h.replace(".", "[.]") for h in wild])
            prefix = path.replace(".", "[.]")
            return [f"base,regsub(%2[fF],%252F,g),url_dec -m reg ^(?i:{hosts})[.]?(?::[0-9]*)?{prefix}(?:/|$)"]
        # Each host also in its absolute form ("a.com."): as cheap as one pattern, no converter per ACL.
        lines = []
        if exact:
            lines.append(f"req.hdr(host),field(1,:) -m str -i {' '.join(p for h in exact for p in (h, h + '.'))}")
        if wild:
            # The first label must not be empty: it becomes "*" ("a.example.com" -> "*.example.com"),
            # so ".example.com" (an empty label) stays as it is and matches nothing.
            lines.append(f"req.hdr(host),field(1,:),regsub(^[^.]+[.],*.) -m str -i "
                         f"{' '.join(p for h in wild for p in ('*' + h, '*' + h + '.'))}")
        return lines

    def sort_key(self, predicate: str, path: str | None = None) -> tuple[int, int, str]:
        """ACL order (maps need none): exact hosts before wildcards, longer paths first."""
        wildcard = any(h.startswith("*.") for h in predicate.split(","))
        return (int(wildcard), -len(path or ""), predicate)

    def map_claims(self, predicate: str, path: str | None = None) -> list[tuple[str, str]]:
        """Map entries ``(table, key)``: ``("host", "app.example.com/")``,
        ``("wildcard", ".example.com/api/")``; a path adds its prefix."""
        suffix = path_key(path or "/")
        return [("wildcard", host[1:] + suffix) if host.startswith("*.") else ("host", host + suffix)
                for host in predicate.split(",")]


class PathMode:
    """Path-prefix routing: ``/app`` matches ``/app`` and ``/app/...``, not ``/appfoo``."""

    precedence = 20

    def normalize(self, predicate: str) -> str:
        return normalize_path(predicate)

    def criteria(self, predicate: str) -> list[str]:
        if predicate == "/":
            return ["path_beg /"]
        # Lines with one ACL name are ORed by HAProxy.  The decoded path decides; the raw
        # lines only matter when the path cannot be decoded (a stray '%'): a raw match
        # is always a decoded match too.
        return [f"{REQUEST_PATH} -m str {predicate}", f"{REQUEST_PATH} -m beg {predicate}/",
                f"path {predicate}", f"path_beg {predicate}/"]

    def map_claims(self, predicate: str, path: str | None = None) -> list[tuple[str, str]]:
        """Map entries ``(table, key)``: ``("path", "/api/")``."""
        return [("path", path_key(predicate))]

    def sort_key(self, predicate: str) -> tuple[int, str]:
        # Longer prefixes first, so /api/v2 wins over /api; "/" (catch-all) last.
        return (-len(predicate), predicate)


@hookimpl
def cosmos_routing_modes() -> list[Provides]:
    return [
        Provides("host", HostMode, "route by Host header"),
        Provides("path", PathMode, "route by URL path prefix"),
    ]
