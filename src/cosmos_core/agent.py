"""The host agent (``cosmos watch``): event source -> pipeline -> reloader, in a loop.

Each snapshot the source yields goes through the runtime's pass strategy
(:mod:`cosmos_core.passes`: reconcile, store and render locally, or ask a
remote Cosmos) and the resulting bundle to the reloader, with the bundle it
applied before.  One
failing pass (an invalid snapshot, a store outage, a config HAProxy refuses, a
missing HAProxy container) is logged and the loop goes on with the next
snapshot; the reloader keeps the previous config in place.  Every pass logs
its counts and timings.

A pass that failed for a reason that may go away (a store or remote Cosmos
that cannot be reached, a missing HAProxy container, a failed reload) is
retried with backoff (1 s doubling to 30 s) until it succeeds or a newer
snapshot arrives, so the agent catches up without waiting for the next
container event.  A snapshot refused as bad input, or a config HAProxy
refuses, is not retried.

Sources with the :class:`~cosmos_core.contracts.ChecksPredicates` capability
(the Docker source skips a single bad container instead of refusing the whole
snapshot) get the runtime's routing modes.  A source that raises (a bug, not
an outage it handles itself) ends the agent with an error (traceback under
``--debug``).
"""

from __future__ import annotations

import queue
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from types import FrameType
from typing import Any

from cosmos_core import grace, metrics, pipeline
from cosmos_core.backoff import Backoff
from cosmos_core.bundle import Bundle
from cosmos_core.contracts import ChecksPredicates, EventSource, ReloadOutcome, Reloader
from cosmos_core.errors import CosmosError, PluginError
from cosmos_core.logs import get_logger
from cosmos_core.model import Snapshot
from cosmos_core.quarantine import Quarantine, haproxy_check
from cosmos_core.quarantine import default_path as default_quarantine_path
from cosmos_core.passes import LocalPass
from cosmos_core.runtime import Runtime

log = get_logger("cosmos.agent")

RETRY_START, RETRY_MAX = 1.0, 30.0
_END = object()  # queue marker: the source ended or the agent is stopping


def latest(item: object, feed: queue.Queue[object]) -> object:
    """``item``, or the newest snapshot already waiting behind it for the same table and host.

    Each snapshot of a source is the whole truth of its table (and fleet host),
    so when passes fall behind (a reload slower than the events) only the newest
    one needs a pass: snapshots queued behind ``item`` are taken from ``feed``
    while they are for the same table and host; the first other item (another
    table, the end marker) is put back at the front.  The result carries the
    earliest ``at`` of those it replaces (the first event the pass answers).
    """
    while isinstance(item, Snapshot):
        try:
            nxt = feed.get_nowait()
        except queue.Empty:
            break
        if not isinstance(nxt, Snapshot) or (nxt.table, nxt.host_id) != (item.table, item.host_id):
            with feed.mutex:  # put it back where it was: first
                feed.queue.appendleft(nxt)
                feed.unfinished_tasks += 1
                feed.not_empty.notify()
            break
        at = min((t for t in (item.at, nxt.at) if t is not None), default=None)
        item = replace(nxt, at=at)
    return item


def retry_delay(attempt: int, start: float = RETRY_START, cap: float = RETRY_MAX) -> float:
    """Seconds before retry ``attempt`` (1-based) of a failed pass."""
    return Backoff(start, cap).delay(attempt)


@dataclass
class Stats:
    """What the loop did, for logs, tests and the exit code of ``--once``."""

    passes: int = 0
    reloads: int = 0
    skipped: int = 0
    failures: int = 0
    last_error: str | None = None
    last_exit_code: int = 0  # 2: bad input (refused payload or config), 1: runtime failure
    source_failed: bool = False


class Agent:
    """Runs passes for the snapshots of ``source`` until it ends or :meth:`stop`."""

    def __init__(self, runtime: Runtime, source: EventSource, reloader: Reloader,
                 retry_start: float = RETRY_START, retry_max: float = RETRY_MAX) -> None:
        self.runtime = runtime
        self.retry_start, self.retry_max = retry_start, retry_max
        self.source = source
        self.reloader = reloader
        self.stats = Stats()
        #: Called with each successful pass's result and reload outcome (the certificate resolver, issue 12).
        self.observers: list[Callable[[Any, ReloadOutcome], None]] = []
        self._quarantines: dict[str, Quarantine] = {}
        if hasattr(runtime.strategy, "skip_conflicts"):  # a local pass: skip a route's later claimant, route the rest
            runtime.strategy.skip_conflicts = True
        bin_ = str(runtime.settings.options.get("haproxy_bin") or "haproxy")
        # The reloader's own check first (docker-exec: haproxy -c inside the HAProxy container), else the host's binary.
        own = getattr(reloader, "check_bundle", None)
        self._check = own or (haproxy_check(bin_) if shutil.which(bin_) else None)
        self._check_by = "reloader" if own else (bin_ if self._check else None)
        self._stopping = threading.Event()
        self._feed: queue.Queue[object] = queue.Queue()
        self._retryable = False
        #: The source's snapshots each hold the whole truth of their table (``supersedes`` set, as the docker
        #: source does): when passes fall behind, only the newest waiting snapshot gets one (:func:`latest`).
        self._supersede = bool(getattr(source, "supersedes", False))
        self.applied: Bundle | None = None  # the bundle the reloader applied last
        if isinstance(source, ChecksPredicates):
            source.use_routing(runtime.routing)

    def stop(self, reason: str | None = None) -> None:
        """Ask the loop to end after the current pass (call it from any thread)."""
        if reason:
            log.info("agent_signal", signal=reason)
        self._stopping.set()
        self._feed.put(_END)
        self.source.close()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def run(self, once: bool = False) -> Stats:
        """Process snapshots; with ``once``, only the first (the start-up sync).

        The source is read on a thread of its own, so that a failed pass can be
        retried while no new snapshot comes.
        """
        log.info("agent_started", once=once)
        log.info("quarantine_check", by=self._check_by)
        threading.Thread(target=self._pump, name="cosmos-source", daemon=True).start()
        failed: Snapshot | None = None
        attempt = 0
        try:
            while not self.stopping:
                try:
                    wait = retry_delay(attempt, self.retry_start, self.retry_max) if failed else self._grace_wait()
                    item = self._feed.get(timeout=wait)
                    if self._supersede:
                        item = latest(item, self._feed)
                except queue.Empty:
                    item = failed or self._grace_pass()
                    if failed:
                        log.info("pass_retry", attempt=attempt)
                if item is _END or self.stopping:
                    break
                assert isinstance(item, Snapshot)
                if self.step(item) or once or not self._retryable:
                    failed, attempt = None, 0
                else:
                    failed, attempt = item, attempt + 1
                if once:
                    break
        finally:
            self.source.close()
            log.info("agent_stopped", **vars(self.stats))
        return self.stats

    # ops: a service in its grace period (cosmos.grace) ends without an event; run a pass then.
    _last: Snapshot | None = None
    _grace_until: float | None = None
    #: The last pass failed for a reason that may go away (``/healthz`` answers 503 meanwhile).
    failing: bool = False

    def _grace_wait(self) -> float | None:
        """Seconds until the earliest grace period ends (``None``: no service is held)."""
        return None if self._grace_until is None else max(0.0, self._grace_until - time.time())

    def _grace_pass(self) -> Snapshot | None:
        """The last snapshot again, at the current time."""
        log.info("grace_pass")
        self._grace_until = None
        return None if self._last is None else replace(self._last, at=None)

    def _pump(self) -> None:
        """Move the source's snapshots into the feed (runs on its own thread)."""
        snapshots: Iterator[Snapshot] = iter(self.source.snapshots())
        try:
            for snapshot in snapshots:
                self._feed.put(snapshot)
                if self.stopping:
                    break
        except Exception as exc:  # noqa: BLE001 - a broken source ends the agent, logged
            bad_input = isinstance(exc, CosmosError) and exc.exit_code == 2  # e.g. an invalid payload file
            self.stats.source_failed = True
            self.stats.failures += 1
            self.stats.last_exit_code = 2 if bad_input else 1
            self.stats.last_error = str(exc) if isinstance(exc, CosmosError) else f"event source failed: {type(exc).__name__}: {exc}"
            log.error("source_failed", error=f"{type(exc).__name__}: {exc}",
                      exc_info=self.runtime.settings.debug and not isinstance(exc, CosmosError))
        finally:
            close = getattr(snapshots, "close", None)
            if close is not None:
                close()
            self._feed.put(_END)

    def step(self, snapshot: Snapshot) -> bool:
        """One pass; ``False`` (logged, counted) when it failed.  Never raises ``Exception``."""
        self.stats.passes += 1
        started = time.perf_counter()
        try:
            result = self.runtime.strategy.run(snapshot)
            t_reconciled = time.perf_counter()
            outcome, applied = self.quarantine(result.table).apply(
                {s.name: s for s in result.services}, result.bundle,
                lambda services: pipeline.render(self.runtime, services), self._apply, self._check)
        except CosmosError as exc:
            metrics.pass_failed(exc)
            return self._failed(str(exc), started, retryable=exc.retryable, exit_code=exc.exit_code)
        except Exception as exc:  # noqa: BLE001 - one bad pass must not end the agent
            metrics.pass_failed(exc)
            return self._failed(f"unexpected {type(exc).__name__}: {exc}", started, retryable=True, exit_code=1)
        self.applied = applied
        done = time.perf_counter()
        self._last, self._grace_until, self.failing = snapshot, grace.next_expiry(result.services), False
        metrics.pass_succeeded(result.table, result.services, t_reconciled - started, done - t_reconciled,
                               outcome.reloaded, snapshot.at, local=isinstance(self.runtime.strategy, LocalPass))
        if outcome.reloaded:
            self.stats.reloads += 1
        else:
            self.stats.skipped += 1
        routed = self._routed(result.services)
        log.info(
            "reload" if outcome.reloaded else "reload_skipped",
            table=result.table,
            services=len(routed),
            containers=sum(len(s.containers) for s in routed),  # in the config: dead hosts' are left out
            not_routed=sum(len(s.containers) for s in result.services) - sum(len(s.containers) for s in routed) or None,
            changes=len(result.plan.changes),
            reason=outcome.reason or None,
            reconcile_ms=round((t_reconciled - started) * 1000, 1),
            reload_ms=round((done - t_reconciled) * 1000, 1),
            total_ms=round((done - started) * 1000, 1),
            reloads=self.stats.reloads,
        )
        for observe in self.observers:
            try:
                observe(result, outcome)
            except Exception as exc:  # noqa: BLE001 - an observer never fails the pass
                log.error("observer_failed", error=f"{type(exc).__name__}: {exc}")
        return True

    def _apply(self, bundle: Bundle) -> ReloadOutcome:
        outcome = self.reloader.apply(bundle, self.applied)
        if not isinstance(outcome, ReloadOutcome):
            raise PluginError(f"reloader {self.runtime.settings.reloader!r} "
                              f"({self.runtime.plugins.owner('reloaders', str(self.runtime.settings.reloader))}): "
                              f"apply() returned {type(outcome).__name__}, expected ReloadOutcome")
        return outcome

    def quarantine(self, table: str) -> Quarantine:
        """The services of ``table`` kept out of the config because HAProxy refused them."""
        if table not in self._quarantines:
            path = self.runtime.settings.quarantine_file
            self._quarantines[table] = Quarantine(Path(path) if path else default_quarantine_path(),
                                                  self.runtime.store_url.safe, table)
        return self._quarantines[table]

    def _routed(self, services: tuple[Any, ...]) -> list[Any]:
        """``services`` as the config routes them: without dead fleet hosts' containers."""
        liveness = getattr(self.runtime, "liveness", None)
        if liveness is None:
            return list(services)
        from cosmos_core.fleet import live_services

        return list(live_services({s.name: s for s in services}, liveness.dead()).values())

    def _failed(self, message: str, started: float, retryable: bool, exit_code: int) -> bool:
        self._retryable = self.failing = retryable
        self.stats.failures += 1
        self.stats.last_error = message
        self.stats.last_exit_code = 2 if exit_code == 2 else 1
        log.error("pass_failed", error=message, ms=round((time.perf_counter() - started) * 1000, 1))
        return False


def install_signal_handlers(agent: Agent) -> None:
    """SIGTERM and SIGINT stop the agent cleanly (main thread only).

    The handler itself takes no lock (no logging, no queue): the main thread
    may hold one when the signal lands.  It hands the stop to a new thread.
    """

    def handler(signum: int, frame: FrameType | None) -> None:
        threading.Thread(target=agent.stop, args=(signal.Signals(signum).name,), daemon=True).start()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
