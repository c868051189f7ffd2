"""The state-store contract: one reusable pytest suite that every store must pass.

A plugin author subclasses :class:`StoreContract` in a test module and gives
it a ``make_store`` fixture returning a zero-argument factory.  Every call of
the factory must open a *new handle on the same backing store* (a second
runner), so the suite can test persistence and concurrent runners::

    import pytest
    from cosmos_core.testing.store_contract import StoreContract

    class TestMyStore(StoreContract):
        @pytest.fixture
        def make_store(self, tmp_path):
            return lambda: MyStore(tmp_path / "state")

The suite covers: empty table, round-trip, delete, de-duplication, writing
only what changed, concurrent updates to one service (runners driven through
the real :func:`cosmos_core.pipeline.generate`), a namespace larger than 1 MB
(pagination), and unicode in the values the model allows.  Each test uses a
fresh namespace (``table`` fixture), so one backing store may serve the whole
session.  Override the class attributes to tune sizes.

Fleet mode (:class:`cosmos_core.fleet.FleetStore`): container host ids round
trip, heartbeats count up without moving the revision (so they never conflict
with an apply), the generation moves with every apply, ``forget_host``, and
concurrent hosts that each report their own containers all land, and the
last container of a service leaving one host while another host adds the
first never loses the service (driven by hand through :meth:`StoreContract.interleaved`,
which a store that writes item by item overrides).  A store
without fleet support sets ``fleet = False`` and those cases are skipped.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest

from cosmos_core.contracts import ApplyResult, StateStore
from cosmos_core.errors import ConflictError, ValidationError
from cosmos_core.model import (
    Container,
    Plan,
    RunningContainer,
    Service,
    Snapshot,
    State,
)
from cosmos_core.reconcile import diff

StoreFactory = Callable[[], StateStore]

#: Unicode probes: (field, how to build a model value carrying it).  The model
#: keeps names, ids, modes, cookies and predicates ASCII, so most are refused;
#: whatever it accepts must survive a round trip unchanged.
UNICODE_PROBES: dict[str, Callable[[], Service]] = {
    "serviceName": lambda: Service("sérvice", "host", "a.example.com", None, 80),
    "configMode": lambda: Service("svc", "hôst", "a.example.com", None, 80),
    "predicate": lambda: Service("svc", "host", "bücher.example.com", None, 80),
    "cookie": lambda: Service("svc", "host", "a.example.com", "SÉSSION", 80),
    "id": lambda: Service("svc", "host", "a.example.com", None, 80, (Container("ïd-1", "10.0.0.1"),)),
    "ip": lambda: Service("svc", "host", "a.example.com", None, 80, (Container("c1", "bücher.example.com"),)),
    # IPv6 zone ids: ipaddress accepts any text after '%'.
    "ip (IPv6 zone)": lambda: Service("svc", "host", "a.example.com", None, 80, (Container("c1", "fe80::1%ethé"),)),
}


def sample_services() -> dict[str, Service]:
    """Services that use every optional field and address form the model allows."""
    return {
        "api": Service("api", "path", "/api/v2", "SID", 8080, (
            Container("c-1", "10.0.0.1"), Container("c-2", "10.0.0.2", 9090), Container("c-3", "2001:db8::7"),
        )),
        "web": Service("web", "host", "www.example.com", None, None, (
            Container("w.1", "web-1.internal", 80), Container("w_2", "192.168.1.9", 8000),
        )),
        "empty": Service("empty", "host", "empty.example.com", None, 80, ()),
        "x" * 63: Service("x" * 63, "host", "long.example.com", "C" * 64, 65535, (
            Container("i" * 128, "10.255.255.254", 1),
        )),
    }


def write(store: StateStore, table: str, services: dict[str, Service]) -> ApplyResult:
    """Make ``table`` hold exactly ``services`` (load, diff, apply)."""
    state = store.load(table)
    return store.apply(table, diff(state.services, services), state)


def runtime_for(store: StateStore) -> Any:
    """A runtime with the installed emitter and routing modes, and ``store``."""
    from cosmos_core.runtime import Runtime
    from cosmos_core.settings import Settings

    runtime = Runtime(Settings(store="contract://"))
    runtime.store = store  # overrides the cached property: no URL needed
    return runtime


@dataclass
class _BarrierStore:
    """Delegates to ``inner``; the first load waits until every runner has loaded."""

    inner: StateStore
    barrier: threading.Barrier
    waited: bool = False

    def load(self, table: str) -> State:
        state = self.inner.load(table)
        if not self.waited:
            self.waited = True
            self.barrier.wait(timeout=60)
        return state

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@dataclass
class _ActsInApply:
    """Delegates to ``inner``; its first ``apply`` runs ``action()`` before writing anything."""

    inner: StateStore
    action: Callable[[], None]
    fired: bool = False

    def apply(self, table: str, plan: Plan, base: State) -> ApplyResult:
        if not self.fired:
            self.fired = True
            self.action()
        return self.inner.apply(table, plan, base)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@dataclass
class _Preloaded:
    """Delegates to ``inner``; its first ``load`` returns ``state`` (read earlier)."""

    inner: StateStore
    state: State
    used: bool = False

    def load(self, table: str) -> State:
        if not self.used:
            self.used = True
            return self.state
        return self.inner.load(table)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class StoreContract:
    """Inherit and provide a ``make_store`` fixture (see the module docstring)."""

    #: Parallel runners in the concurrency test.
    concurrent_runners = 8
    #: Whether the store implements :class:`cosmos_core.fleet.FleetStore`.
    fleet = True
    #: Services x containers in the pagination test (well past 1 MB).
    big_services = 1000
    big_containers = 8

    @pytest.fixture
    def make_store(self) -> StoreFactory:
        raise NotImplementedError("define a `make_store` fixture returning a factory of store handles")

    @pytest.fixture
    def store(self, make_store: StoreFactory) -> Iterator[StateStore]:
        handle = make_store()
        yield handle
        handle.close()

    @contextmanager
    def interleaved(self, store: StateStore, point: str, action: Callable[[], None]) -> Iterator[Any]:
        """Yield a handle on ``store`` whose next ``apply`` runs ``action()`` once, at ``point``:

        * ``"claimed"``: after the apply claimed its revision, before it writes any item;
        * ``"deleting"``: just before it deletes a service item.

        The context exits with a failure if ``action`` never ran.  This default runs it as
        ``apply`` starts, which is every point of a store that writes a plan in one
        transaction (no other writer can come between); a store that writes item by item
        overrides it (the DynamoDB contract hooks botocore's events).
        """
        handle = _ActsInApply(store, action)
        yield handle
        assert handle.fired, f"the apply never reached {point!r}"

    @pytest.fixture
    def table(self) -> str:
        """A namespace no other test uses."""
        return f"ct{uuid.uuid4().hex[:12]}"

    def reopen(self, make_store: StoreFactory, table: str) -> dict[str, Service]:
        """What a fresh handle reads back."""
        other = make_store()
        try:
            return dict(other.load(table).services)
        finally:
            other.close()

    # ------------------------------------------------------------- empty

    def test_empty_table_loads_empty_and_an_empty_plan_writes_nothing(
        self, store: StateStore, make_store: StoreFactory, table: str
    ) -> None:
        state = store.load(table)
        assert dict(state.services) == {}
        result = store.apply(table, Plan(), state)
        assert (result.written, result.deleted, result.requests) == (0, 0, 0)
        assert table not in store.tables()
        assert self.reopen(make_store, table) == {}
        store.ping()

    # -------------------------------------------------------- round trip

    def test_round_trip_through_a_new_handle(self, store: StateStore, make_store: StoreFactory, table: str) -> None:
        services = sample_services()
        result = write(store, table, services)
        assert result.written >= len(services) and result.deleted == 0
        assert store.load(table).services == services
        assert self.reopen(make_store, table) == services
        assert table in store.tables()
        assert store.tables() == sorted(store.tables())

    def test_namespaces_are_separate(self, store: StateStore, table: str) -> None:
        other = table + "-b"
        write(store, table, {"a": sample_services()["api"]})
        assert store.load(other).services == {}
        write(store, other, {"web": sample_services()["web"]})
        assert list(store.load(table).services) == ["api"]
        assert list(store.load(other).services) == ["web"]
        assert {table, other} <= set(store.tables())

    # ------------------------------------------------------------ delete

    def test_delete_services_and_containers(self, store: StateStore, make_store: StoreFactory, table: str) -> None:
        services = sample_services()
        write(store, table, services)
        api = services["api"]
        fewer = {"api": Service(api.name, api.mode, api.predicate, api.cookie, api.port, api.containers[:1])}
        result = write(store, table, fewer)
        removed = (len(api.containers) - 1) + sum(1 + len(s.containers) for n, s in services.items() if n != "api")
        assert result.deleted == removed
        assert self.reopen(make_store, table) == fewer
        write(store, table, {})
        assert self.reopen(make_store, table) == {}
        assert table not in store.tables()

    # ------------------------------------------------- only what changed

    def test_writes_only_what_changed(self, store: StateStore, table: str) -> None:
        services = sample_services()
        write(store, table, services)
        again = write(store, table, services)
        assert (again.written, again.deleted, again.requests) == (0, 0, 0)
        api = services["api"]
        grown = dict(services, api=Service(
            api.name, api.mode, api.predicate, api.cookie, api.port, api.containers + (Container("c-9", "10.0.0.9"),)
        ))
        one = write(store, table, grown)
        assert 1 <= one.written <= 2 and one.deleted == 0
        assert store.load(table).services == grown

    # --------------------------------------------------- de-duplication

    def test_deduplication_by_container_id(self, store: StateStore, table: str) -> None:
        first = Service("svc", "host", "a.example.com", None, 80, (Container("c1", "10.0.0.1"),))
        write(store, table, {"svc": first})
        moved = Service("svc", "host", "a.example.com", None, 80, (Container("c1", "10.0.0.2", 81),))
        result = write(store, table, {"svc": moved})
        assert result.deleted == 0
        assert store.load(table).services["svc"].containers == (Container("c1", "10.0.0.2", 81),)

    def test_deduplication_through_the_pipeline(self, store: StateStore, table: str) -> None:
        from cosmos_core import pipeline

        container = Container("c1", "10.0.0.1", 8080)
        twice = Service("svc", "host", "a.example.com", None, None, (container, container))
        snapshot = Snapshot(table, (RunningContainer("svc", container),) * 2, (twice, twice))
        runtime = runtime_for(store)
        first = pipeline.generate(runtime, snapshot)
        assert store.load(table).services["svc"].containers == (container,)
        assert first.config.count("10.0.0.1:8080") == 1
        repeat = pipeline.generate(runtime, snapshot)
        assert not repeat.plan and repeat.applied.written == 0
        assert repeat.config == first.config

    # ------------------------------------------------------ concurrency

    def test_stale_base_never_loses_an_update(self, store: StateStore, make_store: StoreFactory, table: str) -> None:
        second = make_store()
        try:
            base_a, base_b = store.load(table), second.load(table)
            mine = Service("svc", "host", "a.example.com", None, 80, (Container("a", "10.0.0.1"),))
            theirs = Service("svc", "host", "a.example.com", None, 80, (Container("b", "10.0.0.2"),))
            store.apply(table, diff(base_a.services, {"svc": mine}), base_a)
            try:
                second.apply(table, diff(base_b.services, {"svc": theirs}), base_b)
            except ConflictError:
                assert {c.id for c in self.reopen(make_store, table)["svc"].containers} == {"a"}
            else:
                assert {c.id for c in self.reopen(make_store, table)["svc"].containers} == {"a", "b"}
        finally:
            second.close()

    def test_concurrent_runners_adding_to_one_service_all_land(self, make_store: StoreFactory, table: str) -> None:
        from cosmos_core import pipeline

        n = self.concurrent_runners
        containers = [Container(f"c{i}", f"10.1.0.{i + 1}", 8080) for i in range(n)]
        running = tuple(RunningContainer("shared", c) for c in containers)
        barrier = threading.Barrier(n)

        def runner(i: int) -> Any:
            handle = _BarrierStore(make_store(), barrier)
            try:
                candidate = Service("shared", "host", "shared.example.com", None, None, (containers[i],))
                return pipeline.generate(runtime_for(handle), Snapshot(table, running, (candidate,)))
            finally:
                handle.inner.close()

        with ThreadPoolExecutor(n) as pool:
            results = list(pool.map(runner, range(n)))
        final = self.reopen(make_store, table)["shared"]
        assert final.containers == tuple(sorted(containers))
        for i, result in enumerate(results):
            assert f"10.1.0.{i + 1}:8080" in result.config  # each runner serves what it added

    # ------------------------------------------------------- pagination

    def test_a_namespace_past_1_mb_reads_back_whole(
        self, store: StateStore, make_store: StoreFactory, table: str
    ) -> None:
        services = {}
        for s in range(self.big_services):
            name = f"service-{s:05d}-" + "n" * 40
            containers = tuple(
                Container(f"{s:05d}-{c:02d}-" + "i" * 100, f"10.{s // 250}.{s % 250}.{c + 1}", 8000 + c)
                for c in range(self.big_containers)
            )
            services[name] = Service(name, "host", f"s{s}.example.com", "SID", None, containers)
        size = len(json.dumps([s.to_dict() for s in services.values()]))
        assert size > 1_048_576, f"test data is only {size} bytes; raise big_services"
        write(store, table, services)
        assert self.reopen(make_store, table) == services

    # ---------------------------------------------------------- unicode

    def test_service_and_container_options_round_trip_and_change(
        self, store: StateStore, make_store: StoreFactory, table: str
    ) -> None:
        from cosmos_core.testing.options import registered_test_options

        with registered_test_options():
            tuned = Service("tuned", "host", "t.example.com", None, 80,
                            (Container("c1", "10.0.0.1", options=(("test_weight", 7),)), Container("c2", "10.0.0.2")),
                            options=(("test_algo", "leastconn"), ("test_nets", ("10.0.0.0/8", "::1/128"))))
            write(store, table, {"tuned": tuned})
            assert self.reopen(make_store, table) == {"tuned": tuned}
            retuned = tuned.derive(options=(("test_algo", "first"),),
                                   containers=(Container("c1", "10.0.0.1"), Container("c2", "10.0.0.2")))
            result = write(store, table, {"tuned": retuned})
            assert result.written >= 1
            assert self.reopen(make_store, table) == {"tuned": retuned}

    @pytest.mark.parametrize("field", sorted(UNICODE_PROBES))
    def test_unicode_is_refused_by_the_model_or_round_trips(
        self, field: str, store: StateStore, make_store: StoreFactory, table: str
    ) -> None:
        try:
            service = UNICODE_PROBES[field]()
        except ValidationError as exc:
            assert exc.field == field.split(" ")[0]
            return
        write(store, table, {service.name: service})
        assert self.reopen(make_store, table) == {service.name: service}

    # ------------------------------------------------------------ fleet

    def fleet_store(self, store: StateStore) -> Any:
        from cosmos_core.fleet import FleetStore

        if not self.fleet:
            pytest.skip("this store does not implement fleet mode")
        assert isinstance(store, FleetStore), "fleet = True, but the store lacks heartbeat/fleet/forget_host"
        return store

    def test_container_host_ids_round_trip(self, store: StateStore, make_store: StoreFactory, table: str) -> None:
        services = {"web": Service("web", "host", "w.example.com", None, 80, (
            Container("a1", "10.0.0.1", None, host_id="host-a"), Container("b1", "10.0.0.2", 81, host_id="host-b"),
            Container("legacy", "10.0.0.3"),
        ))}
        write(store, table, services)
        assert self.reopen(make_store, table) == services
        moved = {"web": services["web"].derive(containers=(Container("a1", "10.0.0.1", None, host_id="host-b"),))}
        result = write(store, table, moved)
        assert result.written >= 1
        assert self.reopen(make_store, table) == moved

    def test_heartbeats_count_up_and_never_move_the_revision(
        self, store: StateStore, make_store: StoreFactory, table: str
    ) -> None:
        fleet = self.fleet_store(store)
        assert fleet.fleet(table).hosts == {}
        base = store.load(table)
        fleet.heartbeat(table, "host-a", "192.0.2.1")
        fleet.heartbeat(table, "host-a", "192.0.2.1")
        fleet.heartbeat(table, "host-b", None)
        other = make_store()
        try:
            view = self.fleet_store(other).fleet(table)
        finally:
            other.close()
        assert {h: (r.beats, r.address) for h, r in view.hosts.items()} == {
            "host-a": (2, "192.0.2.1"), "host-b": (1, None)}
        assert view.generation == 0
        assert store.load(table).services == {}
        assert table not in store.tables()
        # The load before the heartbeats is still a valid base: no conflict.
        service = Service("web", "host", "w.example.com", None, 80, (Container("c1", "10.0.0.1", None, host_id="host-a"),))
        store.apply(table, diff(base.services, {"web": service}), base)
        after = fleet.fleet(table)
        assert after.generation > view.generation
        assert after.settled == after.generation  # apply returned: every write of it landed
        assert after.hosts["host-a"].beats == 2
        returned = fleet.heartbeat(table, "host-a", "192.0.2.9")
        assert returned == fleet.fleet(table)  # a heartbeat answers the fleet after it
        assert returned.hosts["host-a"] == type(after.hosts["host-a"])("host-a", 3, "192.0.2.9")
        assert fleet.fleet(table).generation == after.generation

    def test_generation_moves_with_every_apply_and_only_then(self, store: StateStore, table: str) -> None:
        fleet = self.fleet_store(store)
        generations = [fleet.fleet(table).generation]
        for n in range(1, 4):
            services = {"web": Service("web", "host", "w.example.com", None, 80,
                                       tuple(Container(f"c{i}", f"10.0.0.{i + 1}") for i in range(n)))}
            write(store, table, services)
            generations.append(fleet.fleet(table).generation)
            write(store, table, services)  # no change: no write, same generation
            assert fleet.fleet(table).generation == generations[-1]
        assert generations == sorted(set(generations))

    def test_heartbeats_record_the_time_given_or_the_writers_clock(self, store: StateStore, table: str) -> None:
        import time

        fleet = self.fleet_store(store)
        fleet.heartbeat(table, "host-a", None, at=1000.25)
        assert fleet.fleet(table).hosts["host-a"].at == 1000.25
        before = time.time()
        view = fleet.heartbeat(table, "host-a", None)
        assert view.hosts["host-a"].beats == 2 and before - 1 <= view.hosts["host-a"].at <= time.time() + 1

    def test_forget_host_removes_only_its_record(self, store: StateStore, table: str) -> None:
        fleet = self.fleet_store(store)
        fleet.heartbeat(table, "host-a", None)
        fleet.heartbeat(table, "host-b", "192.0.2.2")
        assert fleet.forget_host(table, "host-a") is True
        assert fleet.forget_host(table, "host-a") is False
        assert fleet.forget_host(table + "-none", "host-a") is False
        assert list(fleet.fleet(table).hosts) == ["host-b"]

    @pytest.mark.parametrize("point, inside", [("claimed", True), ("deleting", True), ("claimed", False)],
                             ids=["b-passes-after-a-claimed", "b-passes-before-a-deletes", "b-reads-during-a-applies-after"])
    def test_last_container_leaving_one_host_while_another_adds_the_first_keeps_the_service(
        self, store: StateStore, make_store: StoreFactory, table: str, point: str, inside: bool
    ) -> None:
        """Host a removes the last container of ``race`` while host b adds its first one.

        ``inside``: b's whole pass runs at ``point`` of a's apply; else b only reads there
        and writes from that stale read after a's pass ended.  Whatever the order, the
        service is stored with b's container at once (no later pass repairs it).
        """
        from cosmos_core import pipeline

        self.fleet_store(store)
        a1, b1 = Container("a1", "10.3.0.1", 8080), Container("b1", "10.3.0.2", 8080)

        def report(handle: Any, host: str, *containers: Container) -> Any:
            candidate = Service("race", "host", "race.example.com", None, 8080, containers)
            running = tuple(RunningContainer("race", c) for c in containers)
            return pipeline.generate(runtime_for(handle), Snapshot(table, running, (candidate,) if containers else (),
                                                                   host_id=host))

        report(store, "a", a1)
        other = make_store()
        try:
            read: dict[str, State] = {}

            def b_acts() -> None:
                if inside:
                    report(other, "b", b1)
                else:
                    read["b"] = other.load(table)

            with self.interleaved(store, point, b_acts) as handle:
                result = report(handle, "a")
            if inside:
                assert "10.3.0.2:8080" in result.config  # a re-read after its plan met b's add
            else:
                report(_Preloaded(other, read["b"]), "b", b1)
            final = self.reopen(make_store, table)
            assert "race" in final, "the service item was lost: b's container is stored but not served"
            assert [(c.id, c.host_id) for c in final["race"].containers] == [("b1", "b")]
        finally:
            other.close()

    def test_a_fleet_service_in_its_grace_period_stays_stored_empty(self, store: StateStore, table: str) -> None:
        from cosmos_core import pipeline

        self.fleet_store(store)
        a1 = Container("a1", "10.3.0.1", 8080)
        graced = Service("held", "host", "held.example.com", None, 8080, (a1,), options=(("grace", 60),))
        pipeline.generate(runtime_for(store), Snapshot(table, (RunningContainer("held", a1),), (graced,),
                                                       host_id="a", at=1000.0))
        pipeline.generate(runtime_for(store), Snapshot(table, host_id="a", at=1010.0))
        held = dict(store.load(table).services)["held"]
        assert held.containers == () and dict(held.options) == {"grace": 60, "empty_since": 1010.0}

    def test_concurrent_hosts_each_land_their_own_truth(self, make_store: StoreFactory, table: str) -> None:
        """Every host reports different containers of one shared service from one stale base."""
        from cosmos_core import pipeline

        n = self.concurrent_runners
        barrier = threading.Barrier(n)
        beat = threading.Event()

        def host(i: int) -> Any:
            handle = _BarrierStore(make_store(), barrier)
            try:
                containers = tuple(Container(f"h{i}c{k}", f"10.2.{i}.{k + 1}", 8080) for k in range(3))
                candidate = Service("shared", "host", "shared.example.com", None, None, containers)
                running = tuple(RunningContainer("shared", c) for c in containers)
                return pipeline.generate(runtime_for(handle), Snapshot(table, running, (candidate,), host_id=f"h{i}"))
            finally:
                handle.inner.close()

        def heartbeats() -> None:  # heartbeats during the applies must not disturb them
            handle = make_store()
            try:
                if self.fleet:
                    while not beat.is_set():
                        handle.heartbeat(table, "beater", None)  # type: ignore[attr-defined]
                        beat.wait(0.01)  # many beats during the applies, without starving an in-process store
            finally:
                handle.close()

        beater = threading.Thread(target=heartbeats)
        beater.start()
        try:
            with ThreadPoolExecutor(n) as pool:
                list(pool.map(host, range(n)))
        finally:
            beat.set()
            beater.join()
        final = self.reopen(make_store, table)["shared"]
        assert sorted((c.id, c.host_id) for c in final.containers) == sorted(
            (f"h{i}c{k}", f"h{i}") for i in range(n) for k in range(3))
        # One host leaves: only its containers go.
        from cosmos_core import pipeline as p

        handle = make_store()
        try:
            p.generate(runtime_for(handle), Snapshot(table, host_id="h0"))
            left = dict(handle.load(table).services)["shared"]
        finally:
            handle.close()
        assert {c.host_id for c in left.containers} == {f"h{i}" for i in range(1, n)}
