"""The ``docker`` event source: a full sync, then one snapshot per settled burst of events.

* Connects with ``docker.from_env()`` (``DOCKER_HOST``, ``DOCKER_TLS_VERIFY``,
  ``DOCKER_CERT_PATH``).
* Subscribes to container events *before* listing, so nothing that happens
  during the sync is lost; every container event marks its container dirty.
* Bursts are coalesced by :class:`~cosmos_core.debounce.Debouncer`'s interval
  rule: an event after ``debounce_interval`` (0.25 s) without a pass is acted on
  at once, a sooner one waits until that interval has passed, and a storm
  (``debounce_storm_containers`` new services within 0.6 s, services read from
  the events' ``cosmos.service`` label) is gathered until it calms down.  Containers
  created but not started yet are announced to the debouncer: when that many new
  services are waiting to start (``docker compose up`` creates all first), the
  storm is seen with the first start, and its batch stays open until they all started.
* Each snapshot is the full picture of the host: one ``list`` call, an
  ``inspect`` of every container that is new or dirty (the verdicts of the
  others are cached), and :func:`labels.snapshot`.
* When the daemon goes away (a Docker SDK, HTTP or socket error), reconnects
  with exponential backoff and resyncs from scratch (the cache is dropped), so
  events missed in the gap cannot leave stale or missing backends.  Any other
  exception is a bug: it ends the source and the agent logs it as an error.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

from cosmos_core.backoff import Backoff
from cosmos_core.debounce import Debouncer
from cosmos_core.logs import get_logger
from cosmos_core.model import Snapshot
from cosmos_core.settings import Settings
from cosmos_events_docker import labels

log = get_logger("cosmos.events.docker")

#: Event actions that may change what is routable ("health_status: healthy" too).
ACTIONS = frozenset(
    {"start", "restart", "die", "stop", "kill", "destroy", "pause", "unpause", "health_status", "rename", "update"}
)
LOST = "__lost__"  # queue marker: the event stream ended
CLOSED = "__closed__"  # queue marker: close() was called
#: Reconnect delays: 0.2 s doubling to 5 s.
RECONNECT = Backoff(0.2, 5.0)
backoff = RECONNECT.delay  # seconds before reconnect attempt ``n`` (1-based)
STORM_WINDOW = 0.6  # seconds: debounce_storm_containers new services within this window are a storm
SERVICE_LABEL = "cosmos.service"


#: Network events that change a container's addresses.
NETWORK_ACTIONS = frozenset({"connect", "disconnect"})


def relevant(event: dict[str, Any]) -> str | None:
    """The container id of an event that may change routing, else ``None``."""
    action = str(event.get("Action") or event.get("status") or "").split(":", 1)[0]
    actor = event.get("Actor") or {}
    if event.get("Type") == "network":
        if action not in NETWORK_ACTIONS:
            return None
        return str((actor.get("Attributes") or {}).get("container") or "") or None
    if event.get("Type") != "container" or action not in ACTIONS:
        return None
    return str(event.get("id") or actor.get("ID") or "") or None


#: Signals of a ``kill`` event that end a container (``docker stop`` sends SIGTERM, then SIGKILL).
DEADLY = frozenset({"2", "3", "9", "15", "SIGINT", "SIGQUIT", "SIGKILL", "SIGTERM"})
#: Events after which a container that was being stopped is alive again.
REVIVED = frozenset({"start", "restart", "unpause"})
#: Events that end a container's "created, not started yet" state (the storm rule's pending creations).
SETTLED = frozenset({"start", "restart", "die", "destroy"})


def dying(event: dict[str, Any]) -> bool | None:
    """``True`` for a deadly ``kill`` (drain the container now, before it exits), ``False`` when
    the container came back (start/restart/unpause), ``None`` for any other event."""
    if event.get("Type") != "container":
        return None
    action = str(event.get("Action") or event.get("status") or "")
    if action == "kill":
        signal = str(((event.get("Actor") or {}).get("Attributes") or {}).get("signal") or "15")
        return signal in DEADLY
    return False if action in REVIVED else None


def event_time(event: dict[str, Any]) -> float:
    """When the daemon saw ``event`` (Unix seconds; now when the event carries no time)."""
    nanos = event.get("timeNano")
    now = time.time()
    return min(now, nanos / 1e9) if isinstance(nanos, int) and nanos > 0 else now


class DockerSource:
    """Yields a :class:`Snapshot` at start, after each burst, and after each reconnect.

    Each snapshot is the host's whole truth (``supersedes``): an agent that falls
    behind runs a pass for the newest one only.
    """

    supersedes = True

    def __init__(self, settings: Settings) -> None:
        from cosmos_events_docker import plugin as p

        self.table = settings.table
        self.name_filter = settings.option(p.NAME_FILTER) or None
        self.advertise = settings.advertise_address or None
        self.debouncer: Debouncer[str] = Debouncer(
            settings.option(p.DEBOUNCE_QUIET),
            settings.option(p.DEBOUNCE_MAX_WAIT),
            final=lambda item: item in (LOST, CLOSED),
            leading=True,
            storm_items=settings.option(p.DEBOUNCE_STORM_CONTAINERS),
            storm_window=STORM_WINDOW,
            storm_quiet=settings.option(p.DEBOUNCE_STORM_QUIET),
            storm_max_wait=settings.option(p.DEBOUNCE_STORM_MAX_WAIT),
            min_interval=settings.option(p.DEBOUNCE_INTERVAL),
            key=self._service_of,
        )
        self._services: dict[str, str] = {}  # container id -> its cosmos.service label (from events)
        self._dying: set[str] = set()  # containers sent a deadly signal: no new requests (drain before death)
        self._dying_lock = threading.Lock()
        self._late: set[str] = set()  # network events of containers not running yet: inspected with the next pass
        self.check: labels.PredicateCheck | None = None
        self._queue: queue.Queue[str] = queue.Queue()
        self._closed = threading.Event()
        self._stream: Any = None
        self._client: Any = None
        self._cache: dict[str, labels.Parsed] = {}
        self._warned: dict[str, str] = {}  # container id -> the problem warned about
        self._warned_labels: dict[str, tuple[str, ...]] = {}  # container id -> unknown labels warned about
        self._first_event_at: float | None = None  # the first event of the current burst (Snapshot.at)
        self._filtered: set[str] = set()  # containers whose name the name filter excludes (for network events)

    # ------------------------------------------------------------------ wiring

    def use_routing(self, routing: labels.RoutingLookup) -> None:
        """Validate predicates with the installed routing modes (the agent calls this)."""
        self.check = labels.routing_check(routing)
        self._cache.clear()

    def close(self) -> None:
        """Stop at the next opportunity; safe from a signal handler."""
        self._closed.set()
        self._queue.put(CLOSED)
        if self._stream is not None:
            _quietly(self._stream.close)

    # --------------------------------------------------------------- snapshots

    def snapshots(self) -> Iterator[Snapshot]:
        attempt = 0
        while not self._closed.is_set():
            try:
                client = self._connect()
                self._follow(client)
                self._cache.clear()
                snap = self.sync(client, dirty=set())
            except Exception as exc:  # noqa: BLE001 - docker/requests errors: daemon gone
                if not outage(exc):
                    raise  # a bug, not an outage: the agent logs it as an error
                attempt += 1
                delay = backoff(attempt)
                log.warning("docker_unavailable", error=_describe(exc), attempt=attempt, retry_in_s=delay)
                self._closed.wait(delay)
                continue
            if attempt:
                log.info("docker_reconnected", attempts=attempt)
            attempt = 0
            yield snap
            yield from self._events(client)

    def _events(self, client: Any) -> Iterator[Snapshot]:
        """Snapshots after each burst until the stream is lost or the source closed."""
        while not self._closed.is_set():
            batch = self.debouncer.collect(self._next_event, first_timeout=1.0)
            if not batch or CLOSED in batch:
                continue
            dirty = {item for item in batch if item not in (LOST, CLOSED)}
            first_event_at, self._first_event_at = self._first_event_at, None
            try:
                snap = self.sync(client, dirty)
            except Exception as exc:  # noqa: BLE001
                if not outage(exc):
                    raise
                log.warning("docker_sync_failed", error=_describe(exc))
                return
            yield replace(snap, at=first_event_at) if first_event_at is not None else snap
            if LOST in batch:
                log.warning("docker_events_lost")
                return

    def _connect(self) -> Any:
        import docker

        if self._stream is not None:
            _quietly(self._stream.close)
            self._stream = None
        if self._client is not None:
            _quietly(self._client.close)
        client = docker.from_env()
        client.ping()
        self._client = client
        return client

    def _service_of(self, container_id: str) -> str:
        """What a storm counts: the service a container claims (from its event's labels), else the container."""
        return self._services.get(container_id, container_id)

    def _next_event(self, timeout: float | None) -> str:
        return self._queue.get(timeout=timeout)

    def _follow(self, client: Any) -> None:
        """Start a thread that feeds container events into the queue."""
        self._queue = queue.Queue()
        stream = client.events(decode=True, filters={"type": ["container", "network"]})
        self._stream = stream
        target = self._queue

        def pump() -> None:
            try:
                for event in stream:
                    self._on_event(event, target)
            except Exception as exc:  # noqa: BLE001 - the connection dropped
                if not self._closed.is_set():
                    log.debug("docker_event_stream_error", error=_describe(exc))
            finally:
                target.put(LOST)

        threading.Thread(target=pump, name="docker-events", daemon=True).start()

    def wanted(self, event: dict[str, Any]) -> str | None:
        """:func:`relevant`, minus the events of containers the name filter excludes (they never route,
        so a pass for them would reconcile and render the same config again).

        A container event is kept when its ``name`` (or, for ``rename``, its ``oldName``) contains the
        filter, or carries no name; a network event, which names the network and not the container, is
        dropped when its container is known to be excluded (from an earlier event or sync).
        """
        container_id = relevant(event)
        if not self.name_filter:
            return container_id
        if event.get("Type") != "container":
            return None if container_id is None or container_id in self._filtered else container_id
        # Every named container event teaches the verdict, also those that start no pass (``create``
        # comes before the network ``connect`` of ``docker run``, so that connect is dropped too).
        actor = event.get("Actor") or {}
        attributes = actor.get("Attributes") or {}
        names = [str(attributes[key]).lstrip("/") for key in ("name", "oldName") if attributes.get(key)]
        cid = container_id or str(event.get("id") or actor.get("ID") or "")
        if names and not any(self.name_filter in name for name in names):
            if cid:
                self._filtered.add(cid)
            return None
        if cid and (names or container_id is not None):
            self._filtered.discard(cid)
        return container_id

    def _on_event(self, event: dict[str, Any], target: queue.Queue[str]) -> None:
        """Record one daemon event; queue its container when the event may change routing now.

        * A container event's ``cosmos.service`` label is remembered (from
          ``create`` on), so the storm rule counts the container as its service.
        * A ``create`` tells the debouncer that the container's service is on its
          way (:meth:`Debouncer.created`), its ``start`` (or ``die``/``destroy``)
          that it no longer is: many new services created and not started yet are
          a storm from the first start on (``docker compose up`` creates all first).
        * Events of containers ``name_filter`` excludes start no pass (:meth:`wanted`).
        * A network event of a container that was not running at the last sync
          (``docker run`` connects the network *before* it starts the container)
          starts no pass: the container is only marked, and inspected again with
          the next pass.  Its ``start`` event is the one that counts, and it is
          not held back by a pass for the ``connect`` just before.
        """
        actor = (event.get("Actor") or {}).get("Attributes") or {}
        is_container = event.get("Type") == "container"
        container_id = self.wanted(event)
        if is_container:
            service = actor.get(SERVICE_LABEL)
            cid = str(event.get("id") or (event.get("Actor") or {}).get("ID") or "")
            if service and cid:
                if len(self._services) > 10_000:
                    self._services.clear()
                self._services[cid] = f"service:{service}"
            action = str(event.get("Action") or event.get("status") or "")
            if action == "create" and cid and cid not in self._filtered:
                self.debouncer.created(cid, self._service_of(cid))  # a storm on its way (`docker compose up`)
            elif action in SETTLED:
                self.debouncer.settled(cid)  # before its start is queued: the debouncer no longer awaits it
        if not container_id:
            return
        verdict = dying(event)
        with self._dying_lock:
            if verdict is True:
                self._dying.add(container_id)
            elif verdict is False:
                self._dying.discard(container_id)
            if not is_container and container_id not in self._cache:
                self._late.add(container_id)
                return
        if self._first_event_at is None:
            self._first_event_at = event_time(event)
        target.put(container_id)

    # --------------------------------------------------------------------- sync

    def sync(self, client: Any, dirty: set[str]) -> Snapshot:
        """The host's full picture: list, inspect what is new or dirty, build the snapshot."""
        import docker.errors

        started = time.perf_counter()
        listed = {row["Id"] for row in client.api.containers()}
        for gone in set(self._cache) - listed:
            del self._cache[gone]
            self._warned.pop(gone, None)
            self._warned_labels.pop(gone, None)
        self._filtered &= listed
        with self._dying_lock:
            self._dying &= listed
            dying = set(self._dying)
            dirty = dirty | self._late
            self._late = set()
        inspected = 0
        for container_id in sorted(listed):
            if container_id in self._cache and container_id not in dirty:
                continue
            try:
                attrs = client.api.inspect_container(container_id)
            except docker.errors.NotFound:
                self._cache.pop(container_id, None)
                continue
            inspected += 1
            if self.name_filter and self.name_filter not in labels.container_name(attrs):
                self._filtered.add(container_id)
            parsed = labels.parse(attrs, self.check, self.name_filter, self.advertise)
            self._cache[container_id] = parsed
            self._report(container_id, parsed)
        entries = [parsed.entry for cid, parsed in self._cache.items() if parsed.entry is not None and cid not in dying]
        snap = labels.snapshot(entries, self.table)
        log.info(
            "docker_synced",
            containers=len(listed),
            draining=len(dying & set(self._cache)),
            inspected=inspected,
            routable=len(snap.running),
            services=len(snap.candidates),
            events=len(dirty),
            ms=round((time.perf_counter() - started) * 1000, 1),
        )
        return snap

    def _report(self, container_id: str, parsed: labels.Parsed) -> None:
        """One warning per invalid container (again only if its problem changes), and one per unknown
        ``cosmos.*`` label (again only if the container's unknown labels change)."""
        unknown = tuple(problem.detail for problem in parsed.unknown)
        if self._warned_labels.get(container_id, ()) != unknown:
            for problem in parsed.unknown:
                log.warning("container_label_unknown", container=problem.container, label=problem.label,
                            error=problem.message())
            self._warned_labels[container_id] = unknown
        if parsed.problem is None:
            self._warned.pop(container_id, None)
            return
        if self._warned.get(container_id) == parsed.problem.detail:
            return
        self._warned[container_id] = parsed.problem.detail
        log.warning(
            "container_skipped",
            container=parsed.problem.container,
            label=parsed.problem.label,
            error=parsed.problem.message(),
        )


def outage(exc: BaseException) -> bool:
    """True for errors that mean "the daemon is unreachable": Docker SDK, HTTP and socket errors."""
    import docker.errors
    import requests.exceptions

    return isinstance(exc, (docker.errors.DockerException, requests.exceptions.RequestException, OSError))


def _quietly(close: Callable[[], object]) -> None:
    """Close a stream or client that may already be broken."""
    try:
        close()
    except Exception as exc:  # noqa: BLE001 - the connection is being dropped anyway
        log.debug("docker_close_failed", error=_describe(exc))


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
