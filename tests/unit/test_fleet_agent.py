"""Agents in a fleet, in-process: real SQLite store, real pipeline and agent loop, fake sources and reloaders.

Heartbeats are short (0.5 s, lease 1.5 s) so expiry happens quickly; every check waits for
a condition, none asserts a duration.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cosmos_core.agent import Agent
from cosmos_core.bundle import Bundle
from cosmos_core.contracts import ReloadOutcome
from cosmos_core.errors import StoreError, ValidationError
from cosmos_core.fleet import FleetView, HostRecord, Liveness
from cosmos_core.fleet_agent import FleetMember, FleetSource, fleet_settings, join
from cosmos_core.model import Container, RunningContainer, Service, Snapshot
from cosmos_core.plugins import Plugins
from cosmos_core.runtime import Runtime
from cosmos_core.settings import Settings
from tests.support.net import wait_until


class QueueSource:
    def __init__(self) -> None:
        self.items: queue.Queue[Snapshot | None] = queue.Queue()

    def push(self, *ids: str, service: str = "web") -> None:
        containers = tuple(Container(i, f"10.0.{len(i)}.{sum(map(ord, i)) % 250}", 8080) for i in ids)
        candidates = (Service(service, "host", f"{service}.test", None, None, containers),) if ids else ()
        self.items.put(Snapshot(None, tuple(RunningContainer(service, c) for c in containers), candidates))

    def snapshots(self) -> Iterator[Snapshot]:
        while (item := self.items.get()) is not None:
            yield item

    def close(self) -> None:
        self.items.put(None)


class Recorder:
    def __init__(self) -> None:
        self.configs: list[str] = []

    def apply(self, bundle: Bundle, previous: Bundle | None) -> ReloadOutcome:
        config = bundle.config
        if self.configs and self.configs[-1] == config:
            return ReloadOutcome(False, "config unchanged")
        self.configs.append(config)
        return ReloadOutcome(True)

    @property
    def last(self) -> str:
        return self.configs[-1] if self.configs else ""


def wait_for(condition: Callable[[], object], what: str, timeout: float = 20.0) -> None:
    wait_until(condition, what, timeout, interval=0.02)


class Host:
    def __init__(self, store: str, host_id: str, heartbeat: float = 0.5) -> None:
        settings = Settings(store=store, host_id=host_id, heartbeat=heartbeat, table="fleet")
        self.runtime = Runtime(settings, Plugins.discover())
        self.source = QueueSource()
        wrapped, self.member = join(self.runtime, self.source)
        self.reloader = Recorder()
        self.agent = Agent(self.runtime, wrapped, self.reloader, retry_start=0.05, retry_max=0.2)
        self.thread = threading.Thread(target=self.agent.run, daemon=True)
        self.thread.start()

    def stop(self, heartbeats: bool = True) -> None:
        self.agent.stop()
        self.thread.join(10)
        if heartbeats and self.member is not None:
            self.member.stop()
        self.runtime.close()


@pytest.fixture
def hosts(tmp_path: Path) -> Iterator[Callable[..., Host]]:
    made: list[Host] = []

    def make(host_id: str, **kwargs: float) -> Host:
        host = Host(f"sqlite://{tmp_path}/fleet.db", host_id, **kwargs)
        made.append(host)
        return host

    yield make
    for host in made:
        if host.thread.is_alive():
            host.stop()
        elif host.member is not None:
            host.member.stop()


def test_a_container_on_one_host_reaches_the_others_without_an_event(hosts: Callable[..., Host]) -> None:
    a, b, c = hosts("a"), hosts("b"), hosts("c")
    for host in (a, b, c):
        host.source.push()
    a.source.push("a1")
    for host in (b, c):
        wait_for(lambda h=host: "server a1 " in h.reloader.last, f"{host} sees a1")
    b.source.push("b1")
    wait_for(lambda: "server b1 " in a.reloader.last and "server a1 " in a.reloader.last, "a sees a1+b1")
    wait_for(lambda: a.reloader.last == b.reloader.last == c.reloader.last, "byte-identical configs")
    a.source.push()  # a1 stops: gone everywhere, b1 stays
    for host in (a, b, c):
        wait_for(lambda h=host: "server a1 " not in h.reloader.last and "server b1 " in h.reloader.last, "a1 gone")


def test_a_silent_host_expires_after_its_lease_and_returns(hosts: Callable[..., Host], tmp_path: Path) -> None:
    from structlog.testing import capture_logs

    def verdicts() -> list[tuple[str, str]]:  # b's own: a2 (a new observer) logs nothing about a
        return [(e["event"], e["host"]) for e in logs if e["event"] in ("host_dead", "host_alive")]

    with capture_logs() as logs:
        a, b = hosts("a"), hosts("b")
        a.source.push("a1")
        b.source.push("b1")
        wait_for(lambda: "server a1 " in b.reloader.last, "b sees a1")
        a.stop(heartbeats=True)  # like kill -9: no more heartbeats; its containers stay stored
        wait_for(lambda: "server a1 " not in b.reloader.last, "a1 leaves b's config after the lease")
        assert "server b1 " in b.reloader.last
        store = b.runtime.store
        assert any(c.id == "a1" for c in store.load("fleet").services["web"].containers)  # still stored
        wait_for(lambda: ("host_dead", "a") in verdicts(), "b logs a dead")
        wait_for(lambda: any(e["event"] == "reload" and e["containers"] == 1 and e["not_routed"] == 1 for e in logs),
                 "b's reload line counts what it routes (b1), not what is stored (a1 + b1)")
        a2 = hosts("a")  # a restarts
        a2.source.push("a1")
        wait_for(lambda: "server a1 " in b.reloader.last, "a1 back in b's config")
        wait_for(lambda: ("host_alive", "a") in verdicts(), "b logs a alive")
    assert verdicts() == [("host_dead", "a"), ("host_alive", "a")]  # once per change
    assert [e for e in logs if e["event"] == "host_dead"][0]["silent_s"] >= 1.5  # the lease: 3 x 0.5 s


def test_settings_are_checked() -> None:
    assert fleet_settings(Settings(host_id="h", heartbeat=2))[:3] == ("h", 2, 6)
    for bad, field in ((Settings(heartbeat=0), "heartbeat"), (Settings(heartbeat=5, lease=5), "lease"),
                       (Settings(host_id="a b"), "host_id"), (Settings(advertise_address="x y"), "advertise_address")):
        with pytest.raises(ValidationError) as exc:
            fleet_settings(bad)
        assert exc.value.field == field


def test_fleet_source_stamps_coalesces_and_refreshes() -> None:
    inner = QueueSource()
    source = FleetSource(inner, "h1")
    got: queue.Queue[Snapshot] = queue.Queue()

    def read() -> None:
        for snap in source.snapshots():
            got.put(snap)

    threading.Thread(target=read, daemon=True).start()
    source.refresh()  # nothing seen yet: nothing to repeat
    inner.push("x")
    first = got.get(timeout=5)
    assert first.host_id == "h1"
    source.refresh()
    assert got.get(timeout=5) == first
    source.close()


class FlakyStore:
    """A FleetStore whose reads fail while ``down`` is set."""

    def __init__(self) -> None:
        self.down = threading.Event()
        self.beats = 0
        self.reads = 0

    def heartbeat(self, table: str, host_id: str, address: str | None) -> FleetView:
        if self.down.is_set():
            raise StoreError("unreachable")
        self.beats += 1
        return self.fleet(table)

    def fleet(self, table: str) -> FleetView:
        if self.down.is_set():
            raise StoreError("unreachable")
        self.reads += 1
        return FleetView(1, {"me": HostRecord("me", self.beats), "other": HostRecord("other", 1)})

    def forget_host(self, table: str, host_id: str) -> bool:
        return False

    def close(self) -> None:
        pass


def test_a_partition_expires_nobody_and_wakes_the_agent_when_it_ends(monkeypatch: pytest.MonkeyPatch) -> None:
    import cosmos_core.fleet_agent as fa

    monkeypatch.setattr(fa, "RETRY_START", 0.05)
    monkeypatch.setattr(fa, "RETRY_MAX", 0.1)
    store = FlakyStore()
    liveness = Liveness(lease=0.3, me="me")
    woken = threading.Event()
    member = FleetMember(store, "t", "me", None, 0.1, liveness, woken.set, poll=0.05).start()
    try:
        wait_for(lambda: store.reads > 0, "first read")
        woken.clear()
        store.down.set()
        wait_for(lambda: member._reachable is False, "partition noticed")
        time.sleep(0.5)  # the partition lasts longer than the lease (a condition, not a duration under test)
        assert liveness.dead() == frozenset()  # nothing expired while blind
        store.down.clear()
        wait_for(woken.is_set, "woken when the store came back")
        wait_for(lambda: liveness.dead() == {"other"}, "other (silent all along) expires on a fresh read")
    finally:
        member.stop()


def test_the_live_hosts_gauge_follows_what_this_agent_sees() -> None:
    from cosmos_core import metrics
    from tests.support.prometheus import parse, value

    metrics.enable()
    store = FlakyStore()
    liveness = Liveness(lease=0.3, me="me")
    member = FleetMember(store, "t", "me", None, 0.1, liveness, lambda: None, poll=0.05).start()
    try:
        wait_for(lambda: value(parse(metrics.render().decode()), "cosmos_live_hosts") == 2, "both hosts live at first")
        wait_for(lambda: liveness.dead() == {"other"}, "other (silent all along) expires")
        wait_for(lambda: value(parse(metrics.render().decode()), "cosmos_live_hosts") == 1, "the gauge drops to 1")
    finally:
        member.stop()
        metrics.disable()


def test_a_remote_beat_refreshes_every_heartbeat_unless_the_agent_is_failing() -> None:
    from cosmos_core.fleet_agent import RemoteBeat

    refreshed: list[int] = []
    asked = threading.Semaphore(0)
    failing = [True]

    def paused() -> bool:
        asked.release()
        return failing[0]

    beat = RemoteBeat(lambda: refreshed.append(1), 0.01)
    beat.paused = paused
    beat.start()
    try:
        for _ in range(3):  # three beats while failing: the agent's own retry owns them
            assert asked.acquire(timeout=10)
        assert refreshed == []
        failing[0] = False
        wait_for(lambda: len(refreshed) >= 2, "beats once the agent recovered")
    finally:
        beat.stop()


def test_the_fleet_source_supersedes_as_the_source_it_wraps() -> None:
    """The agent runs one pass for the newest of the queued snapshots only when the wrapped source says
    each of its snapshots is the whole truth (the docker source does)."""
    inner = QueueSource()
    assert FleetSource(inner, "h1").supersedes is False
    inner.supersedes = True  # type: ignore[attr-defined]
    assert FleetSource(inner, "h1").supersedes is True
