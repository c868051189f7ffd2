"""The host agent (``cosmos watch``): event source -> pipeline -> reloader, in a loop.

Each snapshot the source yields goes through :func:`pipeline.generate`
(reconcile, store, render) and the resulting config to the reloader.  One
failing pass (an invalid snapshot, a store outage, a config HAProxy refuses, a
missing HAProxy container) is logged and the loop goes on with the next
snapshot; the reloader keeps the previous config in place.  Every pass logs
its counts and timings.

Sources that can validate predicates themselves (the Docker source skips a
single bad container instead of refusing the whole snapshot) expose
``use_routing(lookup)``; the agent hands them the runtime's routing modes.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import FrameType

from cosmos_core import pipeline
from cosmos_core.contracts import EventSource, Reloader
from cosmos_core.errors import CosmosError
from cosmos_core.logs import get_logger
from cosmos_core.model import Snapshot
from cosmos_core.runtime import Runtime

log = get_logger("cosmos.agent")


@dataclass
class Stats:
    """What the loop did, for logs, tests and the exit code of ``--once``."""

    passes: int = 0
    reloads: int = 0
    skipped: int = 0
    failures: int = 0
    last_error: str | None = None


class Agent:
    """Runs passes for the snapshots of ``source`` until it ends or :meth:`stop`."""

    def __init__(self, runtime: Runtime, source: EventSource, reloader: Reloader) -> None:
        self.runtime = runtime
        self.source = source
        self.reloader = reloader
        self.stats = Stats()
        self._stopping = threading.Event()
        use_routing: Callable[..., None] | None = getattr(source, "use_routing", None)
        if use_routing is not None:
            use_routing(runtime.routing)

    def stop(self) -> None:
        """Ask the loop to end after the current pass (safe from a signal handler)."""
        self._stopping.set()
        self.source.close()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def run(self, once: bool = False) -> Stats:
        """Process snapshots; with ``once``, only the first (the start-up sync)."""
        snapshots: Iterator[Snapshot] = iter(self.source.snapshots())
        log.info("agent_started", once=once)
        try:
            for snapshot in snapshots:
                if self.stopping:
                    break
                self.step(snapshot)
                if once or self.stopping:
                    break
        finally:
            close = getattr(snapshots, "close", None)
            if close is not None:
                close()
            self.source.close()
            log.info("agent_stopped", **vars(self.stats))
        return self.stats

    def step(self, snapshot: Snapshot) -> bool:
        """One pass; ``False`` (logged, counted) when it failed.  Never raises ``Exception``."""
        self.stats.passes += 1
        started = time.perf_counter()
        try:
            result = pipeline.generate(self.runtime, snapshot)
            t_reconciled = time.perf_counter()
            outcome = self.reloader.reload(result.config)
        except CosmosError as exc:
            return self._failed(str(exc), started)
        except Exception as exc:  # noqa: BLE001 - one bad pass must not end the agent
            return self._failed(f"unexpected {type(exc).__name__}: {exc}", started)
        done = time.perf_counter()
        if outcome.reloaded:
            self.stats.reloads += 1
        else:
            self.stats.skipped += 1
        log.info(
            "reload" if outcome.reloaded else "reload_skipped",
            table=result.table,
            services=len(result.services),
            containers=sum(len(s.containers) for s in result.services),
            changes=len(result.plan.changes),
            reason=outcome.reason or None,
            reconcile_ms=round((t_reconciled - started) * 1000, 1),
            reload_ms=round((done - t_reconciled) * 1000, 1),
            total_ms=round((done - started) * 1000, 1),
            reloads=self.stats.reloads,
        )
        return True

    def _failed(self, message: str, started: float) -> bool:
        self.stats.failures += 1
        self.stats.last_error = message
        log.error("pass_failed", error=message, ms=round((time.perf_counter() - started) * 1000, 1))
        return False


def install_signal_handlers(agent: Agent) -> None:
    """SIGTERM and SIGINT stop the agent cleanly (main thread only)."""

    def handler(signum: int, frame: FrameType | None) -> None:
        log.info("agent_signal", signal=signal.Signals(signum).name)
        agent.stop()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
