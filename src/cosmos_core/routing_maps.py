"""Map-based routing: the HAProxy map files of the routes, and how the frontend looks them up.  Pure.

Each request costs three tree lookups, whatever the number of services or
where a service sorts (HAProxy indexes ``map_beg`` keys in a prefix tree and
returns the longest match):

``maps/hosts.map`` (exact hosts), key ``<host><path>/``
    ``app.example.com/`` (the whole host), ``app.example.com/api/`` (host +
    path).  Looked up with ``<request host><request path>/``: the longest key
    wins, so host + path beats the host alone, ``/api/v2`` beats ``/api``, and
    the ``/`` after each prefix keeps ``/api`` from matching ``/apifoo``.
``maps/wildcards.map`` (``*.example.com``), key ``.<parent><path>/``
    Looked up with the request host minus its first label: ``a.example.com``
    -> ``.example.com``, so a wildcard matches exactly one more label.  Only
    when no exact host matched: exact beats wildcard.
``maps/paths.map`` (path services), key ``<path>/`` (``/`` for the root)
    Only when no host matched: host rules beat path rules.

The request host is normalised in HAProxy (no port, lower case, no trailing
dot) and the request path percent-decoded except ``%2F`` (see
``cosmos_routing_host_path``); a host that is not a plain host name (a ``/``
in the Host header, say) skips the host lookups.  Each value is a backend
name (``be_<service>``).  The files are sorted by key and end with a newline,
so the same routes give the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

from cosmos_core.contracts import Route

#: A path segment that is ``.`` or ``..``, literal or percent-encoded (``%2e``/``%2E``), as a regex
#: for HAProxy's ``path`` fetch (``[.]``: no backslash escapes in the config).  Requests whose path
#: has one are refused with 400 before routing: RFC 3986 (5.2.4) removes dot segments, so
#: ``/x/../api`` *is* ``/api``, but HAProxy 2.6 can normalise a path only through
#: ``normalize-uri``, an experimental directive.  Clients remove dot segments before sending.
DOT_SEGMENT = "/([.]|%2[eE])([.]|%2[eE])?(/|$)"

#: table -> file in the bundle, in lookup order (most specific first).
MAP_FILES: Mapping[str, str] = {
    "host": "maps/hosts.map",
    "wildcard": "maps/wildcards.map",
    "path": "maps/paths.map",
}


@dataclass(frozen=True)
class RoutingPlan:
    """What the template needs: ACL routes before and after the map lookup, and the map files."""

    acl_before: tuple[Route, ...]
    acl_after: tuple[Route, ...]
    files: Mapping[str, bytes]

    @property
    def uses_maps(self) -> bool:
        return bool(self.files)

    @property
    def dot_segment(self) -> str:
        """The regex of a path with a dot segment (:data:`DOT_SEGMENT`): such requests get a 400."""
        return DOT_SEGMENT

    @property
    def map_path(self) -> Mapping[str, str]:
        """table -> map file path, for the template."""
        return MAP_FILES


def map_files(routes: Sequence[Route]) -> dict[str, bytes]:
    """``{bundle path: bytes}`` for every table (empty tables give empty files).

    A key claimed twice keeps its first route (routes come conflict-free from
    the pipeline; this only keeps the output well-formed).
    """
    entries: dict[str, dict[str, str]] = {table: {} for table in MAP_FILES}
    for route in routes:
        for table, key in route.maps:
            entries[table].setdefault(key, route.service)
    files = {}
    for table, path in MAP_FILES.items():
        lines = [f"{key} {backend}\n" for key, backend in sorted(entries[table].items())]
        files[path] = "".join(lines).encode("ascii")
    return files


def acl_only(routes: Sequence[Route]) -> RoutingPlan:
    """Every route as an ACL, no maps: for a config that must stand alone (one file, no bundle)."""
    return RoutingPlan(tuple(routes), (), {})


def plan(routes: Sequence[Route]) -> RoutingPlan:
    """Split ``routes`` (in match order) around the map lookup, which takes the place of the first map route.

    Routes of ACL-only modes (third-party) that sort before the first map route
    are checked before the maps; the others after.
    """
    first = next((i for i, r in enumerate(routes) if r.maps), len(routes))
    before = tuple(r for r in routes[:first] if not r.maps)
    after = tuple(r for r in routes[first:] if not r.maps)
    return RoutingPlan(before, after, map_files(routes))
