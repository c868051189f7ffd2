"""The item layout: pure conversions between the model and DynamoDB items.

One partition per namespace (``pk`` = the namespace, i.e. the payload's table),
so one paginated ``Query`` reads a whole namespace.  Sort keys::

    rev#<owner>              revision item  {rev, hb#<host>..., ad#<host>...}: the optimistic lock
                             (and fleet generation), plus each fleet host's heartbeat counter and address
    svc#<service>            service item   {mode, predicate, cookie?, port?, at, ver?}
    ctr#<service>#<id>       container item {host, port?, owner, host_id?, at[, expires]}

``at`` is the revision that wrote the item.  Names and container ids never
contain ``#`` (the model refuses it), so the sort key alone names the service
and the container, and ``load`` reads back only the attributes it needs
(:data:`LOAD_ATTRIBUTES`): fewer bytes, and less for botocore to parse.  Items use DynamoDB's low-level attribute values
(``{"S": ...}``, ``{"N": ...}``): no boto3 import is needed here.

Fleet mode: a container item carries ``host_id`` (the fleet host that
reported it; absent in single-host mode; ``owner`` stays ``shared``, the
writers' lock).  Heartbeats are top-level attributes ``hb#<host>`` (a counter,
``ADD``-ed by an ``UpdateItem`` that never touches ``rev``, so heartbeats never
conflict with applies) and ``ad#<host>`` (the advertised address) on the
revision item, with ``at#<host>`` (the writer's wall-clock time of that heartbeat) and ``settled`` (the latest revision whose writes all landed,
set after the last batch of a plan that touches fleet containers), so one ``GetItem`` reads the fleet generation and every host
record (:func:`decode_fleet`).  ``load`` projects neither.

Fleet plans (:func:`is_fleet_plan`) take no namespace lock: every host writes only
its own container items, and the one item hosts share, the service item, is
guarded instead (:class:`FleetOps`).  ``ver`` on the service item is a counter
that every fleet container add bumps *after* its container item landed (and that
recreates the service item if it is gone); a host that leaves a service deletes
the service item only if, after its own container deletes, a strongly consistent
read finds no container item of it left, and only on the condition that ``ver``
still holds the value read *before* that check.  So a delete can never land
after another host's add completed, and an add that lands after a delete puts
the service back itself: no transaction, no repair pass.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from cosmos_core import options as opts
from cosmos_core.errors import ValidationError
from cosmos_core.fleet import FleetView, HostRecord
from cosmos_core.grace import GRACE
from cosmos_core.model import Change, Container, Plan, Service

PK, SK = "pk", "sk"
SHARED_OWNER = "shared"
REVISION_PREFIX = "rev#"
SERVICE_PREFIX = "svc#"
CONTAINER_PREFIX = "ctr#"
#: The attribute a multi-host table enables as its TTL attribute.
EXPIRES = "expires"
HEARTBEAT_PREFIX = "hb#"
ADDRESS_PREFIX = "ad#"
#: Wall-clock time (Unix seconds) of a host's last heartbeat, by the writer's clock.
BEAT_TIME_PREFIX = "at#"
#: On the revision item: the latest revision whose writes all landed (fleet plans only).
SETTLED = "settled"
#: On a service item: bumped by every fleet container add (guards the service delete).
VERSION = "ver"
#: What ``load`` projects: everything but pk, owner, the write stamps and heartbeats.
LOAD_ATTRIBUTES = ("sk", "rev", "mode", "predicate", "cookie", "port", "host", "options", "host_id")

Item = dict[str, dict[str, Any]]


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _n(value: int) -> dict[str, str]:
    return {"N": str(value)}


def revision_key(namespace: str, owner: str = SHARED_OWNER) -> Item:
    return {PK: _s(namespace), SK: _s(REVISION_PREFIX + owner)}


def service_key(namespace: str, name: str) -> Item:
    return {PK: _s(namespace), SK: _s(SERVICE_PREFIX + name)}


def container_key(namespace: str, service: str, container_id: str) -> Item:
    return {PK: _s(namespace), SK: _s(f"{CONTAINER_PREFIX}{service}#{container_id}")}


def _service_settings(service: Service, revision: int) -> Item:
    settings: Item = {"mode": _s(service.mode), "predicate": _s(service.predicate), "at": _n(revision)}
    if service.cookie is not None:
        settings["cookie"] = _s(service.cookie)
    if service.port is not None:
        settings["port"] = _n(service.port)
    if service.options:
        settings["options"] = _s(opts.encode(service.options) or "")
    return settings


def service_item(namespace: str, service: Service, revision: int) -> Item:
    """The routing settings of ``service`` (never its containers)."""
    item = service_key(namespace, service.name)
    item.update(_service_settings(service, revision))
    return item


#: The optional settings attributes of a service item (REMOVEd by an update when unset).
OPTIONAL_SETTINGS = ("cookie", "port", "options")


def service_update(namespace: str, service: Service, revision: int, bump: bool) -> dict[str, Any]:
    """``UpdateItem`` arguments (no table name) that set ``service``'s settings in place.

    Unlike a put it keeps ``ver``; ``bump`` also adds 1 to it (a container add that
    found the service item gone puts it back this way).
    """
    settings = _service_settings(service, revision)
    names = {f"#{k}": k for k in settings} | {f"#{k}": k for k in OPTIONAL_SETTINGS if k not in settings}
    values = {f":{k}": v for k, v in settings.items()}
    expression = "SET " + ", ".join(f"#{k} = :{k}" for k in settings)
    absent = [f"#{k}" for k in OPTIONAL_SETTINGS if k not in settings]
    if absent:
        expression += " REMOVE " + ", ".join(absent)
    if bump:
        names["#ver"] = VERSION
        values[":one"] = _n(1)
        expression += " ADD #ver :one"
    return {"Key": service_key(namespace, service.name), "UpdateExpression": expression,
            "ExpressionAttributeNames": names, "ExpressionAttributeValues": values}


def container_item(
    namespace: str, service: str, container: Container, revision: int, owner: str = SHARED_OWNER
) -> Item:
    item = container_key(namespace, service, container.id)
    item.update(host=_s(container.host), owner=_s(owner), at=_n(revision))
    if container.port is not None:
        item["port"] = _n(container.port)
    if container.options:
        item["options"] = _s(opts.encode(container.options) or "")
    if container.host_id is not None:
        item["host_id"] = _s(container.host_id)
    return item


def decode_fleet(item: Item | None) -> FleetView:
    """The fleet generation and host records held by a revision item (``None``: no item yet)."""
    if not item:
        return FleetView(0)
    generation = int(item["rev"]["N"]) if "rev" in item else 0
    settled = int(item[SETTLED]["N"]) if SETTLED in item else 0
    hosts = {}
    for name, value in item.items():
        if name.startswith(HEARTBEAT_PREFIX):
            host_id = name[len(HEARTBEAT_PREFIX):]
            address = item.get(ADDRESS_PREFIX + host_id, {}).get("S")
            at = item.get(BEAT_TIME_PREFIX + host_id, {}).get("N")
            hosts[host_id] = HostRecord(host_id, int(value["N"]), address, None if at is None else float(at))
    return FleetView(generation, {h: hosts[h] for h in sorted(hosts)}, settled)


def is_fleet_change(change: Change) -> bool:
    """Whether ``change`` concerns a service some fleet host reported a container of."""
    return any(c.host_id is not None for s in (change.before, change.after) if s is not None for c in s.containers)


def is_fleet_plan(plan: Plan) -> bool:
    """A plan of fleet changes only: written without the namespace lock (see the module docstring)."""
    return bool(plan.changes) and all(is_fleet_change(change) for change in plan.changes)


def touches_fleet(plan: Plan) -> bool:
    """Whether ``plan`` writes or deletes a container some fleet host reported (fleet agents watch it)."""
    for change in plan.changes:
        for service in (change.before, change.after):
            if service is not None and any(c.host_id is not None for c in service.containers):
                return True
    return False


@dataclass(frozen=True)
class Decoded:
    """A namespace read back: its services, its revision, and container items left out."""

    services: dict[str, Service]
    revision: int
    #: sort keys of container items that cannot be served (orphans, or no port anywhere);
    #: a later write of their service repairs or removes them.
    skipped: tuple[str, ...] = ()


def decode(items: Iterable[Item], owner: str = SHARED_OWNER) -> Decoded:
    """Build the services of one namespace from its items (in any order).

    A value the model refuses raises :class:`ValidationError` naming the item.
    """
    revision = 0
    settings: dict[str, Item] = {}
    members: dict[str, list[tuple[str, str, Item]]] = {}
    for item in items:
        sk = item[SK]["S"]
        if sk == REVISION_PREFIX + owner:
            revision = int(item["rev"]["N"]) if "rev" in item else 0  # heartbeats alone create the item
        elif sk.startswith(SERVICE_PREFIX):
            settings[sk[len(SERVICE_PREFIX):]] = item
        elif sk.startswith(CONTAINER_PREFIX):
            service, _, container_id = sk[len(CONTAINER_PREFIX):].partition("#")
            members.setdefault(service, []).append((sk, container_id, item))
    services: dict[str, Service] = {}
    skipped: list[str] = []
    for name in sorted(settings):
        item = settings[name]
        try:
            port = _optional_int(item, "port")
            containers = []
            for sk, container_id, member in members.pop(name, []):
                host_id = member["host_id"]["S"] if "host_id" in member else None
                container = Container(container_id, member["host"]["S"], _optional_int(member, "port"),
                                      _options(member, opts.CONTAINER_OPTIONS, sk), host_id=host_id)
                if container.port is None and port is None:
                    skipped.append(sk)  # left by an interrupted run: nowhere to send traffic
                else:
                    containers.append(container)
            services[name] = Service(
                name=name,
                mode=item["mode"]["S"],
                predicate=item["predicate"]["S"],
                cookie=item["cookie"]["S"] if "cookie" in item else None,
                port=port,
                containers=tuple(containers),
                options=_options(item, opts.SERVICE_OPTIONS, item[SK]["S"]),
            )
        except ValidationError as exc:
            raise exc.within(f"item {item[SK]['S']}") from None
        except (KeyError, TypeError, ValueError) as exc:
            raise ValidationError(f"item {item[SK]['S']}", item, f"is malformed ({exc!r})") from None
    skipped.extend(sk for orphans in members.values() for sk, _, _ in orphans)
    return Decoded(services, revision, tuple(sorted(skipped)))


def _options(item: Item, specs: Any, where: str) -> Any:
    return opts.decode(item["options"]["S"], specs, where) if "options" in item else ()


def _optional_int(item: Item, key: str) -> int | None:
    return int(item[key]["N"]) if key in item else None


@dataclass(frozen=True)
class WriteOps:
    """What one plan writes, in the order it must be written (:meth:`phases`).

    Service puts, then container puts, then container deletes, then service
    deletes; each phase completes before the next starts.  A run that stops
    anywhere in between leaves every running container stored: at worst a
    service with too few containers (running containers rejoin it on the next
    run) or stale containers (the next run removes them).  Container items
    without a service item (a runner adding to a service another runner is
    deleting, or items written by hand) are skipped by :func:`decode`.
    """

    service_puts: list[Item] = field(default_factory=list)
    container_puts: list[Item] = field(default_factory=list)
    container_deletes: list[Item] = field(default_factory=list)
    service_deletes: list[Item] = field(default_factory=list)

    @property
    def puts(self) -> list[Item]:
        return self.service_puts + self.container_puts

    @property
    def items(self) -> int:
        return len(self.puts) + len(self.container_deletes) + len(self.service_deletes)

    def phases(self) -> list[tuple[list[Item], bool]]:
        """``(items, is_put)`` in write order, empty phases left out."""
        ordered = [
            (self.service_puts, True), (self.container_puts, True),
            (self.container_deletes, False), (self.service_deletes, False),
        ]
        return [(items, put) for items, put in ordered if items]


def write_ops(namespace: str, plan: Plan, revision: int, owner: str = SHARED_OWNER) -> WriteOps:
    """Only what ``plan`` changes: changed settings, added and removed containers."""
    ops = WriteOps()
    for change in plan.changes:
        if change.after is None:
            assert change.before is not None
            ops.container_deletes.extend(
                container_key(namespace, change.name, c.id) for c in change.before.containers
            )
            ops.service_deletes.append(service_key(namespace, change.name))
            continue
        if change.settings_changed:
            ops.service_puts.append(service_item(namespace, change.after, revision))
        ops.container_puts.extend(container_item(namespace, change.name, c, revision, owner) for c in change.added)
        ops.container_deletes.extend(container_key(namespace, change.name, c.id) for c in change.removed)
    return ops


@dataclass(frozen=True)
class FleetOps:
    """What a fleet plan writes (no lock), in order:

    1. ``settings``: services new or with changed settings, set in place (``ver`` kept);
    2. ``container_puts``;
    3. ``joined``: services that gained a container: ``ver`` + 1 if the item exists,
       else the whole item put back (by :func:`service_update` with ``bump``);
    4. ``container_deletes``;
    5. ``vacated``: services this plan deletes, or that lost every container of the
       hosts whose containers it removed: deleted only if no container item is left,
       guarded by ``ver`` (``deleting``: the plan expected the service to go).
    """

    settings: list[Service] = field(default_factory=list)
    container_puts: list[Item] = field(default_factory=list)
    joined: list[Service] = field(default_factory=list)
    container_deletes: list[Item] = field(default_factory=list)
    vacated: list[tuple[str, bool]] = field(default_factory=list)

    @property
    def written(self) -> int:
        return len(self.settings) + len(self.container_puts) + len(self.joined)


def fleet_ops(namespace: str, plan: Plan, revision: int, owner: str = SHARED_OWNER) -> FleetOps:
    """The writes of a fleet plan (:func:`is_fleet_plan`), see :class:`FleetOps`."""
    ops = FleetOps()
    for change in plan.changes:
        removed = change.before.containers if change.after is None and change.before else change.removed
        ops.container_deletes.extend(container_key(namespace, change.name, c.id) for c in removed)
        if change.after is None:
            ops.vacated.append((change.name, True))
            continue
        if change.settings_changed:
            ops.settings.append(change.after)
        added = change.added
        ops.container_puts.extend(container_item(namespace, change.name, c, revision, owner) for c in added)
        if added:
            ops.joined.append(change.after)
        # A host left a service it believes others still serve: they may be leaving at once (each seeing
        # the other), so check.  A service kept empty on purpose (its grace period) is left alone.
        leaving = {c.host_id for c in change.removed} - {c.host_id for c in change.after.containers}
        if leaving and change.after.containers and not dict(change.after.options).get(GRACE):
            ops.vacated.append((change.name, False))
    return ops


def namespace_of(item: Item) -> str:
    return item[PK]["S"]
