"""Routing modes ``host`` (Host header, with or without a port) and ``path`` (URL path prefix)."""

from __future__ import annotations

import re

from cosmos_core import Provides, hookimpl

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOSTNAME = re.compile(rf"(?=.{{1,253}}\Z){_LABEL}(?:\.{_LABEL})*")
_SEGMENT = re.compile(r"[A-Za-z0-9._~-]+")


class HostMode:
    """``hdr(host)`` routing; ``first.example.com:80`` matches ``first.example.com``."""

    precedence = 10

    def normalize(self, predicate: str) -> str:
        host = predicate.strip().lower().rstrip(".")
        if not _HOSTNAME.fullmatch(host):
            raise ValueError("must be an RFC 1123 host name (letters, digits, '-', dot-separated labels)")
        return host

    def criteria(self, predicate: str) -> list[str]:
        # field(1,:) drops a ":port" suffix from the Host header before comparing.
        return [f"req.hdr(host),field(1,:) -m str -i {predicate}"]

    def sort_key(self, predicate: str) -> tuple[int, str]:
        return (0, predicate)


class PathMode:
    """Path-prefix routing: ``/app`` matches ``/app`` and ``/app/...``, not ``/appfoo``."""

    precedence = 20

    def normalize(self, predicate: str) -> str:
        segments = predicate.strip().strip("/").split("/")
        if segments == [""]:
            return "/"
        for segment in segments:
            if not _SEGMENT.fullmatch(segment) or segment in (".", ".."):
                raise ValueError(
                    "must be a URL path of segments made of letters, digits, '.', '_', '~', '-' "
                    "(no empty, '.' or '..' segments)"
                )
        return "/" + "/".join(segments)

    def criteria(self, predicate: str) -> list[str]:
        if predicate == "/":
            return ["path_beg /"]
        # Two lines with one ACL name are ORed by HAProxy.
        return [f"path {predicate}", f"path_beg {predicate}/"]

    def sort_key(self, predicate: str) -> tuple[int, str]:
        # Longer prefixes first, so /api/v2 wins over /api; "/" (catch-all) last.
        return (-len(predicate), predicate)


@hookimpl
def cosmos_routing_modes() -> list[Provides]:
    return [
        Provides("host", HostMode, "route by Host header"),
        Provides("path", PathMode, "route by URL path prefix"),
    ]
