"""Which routes each service claims, and who keeps a route two services claim.  Pure.

A *claim* is one entry of a routing table: ``(table, key)``.  Routing modes
that route through HAProxy maps (``host``, ``path``) say their claims with
``map_claims(predicate, path) -> [(table, key), ...]``; the key is exactly the
map key (see :mod:`cosmos_core.routing_maps`), so two services claim one route
exactly when they would write the same map key.  Other modes (ACL routing)
claim ``("acl:<mode>", predicate)``.

Who keeps a route (documented in the README, "Two services, one route"):

1. a stored service that the snapshot does not change keeps the routes it has;
2. then candidates in snapshot order (payload order; the Docker source sorts
   by service name): the first claimant keeps the route;
3. every later claimant is refused: ``cosmos generate`` exits 2 naming both
   services and the route; the agent skips the later service's candidate
   (its containers) with a warning naming both, and routes the rest.

Nothing is ever dropped silently.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable, Iterable, Mapping, Sequence

from cosmos_core.errors import ValidationError
from cosmos_core.model import Service, Snapshot
from cosmos_core.reconcile import reconcile

RoutingLookup = Callable[[str, str], Any]

#: The service option (payload ``path``, label ``cosmos.path``) that adds a path prefix to a host rule.
PATH_OPTION = "path"


@dataclass(frozen=True, slots=True)
class Claim:
    table: str
    key: str

    @property
    def route(self) -> str:
        """The route as a person writes it: ``app.example.com/api``, ``*.example.com``, ``/api``."""
        if self.table.startswith("acl:"):
            return f"{self.table[4:]} {self.key}"
        key = self.key[:-1] if self.key.endswith("/") and self.key != "/" else self.key
        return "*" + key if self.table == "wildcard" else key


@dataclass(frozen=True, slots=True)
class Conflict:
    """``claimant`` was refused ``claim`` because ``holder`` has it."""

    claim: Claim
    holder: str
    claimant: str

    @property
    def message(self) -> str:
        if not self.holder:
            return f"service {self.claimant!r} sets a path, which only the host mode takes"
        return (f"route {self.claim.route} is already claimed by service {self.holder!r}; "
                f"service {self.claimant!r} is refused")


def claims(service: Service, routing: RoutingLookup) -> list[Claim]:
    """The routes ``service`` claims (deduplicated, in the mode's order)."""
    mode = routing(service.mode, f"store: {service.name}.mode")
    path = path_of(service)
    map_claims = getattr(mode, "map_claims", None)
    if map_claims is None:
        return [Claim(f"acl:{service.mode}", service.predicate)]
    return list(dict.fromkeys(Claim(table, key) for table, key in map_claims(service.predicate, path)))


def path_of(service: Service) -> str | None:
    """The service's ``path`` option (host + path routing), or None."""
    return dict(service.options).get(PATH_OPTION)


def criteria_of(service: Service, mode: Any) -> Any:
    """The mode's ACL criteria for ``service`` (as the mode returns them), with its path when it has one."""
    path = path_of(service)
    return mode.criteria(service.predicate, path) if path else mode.criteria(service.predicate)


def sort_key_of(service: Service, mode: Any) -> tuple[Any, ...]:
    """The mode's order key for ``service``, with its path when it has one."""
    path = path_of(service)
    return tuple(mode.sort_key(service.predicate, path) if path else mode.sort_key(service.predicate))


def assign(stored: Mapping[str, Service], candidates: Sequence[Service], desired: Mapping[str, Service],
           routing: RoutingLookup) -> tuple[dict[Claim, str], list[Conflict]]:
    """Every claim of ``desired`` with the service that keeps it, and the refused claims.

    ``stored`` services not among ``candidates`` come first (by name), then
    ``candidates`` in order; a service refused one route is refused all of it
    (its later claims are not assigned either).
    """
    changed = {c.name for c in candidates}
    order = [n for n in sorted(desired) if n not in changed] + [c.name for c in candidates if c.name in desired]
    owner: dict[Claim, str] = {}
    conflicts: list[Conflict] = []
    for name in dict.fromkeys(order):
        mine = claims(desired[name], routing)
        taken = [Conflict(c, owner[c], name) for c in mine if c in owner and owner[c] != name]
        if taken:
            conflicts.extend(taken)
            continue
        for claim in mine:
            owner[claim] = name
    return owner, conflicts


def settle(stored: Mapping[str, Service], snapshot: Snapshot, routing: RoutingLookup, skip: bool
           ) -> tuple[Snapshot, dict[str, Service], list[Conflict]]:
    """Reconcile ``snapshot`` with ``stored`` so that no candidate takes a route another service keeps.

    With ``skip`` False a refused candidate raises ValidationError (its
    ``predicate`` field, naming both services and the route); with ``skip``
    True it is left out of the snapshot (its containers too) and returned
    among the conflicts, for the caller to warn about.  Returns the snapshot,
    the desired services and the conflicts of refused candidates.
    """
    skipped: list[Conflict] = []
    kept = []
    for index, candidate in enumerate(snapshot.candidates):
        path = path_of(candidate)
        if path is not None and not getattr(routing(candidate.mode, f"{snapshot.candidates_key}[{index}].configMode"),
                                            "takes_path", False):
            if not skip:
                raise ValidationError(f"{snapshot.candidates_key}[{index}].path", path,
                                      f"only the host mode takes a path; the {candidate.mode!r} mode does not")
            skipped.append(Conflict(Claim(f"acl:{candidate.mode}", candidate.predicate), "", candidate.name))
            continue
        kept.append(candidate)
    if len(kept) != len(snapshot.candidates):
        snapshot = replace(snapshot, candidates=tuple(kept))
    while True:
        desired = reconcile(stored, snapshot)
        _, conflicts = assign(stored, snapshot.candidates, desired, routing)
        by_name = {c.name: i for i, c in enumerate(snapshot.candidates)}
        mine = [c for c in conflicts if c.claimant in by_name]
        if not mine:
            return snapshot, desired, skipped
        first = mine[0]
        index = by_name[first.claimant]
        if not skip:
            candidate = snapshot.candidates[index]
            raise ValidationError(f"{snapshot.candidates_key}[{index}].predicate", candidate.predicate,
                                  first.message)
        skipped.append(first)
        snapshot = replace(
            snapshot,
            candidates=tuple(c for c in snapshot.candidates if c.name != first.claimant),
            running=tuple(r for r in snapshot.running if r.service != first.claimant or first.claimant in stored),
        )


def refused(conflicts: Iterable[Conflict]) -> dict[str, Conflict]:
    """The first conflict of each refused service, by service name."""
    first: dict[str, Conflict] = {}
    for conflict in conflicts:
        first.setdefault(conflict.claimant, conflict)
    return first
