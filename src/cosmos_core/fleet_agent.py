"""An agent's part in a fleet: heartbeats, the generation poll, and cross-host wake-ups.

:class:`FleetMember` runs one background thread with its own store handle:

* every ``heartbeat`` seconds it renews this host's record
  (:meth:`~cosmos_core.fleet.FleetStore.heartbeat`, the first one at start);
* every ``poll`` seconds it reads the fleet (one cheap request: generation +
  host records; a heartbeat tick uses what the heartbeat returned) into the runtime's :class:`~cosmos_core.fleet.Liveness`, which
  rendering uses to leave dead hosts' containers out;
* when the generation or the set of dead hosts changed, it wakes the agent:
  :class:`FleetSource` (which wraps the agent's event source and stamps every
  snapshot with the host id) yields this host's last snapshot again, so the
  agent runs an ordinary pass (load, reconcile: nothing to write, render) and
  the reloader reloads only when the config bytes changed.

When the store cannot be reached, the member logs once (``fleet_store_unreachable``),
retries with :class:`~cosmos_core.backoff.Backoff` (1 s doubling to :data:`RETRY_MAX`,
equal jitter), expires nobody (the liveness is judged at the last successful
read) and, once back
(``fleet_store_reachable``), wakes the agent so it converges.  The agent keeps
its last good config meanwhile: a failed pass never reloads.

Requests when idle: one per tick (``heartbeat`` divided into about ``poll``
second steps); every heartbeat returns the fleet, so it replaces that tick's
read: 72 a minute with the defaults (60 reads + 12 heartbeats, 0.83 s apart).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

from cosmos_core.backoff import Backoff
from cosmos_core.contracts import EventSource, StateStore
from cosmos_core import metrics
from cosmos_core.errors import CosmosError
from cosmos_core.fleet import FleetStore, Liveness, Verdicts, checked_timing
from cosmos_core.logs import get_logger
from cosmos_core.model import Snapshot
from cosmos_core.validate import check_host, check_host_id
from cosmos_core.runtime import Runtime
from cosmos_core.settings import Settings

log = get_logger("cosmos.fleet")

#: Target seconds between fleet reads.  Ticks divide the heartbeat evenly (5 s / 6 = 0.83 s), and
#: a heartbeat returns the fleet too: an idle agent makes 72 requests a minute (12 of them heartbeats).
POLL = 0.8
RETRY_START, RETRY_MAX = 1.0, 5.0
_REFRESH, _END = object(), object()


def _retry_delay(attempt: int) -> float:
    """Equal jitter: after a partition many agents come back to one store at once."""
    return Backoff(RETRY_START, RETRY_MAX, jitter="equal").delay(attempt)


class FleetSource:
    """Wraps an event source: stamps snapshots with ``host_id``; re-yields the last one on :meth:`refresh`.

    Precedence: a snapshot that names its own host (a payload's ``host`` field) keeps it; only a
    snapshot without one is stamped with this agent's ``host_id``.
    """

    def __init__(self, inner: EventSource, host_id: str) -> None:
        self.inner = inner
        self.host_id = host_id
        self._feed: queue.Queue[object] = queue.Queue()
        self._closed = threading.Event()
        self._error: Exception | None = None
        #: Called when the agent starts reading (so the fleet thread starts after ``agent_started``).
        self.on_start: Callable[[], object] | None = None

    def use_routing(self, routing: Any) -> None:
        use: Callable[[Any], None] | None = getattr(self.inner, "use_routing", None)
        if use is not None:
            use(routing)

    @property
    def supersedes(self) -> bool:
        """Whether each snapshot holds the whole truth (as the wrapped source says; see the agent's ``latest``)."""
        return bool(getattr(self.inner, "supersedes", False))

    def refresh(self) -> None:
        """Ask for another pass over this host's latest snapshot (any thread)."""
        self._feed.put(_REFRESH)

    def close(self) -> None:
        self._closed.set()
        self._feed.put(_END)
        self.inner.close()

    def snapshots(self) -> Iterator[Snapshot]:
        if self.on_start is not None:
            self.on_start()
        threading.Thread(target=self._pump, name="cosmos-fleet-source", daemon=True).start()
        last: Snapshot | None = None
        while not self._closed.is_set():
            item, pending, end = self._feed.get(), False, False
            while True:  # coalesce: the newest snapshot serves every refresh queued with it
                if item is _END:
                    end = True
                    break
                if isinstance(item, Snapshot):
                    last = item
                pending = True
                try:
                    item = self._feed.get_nowait()
                except queue.Empty:
                    break
            if pending and last is not None:
                yield last
            if end:
                if self._error is not None:
                    raise self._error
                return

    def _pump(self) -> None:
        try:
            for snapshot in self.inner.snapshots():
                stamped = snapshot if snapshot.host_id is not None else replace(snapshot, host_id=self.host_id)
                self._feed.put(stamped)
                if self._closed.is_set():
                    break
        except Exception as exc:  # noqa: BLE001 - handed to the agent, which logs it and sets the exit code
            self._error = exc
        finally:
            self._feed.put(_END)


class FleetMember:
    """Heartbeats and the generation poll for one host, on a thread of its own."""

    def __init__(self, store: StateStore, table: str, host_id: str, address: str | None,
                 heartbeat: float, liveness: Liveness, wake: Callable[[], None], poll: float = POLL,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not isinstance(store, FleetStore):
            raise TypeError("the store does not support fleet mode")
        self.store = store
        self.table, self.host_id, self.address = table, host_id, address
        self.heartbeat, self.poll = heartbeat, poll
        self.liveness = liveness
        self.wake = wake
        self.clock = clock
        self.requests = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._reachable: bool | None = None
        self.verdicts = Verdicts(log)

    def start(self) -> FleetMember:
        self._thread = threading.Thread(target=self._run, name="cosmos-fleet", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.store.close()  # type: ignore[attr-defined]

    def _run(self) -> None:
        """Ticks on a fixed grid: ``heartbeat / k`` seconds apart (``k`` = heartbeat / poll, rounded),
        every ``k``-th tick a heartbeat (which returns the fleet), the others a fleet read."""
        per_beat = max(1, round(self.heartbeat / self.poll))
        tick = self.heartbeat / per_beat
        next_tick, count, attempt = self.clock(), 0, 0
        while not self._stop.is_set():
            try:
                self.requests += 1
                if count % per_beat == 0:
                    view = self.store.heartbeat(self.table, self.host_id, self.address)
                else:
                    view = self.store.fleet(self.table)
                changed = self.liveness.observe(view)
                self.verdicts.update(self.table, self.liveness.dead(), self.liveness.lease, self.liveness.age)
                metrics.set_live_hosts(len(self.liveness.hosts()) - len(self.liveness.dead()))
            except Exception as exc:  # noqa: BLE001 - the thread must survive anything; store errors are CosmosErrors
                attempt += 1
                error = str(exc) if isinstance(exc, CosmosError) else f"unexpected {type(exc).__name__}: {exc}"
                self._set_reachable(False, error)
                self._stop.wait(_retry_delay(attempt))
                next_tick, count = self.clock(), 0  # back on the grid, starting with a heartbeat
                continue
            attempt = 0
            recovered = self._set_reachable(True)
            if changed or recovered:
                log.debug("fleet_changed", generation=self.liveness.generation,
                          dead=sorted(self.liveness.dead()), recovered=recovered)
                self.wake()
            count += 1
            next_tick = max(next_tick + tick, self.clock() - tick)  # never more than one tick behind
            self._stop.wait(max(0.0, next_tick - self.clock()))

    def _set_reachable(self, reachable: bool, error: str | None = None) -> bool:
        """Log once per state change; ``True`` when the store came back."""
        before, self._reachable = self._reachable, reachable
        if before == reachable:
            return False
        if reachable:
            if before is False:
                log.info("fleet_store_reachable", host=self.host_id)
                return True
            return False
        log.warning("fleet_store_unreachable", host=self.host_id, error=error)
        return False


class RemoteBeat:
    """For an agent that asks a remote Cosmos (``cosmos serve``): its last snapshot is posted
    again every ``heartbeat`` seconds, which is its heartbeat there (the service expires hosts that
    stop posting) and how it learns other hosts' changes.  The config is reloaded only when its
    bytes changed."""

    def __init__(self, refresh: Callable[[], None], heartbeat: float) -> None:
        self.refresh, self.heartbeat = refresh, heartbeat
        #: While this says so (the agent's passes fail), no beat is sent: the agent's own pass
        #: retry, with its backoff, owns the catching up; beats resume once a pass succeeded.
        self.paused: Callable[[], bool] = lambda: False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> RemoteBeat:
        self._thread = threading.Thread(target=self._run, name="cosmos-remote-beat", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.heartbeat):
            if not self.paused():
                self.refresh()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)


def fleet_settings(settings: Settings) -> tuple[str, float, float, str | None]:
    """``(host_id, heartbeat, lease, advertise_address)`` checked; bad values name their setting."""
    import socket

    host_id = check_host_id(socket.gethostname() if settings.host_id is None else settings.host_id, "host_id")
    heartbeat, lease = checked_timing(settings.heartbeat, settings.lease)
    address = settings.advertise_address
    if address:
        address = check_host(address, "advertise_address")
    return host_id, heartbeat, lease, address or None


def join(runtime: Runtime, source: EventSource, once: bool = False
         ) -> tuple[FleetSource, FleetMember | RemoteBeat | None]:
    """Put an agent into the fleet: its source stamped with the host id, and (with a
    local fleet-capable store) heartbeats, the generation poll and liveness-aware rendering.

    An agent that runs one pass and exits (``once``, or a source whose ``one_shot`` is true:
    the payload file) only stamps its containers: it writes no host record and sends no
    beats, since it could not keep them up (a record that stops beating would expire its
    containers on every other host).  Its containers, without a record, are never expired.

    Stop the returned member (if any) when the agent ends.
    """
    host_id, heartbeat, lease, address = fleet_settings(runtime.settings)
    wrapped = FleetSource(source, host_id)
    if once or getattr(source, "one_shot", False):
        def one_shot() -> None:  # logged when the agent starts, as fleet_joined is
            log.info("fleet_one_shot", host=host_id,
                     detail="one pass then exit: containers stamped with the host id, no host record, never expired")

        wrapped.on_start = one_shot
        return wrapped, None
    from cosmos_core.passes import LocalPass

    if not isinstance(runtime.strategy, LocalPass):  # a remote Cosmos merges by the payload's host
        beat = RemoteBeat(wrapped.refresh, heartbeat)
        wrapped.on_start = beat.start
        return wrapped, beat
    url = runtime.store_url
    store = runtime.plugins.get("state_stores", url.scheme, field="store").factory(url, runtime.settings)
    if not isinstance(store, FleetStore):
        log.warning("fleet_unsupported", host=host_id, store=url.safe,
                    detail="the store keeps no host records: containers are owned, hosts never expire")
        store.close()
        return wrapped, None
    runtime.liveness = Liveness(lease, me=host_id)
    member = FleetMember(store, runtime.settings.table, host_id, address, heartbeat, runtime.liveness, wrapped.refresh)

    def start() -> None:
        log.info("fleet_joined", host=host_id, heartbeat_s=heartbeat, lease_s=lease, address=address)
        member.start()

    wrapped.on_start = start
    return wrapped, member
