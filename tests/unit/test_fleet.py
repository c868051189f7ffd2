"""Liveness on the observer's own clock (injected), and the render filter."""

from __future__ import annotations

import pytest

from cosmos_core.fleet import FleetView, HostRecord, Liveness, containers_per_host, lease_for, live_services
from cosmos_core.model import Container, Service


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def view(generation: int = 1, **beats: int) -> FleetView:
    return FleetView(generation, {h: HostRecord(h, b) for h, b in beats.items()})


def test_lease_defaults_to_three_heartbeats() -> None:
    assert lease_for(5.0, None) == 15.0
    assert lease_for(5.0, 4.0) == 4.0
    with pytest.raises(ValueError):
        Liveness(0)


def test_a_host_whose_counter_stops_dies_after_the_lease() -> None:
    clock = Clock()
    live = Liveness(15, me="a", clock=clock)
    assert live.observe(view(a=1, b=1)) is True  # first read: the generation is new
    for step in range(1, 15):
        clock.now += 1
        live.observe(view(a=1 + step, b=1))
        assert live.alive("b"), step
    clock.now += 1
    assert live.observe(view(a=16, b=1)) is True  # b's lease ran out: the dead set changed
    assert live.dead() == {"b"} and not live.alive("b")
    assert live.age("b") == 15


def test_a_dead_host_that_beats_again_returns_at_once() -> None:
    clock = Clock()
    live = Liveness(3, clock=clock)
    live.observe(view(b=1))
    clock.now += 3
    live.observe(view(b=1))
    assert live.dead() == {"b"}
    clock.now += 100
    assert live.observe(view(b=2)) is True
    assert live.dead() == frozenset()


def test_nothing_expires_while_the_store_cannot_be_read() -> None:
    clock = Clock()
    live = Liveness(3, clock=clock)
    live.observe(view(b=1))
    clock.now += 60  # a partition: no successful read for a minute
    assert live.alive("b") and live.dead() == frozenset()
    # Back: b kept beating meanwhile, so it is alive; c stopped before the partition.
    live2 = Liveness(3, clock=clock)
    live2.observe(view(b=1, c=1))
    clock.now += 60
    live2.observe(view(b=7, c=1))
    assert live2.dead() == {"c"}


def test_the_observer_itself_hosts_without_records_and_forgotten_hosts_are_alive() -> None:
    clock = Clock()
    live = Liveness(3, me="a", clock=clock)
    live.observe(view(a=1, b=1))
    clock.now += 10
    live.observe(view(a=1, b=1))
    assert live.alive("a") and live.alive(None) and live.alive("never-beat")
    assert live.dead() == {"b"}
    assert live.observe(view(a=1)) is True  # b forgotten
    assert live.dead() == frozenset() and live.hosts() == ["a"]


def test_a_new_generation_alone_is_a_change() -> None:
    clock = Clock()
    live = Liveness(3, clock=clock)
    live.observe(view(1, b=1))
    assert live.observe(view(1, b=2)) is False  # heartbeats alone change nothing visible
    assert live.observe(view(2, b=3)) is True


def test_clock_jumps_between_hosts_do_not_matter() -> None:
    """Only the observer's clock and the counters count: host records carry no time."""
    clock = Clock()
    live = Liveness(3, clock=clock)
    for beat in range(1, 50):
        clock.now += 2.9
        live.observe(view(b=beat))
        assert live.alive("b")


def services() -> dict[str, Service]:
    return {
        "api": Service("api", "host", "api.example.com", None, 80, (Container("x1", "10.0.0.1", None, host_id="b"),)),
        "web": Service("web", "host", "web.example.com", None, 80, (
            Container("a1", "10.0.0.2", None, host_id="a"), Container("b1", "10.0.0.3", None, host_id="b"),
            Container("s1", "10.0.0.4"),
        )),
    }


def test_live_services_drops_dead_hosts_containers_and_empty_services() -> None:
    kept = live_services(services(), frozenset({"b"}))
    assert list(kept) == ["web"]
    assert [c.id for c in kept["web"].containers] == ["a1", "s1"]
    assert live_services(services(), frozenset()) == services()
    assert live_services(services(), {"zzz"}) == services()


def test_containers_per_host() -> None:
    assert containers_per_host(services()) == {"a": 1, "b": 2, None: 1}


def test_a_settling_write_is_a_change_too() -> None:
    clock = Clock()
    live = Liveness(3, clock=clock)
    live.observe(FleetView(1, {}, settled=1))
    assert live.observe(FleetView(2, {}, settled=1)) is True  # locked: writes in flight
    assert live.observe(FleetView(2, {}, settled=2)) is True  # landed: look again
    assert live.observe(FleetView(2, {}, settled=2)) is False
