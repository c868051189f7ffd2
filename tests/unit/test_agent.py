"""The agent loop: snapshots -> pipeline -> reloader, surviving bad passes, stopping cleanly."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from cosmos_core.agent import Agent
from cosmos_core.bundle import Bundle
from cosmos_core.contracts import ReloadOutcome
from cosmos_core.errors import ReloadError
from cosmos_core.model import Container, RunningContainer, Service, Snapshot
from cosmos_core.plugins import Plugins
from cosmos_core.runtime import Runtime
from cosmos_core.settings import Settings


def snap(*services: tuple[str, str, str]) -> Snapshot:
    """A snapshot of services (name, predicate, ip) with one container each."""
    built = [Service(n, "host", p, None, 8080, (Container(f"c-{n}", ip),)) for n, p, ip in services]
    running = tuple(RunningContainer(s.name, c) for s in built for c in s.containers)
    return Snapshot(None, running, tuple(built))


class ListSource:
    """Yields the given snapshots, then blocks until closed (like the docker source)."""

    def __init__(self, snapshots: list[Snapshot], then_block: bool = True) -> None:
        self.items = snapshots
        self.then_block = then_block
        self.closed = threading.Event()
        self.routing = None

    def use_routing(self, routing: object) -> None:
        self.routing = routing

    def snapshots(self) -> Iterator[Snapshot]:
        yield from self.items
        if self.then_block:
            self.closed.wait(10)

    def close(self) -> None:
        self.closed.set()


class Recorder:
    """Records bundles applied (and the previous one each time); raises for calls listed in ``fail_on``."""

    def __init__(self, fail_on: tuple[int, ...] = ()) -> None:
        self.configs: list[str] = []
        self.previous: list[Bundle | None] = []
        self.fail_on = fail_on

    def apply(self, bundle: Bundle, previous: Bundle | None) -> ReloadOutcome:
        self.configs.append(bundle.config)
        self.previous.append(previous)
        if len(self.configs) in self.fail_on:
            raise ReloadError("HAProxy refused the new config")
        return ReloadOutcome(True)


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    rt = Runtime(Settings(store=f"sqlite://{tmp_path}/state.db"), Plugins.discover())
    yield rt
    rt.close()


def test_each_snapshot_reaches_the_reloader_in_order(runtime: Runtime) -> None:
    source = ListSource([snap(("web", "web.test", "10.0.0.1")), snap(("web", "web.test", "10.0.0.2"))], then_block=False)
    recorder = Recorder()

    stats = Agent(runtime, source, recorder).run()

    assert stats.passes == 2 and stats.reloads == 2 and stats.failures == 0
    assert "10.0.0.1:8080" in recorder.configs[0] and "10.0.0.2:8080" in recorder.configs[1]
    assert "10.0.0.1" not in recorder.configs[1]
    assert source.routing == runtime.routing and source.closed.is_set()
    assert recorder.previous[0] is None and recorder.previous[1] is not None
    assert recorder.previous[1].config == recorder.configs[0]  # the reloader sees what it applied before


def test_a_bad_snapshot_or_failed_reload_is_logged_and_the_loop_goes_on(
    runtime: Runtime, capsys: pytest.CaptureFixture[str]
) -> None:
    from cosmos_core import logs

    logs.configure("json", "info")
    bad_predicate = snap(("web", "bad_host!", "10.0.0.9"))  # the host mode refuses it
    source = ListSource(
        [snap(("web", "web.test", "10.0.0.1")), bad_predicate, snap(("api", "api.test", "10.0.0.3")), snap(("api", "api.test", "10.0.0.4"))],
        then_block=False,
    )
    recorder = Recorder(fail_on=(2,))

    stats = Agent(runtime, source, recorder).run()

    assert stats.passes == 4 and stats.failures == 2 and stats.reloads == 2
    failures = [line for line in capsys.readouterr().err.splitlines() if "pass_failed" in line]
    assert len(failures) == 2
    assert "predicate" in failures[0] and "HAProxy refused" in failures[1]
    assert "10.0.0.4:8080" in recorder.configs[-1]
    assert "web" not in runtime.store.load("default").services  # the last snapshot no longer runs web


def test_once_processes_only_the_first_snapshot(runtime: Runtime) -> None:
    source = ListSource([snap(("web", "web.test", "10.0.0.1")), snap(("web", "web.test", "10.0.0.2"))])

    stats = Agent(runtime, source, Recorder()).run(once=True)

    assert stats.passes == 1
    assert source.closed.is_set()


def test_stop_from_another_thread_ends_a_blocked_loop(runtime: Runtime) -> None:
    source = ListSource([snap(("web", "web.test", "10.0.0.1"))])
    agent = Agent(runtime, source, Recorder())
    timer = threading.Timer(0.2, agent.stop)
    timer.start()

    stats = agent.run()

    timer.join()
    assert stats.passes == 1 and agent.stopping


class FlakyReloader(Recorder):
    """Fails its first ``failures`` calls (a missing container, a remote that is down)."""

    def __init__(self, failures: int) -> None:
        super().__init__(fail_on=tuple(range(1, failures + 1)))


def test_a_failed_pass_is_retried_until_it_succeeds_without_a_new_event(runtime: Runtime) -> None:
    source = ListSource([snap(("web", "web.test", "10.0.0.1"))])
    reloader = FlakyReloader(failures=2)
    agent = Agent(runtime, source, reloader, retry_start=0.01, retry_max=0.02)
    thread = threading.Thread(target=agent.run)
    thread.start()
    deadline = time.monotonic() + 5
    while agent.stats.reloads == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    agent.stop()
    thread.join(5)
    assert agent.stats.failures == 2 and agent.stats.reloads == 1
    assert len(reloader.configs) == 3 and reloader.configs[0] == reloader.configs[2]


def test_a_newer_snapshot_replaces_the_one_being_retried(runtime: Runtime) -> None:
    first, second = snap(("web", "web.test", "10.0.0.1")), snap(("web", "web.test", "10.0.0.2"))
    reloader = FlakyReloader(failures=1)
    stats = Agent(runtime, ListSource([first, second], then_block=False), reloader, retry_start=5.0).run()
    assert stats.failures == 1 and stats.reloads == 1
    assert "10.0.0.2:8080" in reloader.configs[-1] and len(reloader.configs) == 2


def test_bad_input_is_not_retried(runtime: Runtime) -> None:
    bad = Snapshot(None, (), (Service("web", "nosuchmode", "web.test", None, 8080, ()),))
    reloader = Recorder()
    agent = Agent(runtime, ListSource([bad]), reloader, retry_start=0.01)
    thread = threading.Thread(target=agent.run)
    thread.start()
    time.sleep(0.3)
    agent.stop()
    thread.join(5)
    assert agent.stats.failures == 1 and agent.stats.passes == 1 and reloader.configs == []
    assert "not recognised" in (agent.stats.last_error or "")


class SlowReloader(Recorder):
    """Blocks its first apply until ``release`` is set (a reload slower than the events)."""

    def __init__(self) -> None:
        super().__init__()
        self.entered, self.release = threading.Event(), threading.Event()

    def apply(self, bundle: Bundle, previous: Bundle | None) -> ReloadOutcome:
        if not self.configs:
            self.entered.set()
            self.release.wait(5)
        return super().apply(bundle, previous)


class GatedSource(ListSource):
    """The first snapshot, then (once the reloader is busy) the rest at once; ``supersedes`` like the docker source."""

    supersedes = True

    def __init__(self, snapshots: list[Snapshot], busy: threading.Event, queued: threading.Event) -> None:
        super().__init__(snapshots)
        self.busy, self.queued = busy, queued

    def snapshots(self) -> Iterator[Snapshot]:
        yield self.items[0]
        self.busy.wait(5)
        yield from self.items[1:]
        self.queued.set()
        self.closed.wait(10)


def test_snapshots_queued_behind_a_slow_reload_cost_one_pass_for_the_newest() -> None:
    """A source whose snapshots supersede each other: those that queued up during a slow pass cost one pass
    (the newest, with the earliest event time); another table's snapshot is never skipped."""
    import queue as q

    from cosmos_core.agent import latest

    old = [replace(snap(("web", "web.test", f"10.0.0.{n}")), at=float(n)) for n in range(1, 5)]
    other = Snapshot("t2", (), ())
    feed: q.Queue[object] = q.Queue()
    for item in (old[2], old[3], other, old[1]):
        feed.put(item)
    merged = latest(old[0], feed)
    assert merged == old[3] and merged.at == 1.0  # type: ignore[union-attr]
    assert [feed.get_nowait(), feed.get_nowait()] == [other, old[1]] and feed.empty()  # put back in order


def test_the_agent_runs_one_pass_for_the_snapshots_that_queued_during_a_slow_reload(runtime: Runtime) -> None:
    reloader = SlowReloader()
    queued = threading.Event()
    items = [snap(("web", "web.test", f"10.0.0.{n}")) for n in range(1, 5)]
    source = GatedSource(items, reloader.entered, queued)
    agent = Agent(runtime, source, reloader)
    thread = threading.Thread(target=agent.run)
    thread.start()
    assert queued.wait(5)
    reloader.release.set()
    deadline = time.monotonic() + 5
    while len(reloader.configs) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    agent.stop()
    thread.join(5)
    assert agent.stats.passes == 2 and len(reloader.configs) == 2
    assert "10.0.0.4:8080" in reloader.configs[1]
