"""Fleet mode: host records, leases judged on the observer's own clock, and the render filter.

Many ``cosmos watch`` agents (one per Docker host) share one store namespace.
Each reports its own containers (snapshots carry a ``host_id``, see
:mod:`cosmos_core.reconcile`) and renews a *host record* every ``heartbeat``
seconds: a counter that only goes up, plus the host's advertised address.
Every observer (each agent, ``cosmos fleet status``) remembers, on its own
monotonic clock, when each host's counter last advanced; a host whose counter
has not advanced for ``lease`` seconds is *dead* and its containers leave the
rendered config (they stay stored, so a host that comes back is routed again
at once; ``cosmos fleet forget HOST`` removes them).  No clock is compared
across hosts, and nothing relies on TTL, transactions or streams.

The *fleet generation* is the namespace's revision (the optimistic-lock token
every apply bumps): an agent reads it with the host records in one cheap
request each second and re-renders only when it, or the set of live hosts,
changed.

Everything here is pure (the clock is injected); the store side is the
:class:`FleetStore` protocol, implemented by the SQLite and DynamoDB stores.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from cosmos_core.model import Service

DEFAULT_HEARTBEAT = 5.0
#: The lease, in heartbeats, when none is set.
LEASE_HEARTBEATS = 3


@dataclass(frozen=True)
class HostRecord:
    """What the store holds about one host: its heartbeat counter and advertised address.

    ``at``: the wall-clock time (Unix seconds) of the last heartbeat, as read by the clock of
    whoever wrote it (``None``: not recorded).  Agents write their own clocks, so across hosts it
    is information only (``cosmos fleet status``); a central service that records every host
    itself (the Lambda handler) judges liveness by it, on its own clock.
    """

    host_id: str
    beats: int
    address: str | None = None
    at: float | None = field(default=None, compare=False)  # information: two reads compare by counter and address


@dataclass(frozen=True)
class FleetView:
    """One read of a namespace's fleet: its generation (revision) and host records by id.

    ``settled`` is the latest generation whose writes have all landed (a store that writes
    a plan atomically reports its generation).  A store that takes the lock before writing
    (DynamoDB) moves ``generation`` first and ``settled`` after its last write, so an
    observer woken by the first change is woken again once the write is complete.
    """

    generation: int
    hosts: Mapping[str, HostRecord] = field(default_factory=dict)
    settled: int = 0

    @property
    def key(self) -> tuple[int, int]:
        """What an observer compares to decide whether the stored state may have changed."""
        return (self.generation, self.settled)


@runtime_checkable
class FleetStore(Protocol):
    """The optional store capability fleet mode needs (SQLite and DynamoDB have it)."""

    def heartbeat(self, table: str, host_id: str, address: str | None, at: float | None = None) -> FleetView:
        """Add 1 to ``host_id``'s counter in ``table`` (creating the record), store its address and
        ``at`` (Unix seconds; default: this process's wall clock, ``time.time()``); return the fleet
        as it is after the write (so a heartbeat doubles as a read).

        Must not change the namespace's revision, so it never conflicts with an apply.
        """

    def fleet(self, table: str) -> FleetView:
        """The generation and every host record of ``table``: one cheap read."""

    def forget_host(self, table: str, host_id: str) -> bool:
        """Delete ``host_id``'s record; ``False`` if there was none.  Containers are left to the caller."""


def lease_for(heartbeat: float, lease: float | None) -> float:
    """The lease in seconds: ``lease`` if set, else :data:`LEASE_HEARTBEATS` heartbeats."""
    return lease if lease is not None else LEASE_HEARTBEATS * heartbeat


def checked_timing(heartbeat: float, lease: float | None) -> tuple[float, float]:
    """``(heartbeat, lease)`` in seconds, checked as every command reads them (``cosmos watch``,
    ``cosmos serve``, ``cosmos fleet status``): the heartbeat a positive number, the lease (set,
    or :data:`LEASE_HEARTBEATS` heartbeats) longer than the heartbeat.

    Raises :class:`~cosmos_core.errors.ValidationError` naming ``heartbeat`` or ``lease``.
    """
    from cosmos_core.errors import ValidationError

    if not (isinstance(heartbeat, (int, float)) and 0 < heartbeat < float("inf")):
        raise ValidationError("heartbeat", heartbeat, "must be a positive number of seconds")
    the_lease = lease_for(heartbeat, lease)
    if not (isinstance(the_lease, (int, float)) and heartbeat < the_lease < float("inf")):
        raise ValidationError("lease", lease, f"must be a number of seconds longer than the heartbeat ({heartbeat:g} s)")
    return heartbeat, the_lease


@dataclass
class _Seen:
    beats: int
    advanced_at: float  # observer clock when the counter last changed (or was first seen)


class Liveness:
    """Which hosts are alive, as one observer sees it.

    Feed it every successful store read with :meth:`observe`.  A host is
    alive while its counter advanced within ``lease`` seconds *of the latest
    successful read*: when the store cannot be read (a partition), nothing
    expires, because the observer cannot tell a dead host from its own blind
    spot.  A host seen for the first time gets a full lease from that moment.
    A host without a record (it never sent a heartbeat: a payload source, a
    host of a ``cosmos serve`` deployment) is always alive; so is ``me``.
    """

    def __init__(self, lease: float, me: str | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        if not lease > 0:
            raise ValueError("lease must be positive")
        self.lease = lease
        self.me = me
        self.clock = clock
        self._seen: dict[str, _Seen] = {}
        self._observed_at: float | None = None
        self.generation: int | None = None
        self._key: tuple[int, int] | None = None
        self.addresses: dict[str, str | None] = {}

    def observe(self, view: FleetView) -> bool:
        """Record a read of the fleet; ``True`` when the generation or the dead set changed."""
        now = self.clock()
        before = (self._key, self.dead())
        seen: dict[str, _Seen] = {}
        for host_id, record in view.hosts.items():  # a host without a record (forgotten) has no lease
            old = self._seen.get(host_id)
            seen[host_id] = old if old is not None and old.beats == record.beats else _Seen(record.beats, now)
        self._seen = seen  # swapped whole: renders on other threads read a consistent dict
        self.addresses = {h: r.address for h, r in view.hosts.items()}
        self._observed_at = now
        self.generation, self._key = view.generation, view.key
        return (self._key, self.dead()) != before

    def age(self, host_id: str) -> float | None:
        """Seconds since ``host_id``'s counter last advanced, at the latest read (``None``: no record)."""
        seen = self._seen.get(host_id)
        if seen is None or self._observed_at is None:
            return None
        return self._observed_at - seen.advanced_at

    def alive(self, host_id: str | None) -> bool:
        if host_id is None or host_id == self.me:
            return True
        age = self.age(host_id)
        return age is None or age < self.lease

    def dead(self) -> frozenset[str]:
        """Host ids with a record whose lease ran out (never ``me``)."""
        return frozenset(h for h in self._seen if not self.alive(h))

    def hosts(self) -> list[str]:
        return sorted(self._seen)


@dataclass(frozen=True)
class DeadHosts:
    """A verdict made once (by a central service, for one request): what rendering asks ``dead()``."""

    hosts: frozenset[str] = frozenset()

    def dead(self) -> frozenset[str]:
        return self.hosts


class PostedHosts:
    """Liveness of hosts that report to one central process (``cosmos serve``), on its monotonic clock.

    A host is alive while it posted within ``lease`` seconds.  A host first seen in the stored
    state (it posted before this process started) gets a full lease from that moment.  Thread-safe.
    """

    def __init__(self, lease: float, clock: Callable[[], float] = time.monotonic) -> None:
        if not lease > 0:
            raise ValueError("lease must be positive")
        self.lease, self.clock = lease, clock
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()

    def posted(self, host_id: str) -> None:
        with self._lock:
            self._last[host_id] = self.clock()

    def seen(self, host_ids: Iterable[str | None]) -> None:
        with self._lock:
            now = self.clock()
            for host_id in host_ids:
                if host_id is not None:
                    self._last.setdefault(host_id, now)

    def dead(self, me: str | None = None) -> frozenset[str]:
        """Hosts silent for ``lease`` seconds or more (never ``me``, the host posting now)."""
        with self._lock:
            now = self.clock()
            return frozenset(h for h, t in self._last.items() if h != me and now - t >= self.lease)

    def live(self) -> frozenset[str]:
        """Hosts that posted (or were first seen stored) less than ``lease`` seconds ago."""
        with self._lock:
            now = self.clock()
            return frozenset(h for h, t in self._last.items() if now - t < self.lease)

    def age(self, host_id: str) -> float | None:
        """Seconds since ``host_id`` last posted (``None``: never seen)."""
        with self._lock:
            last = self._last.get(host_id)
            return None if last is None else self.clock() - last


class Verdicts:
    """The last dead set each observer saw, per table: logs ``host_dead`` / ``host_alive`` once per change.

    Call :meth:`update` with every verdict (each agent read, each request a central service
    judges); a host is logged when it joins the dead set and when it leaves it (it beats or
    posts again).  ``log`` is a structlog logger (passed in: this module does no I/O itself).
    Thread-safe.
    """

    def __init__(self, log: Any) -> None:
        self.log = log
        self._dead: dict[str, frozenset[str]] = {}
        self._lock = threading.Lock()

    def update(self, table: str, dead: frozenset[str], lease: float,
               age: Callable[[str], float | None] = lambda host: None) -> tuple[list[str], list[str]]:
        """Note ``table``'s dead set; return (and log) ``(died, returned)``, sorted host ids.

        ``age(host)``: seconds since the host was last heard from, logged as ``silent_s``.
        """
        with self._lock:
            before = self._dead.get(table, frozenset())
            if dead == before:
                return [], []
            self._dead[table] = dead
        died, returned = sorted(dead - before), sorted(before - dead)
        for host in returned:
            self.log.info("host_alive", host=host, table=table, detail="its containers are routed again")
        for host in died:
            silent = age(host)
            self.log.warning("host_dead", host=host, table=table, lease_s=lease,
                             silent_s=None if silent is None else round(silent, 1),
                             detail="its containers leave the rendered config (they stay stored)")
        return died, returned


def stale_hosts(view: FleetView, now: float, lease: float, me: str | None = None) -> frozenset[str]:
    """Hosts whose recorded heartbeat time (``HostRecord.at``) is ``lease`` seconds or more before ``now``.

    Sound only when one clock wrote every ``at`` and reads ``now`` (the Lambda handler: the
    service's own clock); a record without ``at`` is never judged, and ``me`` never.
    """
    return frozenset(h for h, r in view.hosts.items()
                     if h != me and r.at is not None and now - r.at >= lease)


def live_services(services: Mapping[str, Service], dead: frozenset[str] | set[str]) -> dict[str, Service]:
    """``services`` without the containers of ``dead`` hosts; a service left with none is left out.

    Pure and order-preserving, so every observer that judges the same hosts
    dead renders the same bytes.  With no dead host it returns the services as given.
    """
    if not dead:
        return dict(services)
    kept: dict[str, Service] = {}
    for name, service in services.items():
        if not any(c.host_id in dead for c in service.containers):
            kept[name] = service
            continue
        containers = tuple(c for c in service.containers if c.host_id not in dead)
        if containers:
            kept[name] = service.derive(containers=containers)
    return kept


def containers_per_host(services: Mapping[str, Service]) -> dict[str | None, int]:
    """How many stored containers each host reported (``None``: single-host mode)."""
    counts: dict[str | None, int] = {}
    for service in services.values():
        for container in service.containers:
            counts[container.host_id] = counts.get(container.host_id, 0) + 1
    return counts


def without_host(services: Mapping[str, Service], host_id: str) -> dict[str, Service]:
    """``services`` with every container of ``host_id`` removed (``cosmos fleet forget``).

    A service left without containers goes, as reconcile rule 1 would have it;
    single-host containers (no host id) stay.
    """
    kept: dict[str, Service] = {}
    for name, service in services.items():
        containers = tuple(c for c in service.containers if c.host_id != host_id)
        if len(containers) == len(service.containers):
            kept[name] = service
        elif containers:
            kept[name] = service.derive(containers=containers)
    return kept


@dataclass(frozen=True)
class HostReport:
    """One line of ``cosmos fleet status``."""

    host_id: str
    beats: int | None  # None: containers stored, but the host never sent a heartbeat
    address: str | None
    containers: int
    state: str  # alive | silent | dead | no-record | unjudged (not observed: no verdict)
    age: float | None  # seconds since the counter last advanced, when it did within the sample
    at: float | None = None  # the host's own wall-clock time of its last heartbeat (information only)


def report(first: FleetView, last: FleetView, sample: float | None, lease: float,
           advanced_at: Mapping[str, float], services: Mapping[str, Service]) -> list[HostReport]:
    """Judge hosts from two reads ``sample`` seconds apart (``advanced_at``: seconds before the
    last read when each host's counter was last seen to advance).

    ``alive``: the counter advanced within the sample; ``dead``: it did not, over a sample
    at least as long as the lease; ``silent``: it did not, over a shorter sample.  With
    ``sample=None`` (one read, nothing observed) every host with a record is ``unjudged``.
    """
    counts = containers_per_host(services)
    hosts = sorted(set(last.hosts) | {h for h in counts if h is not None})
    lines = []
    for host_id in hosts:
        record = last.hosts.get(host_id)
        if record is None:
            lines.append(HostReport(host_id, None, None, counts.get(host_id, 0), "no-record", None))
            continue
        age = advanced_at.get(host_id)
        if sample is None:
            state = "unjudged"
        else:
            state = "alive" if age is not None else ("dead" if sample >= lease else "silent")
        lines.append(HostReport(host_id, record.beats, record.address, counts.get(host_id, 0), state, age, record.at))
    return lines
