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
"""

from __future__ import annotations

from dataclasses import replace
from typing import Mapping

from cosmos_core.model import Change, Container, Plan, Service, Snapshot


def reconcile(stored: Mapping[str, Service], snapshot: Snapshot) -> dict[str, Service]:
    """The desired services, keyed and sorted by name."""
    running: dict[str, dict[str, Container]] = {}
    for entry in snapshot.running:
        running.setdefault(entry.service, {})[entry.container.id] = entry.container

    desired: dict[str, Service] = {}
    for name, service in stored.items():
        alive = running.get(name)
        if alive:
            desired[name] = _keep_running(service, alive)

    for candidate in snapshot.candidates:
        base = desired.get(candidate.name)
        merged = (base.containers if base else ()) + candidate.containers
        port = candidate.port if candidate.port is not None or base is None else base.port
        desired[candidate.name] = candidate.derive(port=port, containers=merged)

    return {name: desired[name] for name in sorted(desired)}


def _keep_running(service: Service, alive: Mapping[str, Container]) -> Service:
    """Rule 2: the running containers of a stored service, at their reported address."""
    stored_ports = {c.id: c.port for c in service.containers}
    containers = []
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
