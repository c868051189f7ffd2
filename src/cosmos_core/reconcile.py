"""Pure functions: stored state + snapshot -> desired state -> plan.  No I/O here.

The rules (the original Cosmos semantics, with its defects fixed):

1. A stored service that no running container names is deleted, unless a
   candidate re-creates it.
2. A stored service keeps only those of its containers that are running; a
   running container that names a stored service it is not yet in joins it
   (with the stored port when it reports none).
3. A candidate for a stored service adds its containers, and its settings
   (mode, predicate, cookie, port) replace the stored ones; a candidate that
   gives no port keeps the stored one.
4. A candidate for a service not stored before creates it with exactly the
   candidate's containers; running containers of unknown services are ignored.
5. Containers are de-duplicated by id (the later source wins).
6. No service with a running container is ever dropped.
7. A stored service with a grace period (``cosmos.grace``) and no running
   container is kept, with no containers, until its grace ends
   (:mod:`cosmos_core.grace`; the time is the snapshot's ``at``).

Fleet mode (a snapshot with a ``host_id``): the snapshot is the truth for that
host's containers only.  Rules 1-2 apply to the containers that host owns
(``host_id`` equal, or ``None``: left by single-host mode, so a host that
switches to fleet mode still cleans them up); other hosts' containers are
kept untouched, and a stored service lives while any container of it is
stored.  Every container of the snapshot is stamped with its ``host_id``.
Which hosts are alive is not reconcile's business: rendering filters
(:func:`cosmos_core.fleet.live_services`).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Mapping

from cosmos_core import grace
from cosmos_core.model import Change, Container, Plan, Service, Snapshot


def reconcile(stored: Mapping[str, Service], snapshot: Snapshot) -> dict[str, Service]:
    """The desired services, keyed and sorted by name."""
    owner = snapshot.host_id
    running: dict[str, dict[str, Container]] = {}
    for entry in snapshot.running:
        container = entry.container if owner is None else entry.container.owned_by(owner)
        running.setdefault(entry.service, {})[container.id] = container

    desired: dict[str, Service] = {}
    for name, service in stored.items():
        alive = running.get(name)
        others: tuple[Container, ...] = ()
        if owner is not None:
            others = tuple(c for c in service.containers if c.host_id is not None and c.host_id != owner)
        if alive or others:
            desired[name] = grace.revive(_keep_running(service, alive or {}, others))
        elif (held := grace.hold(service, snapshot.at)) is not None:
            desired[name] = held  # rule 7

    for candidate in snapshot.candidates:
        base = desired.get(candidate.name)
        own = candidate.containers if owner is None else tuple(c.owned_by(owner) for c in candidate.containers)
        merged = (base.containers if base else ()) + own
        port = candidate.port if candidate.port is not None or base is None else base.port
        desired[candidate.name] = candidate.derive(port=port, containers=merged)

    return {name: desired[name] for name in sorted(desired)}


def _keep_running(service: Service, alive: Mapping[str, Container], others: tuple[Container, ...] = ()) -> Service:
    """Rule 2: the running containers of a stored service, at their reported address
    (after ``others``: other fleet hosts' containers, kept as stored)."""
    stored_ports = {c.id: c.port for c in service.containers}
    containers = list(others)
    for container in alive.values():
        port = container.port if container.port is not None else stored_ports.get(container.id)
        if port is None and service.port is None:
            continue  # nowhere to send traffic; it joins once it reports a port
        containers.append(container if container.port == port else replace(container, port=port))
    return service.derive(containers=tuple(containers))


def diff(before: Mapping[str, Service], after: Mapping[str, Service]) -> Plan:
    """The changes that turn ``before`` into ``after``, sorted by service name."""
    names = sorted(set(before) | set(after))
    return Plan(
        tuple(
            Change(name, before.get(name), after.get(name))
            for name in names
            if before.get(name) != after.get(name)
        )
    )
