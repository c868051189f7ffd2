"""Fleet items: heartbeats and the settled marker on the revision item (moto)."""

from __future__ import annotations

from cosmos_storage_dynamodb import layout

from cosmos_core.model import Container, Service
from cosmos_core.reconcile import diff


def svc(*containers: Container) -> Service:
    return Service("web", "host", "w.test", None, 80, containers)


def test_only_plans_with_fleet_containers_settle() -> None:
    single = diff({}, {"web": svc(Container("c1", "10.0.0.1"))})
    fleet = diff({}, {"web": svc(Container("c1", "10.0.0.1", None, host_id="h1"))})
    gone = diff({"web": svc(Container("c1", "10.0.0.1", None, host_id="h1"))}, {})
    assert not layout.touches_fleet(single)
    assert layout.touches_fleet(fleet) and layout.touches_fleet(gone)


def test_decode_fleet() -> None:
    item = {"pk": {"S": "t"}, "sk": {"S": "rev#shared"}, "rev": {"N": "7"}, "settled": {"N": "6"},
            "hb#a": {"N": "3"}, "ad#a": {"S": "192.0.2.1"}, "hb#b": {"N": "1"}}
    view = layout.decode_fleet(item)
    assert (view.generation, view.settled) == (7, 6)
    assert {h: (r.beats, r.address) for h, r in view.hosts.items()} == {"a": (3, "192.0.2.1"), "b": (1, None)}
    assert layout.decode_fleet(None).generation == 0
    # A revision item made by heartbeats alone decodes as revision 0 for load too.
    assert layout.decode([{"pk": {"S": "t"}, "sk": {"S": "rev#shared"}, "hb#a": {"N": "1"}}]).revision == 0


def test_a_fleet_apply_settles_after_its_last_write(open_dynamodb) -> None:
    store = open_dynamodb()
    order: list[str] = []
    store.client.meta.events.register("before-call.dynamodb", lambda model, **_: order.append(model.name))
    state = store.load("t")
    store.apply("t", diff(state.services, {"web": svc(Container("c1", "10.0.0.1", None, host_id="h1"))}), state)
    assert order[-1] == "UpdateItem" and "BatchWriteItem" in order[:-1]
    view = store.fleet("t")
    assert view.settled == view.generation == 1
    order.clear()
    state = store.load("t")
    store.apply("t", diff(state.services, {"web": svc(Container("c2", "10.0.0.2"))}), state)
    # c1 (h1) removed: still a fleet plan: the revision ADD, c2's join (ver + 1), and the settle last
    assert order.count("UpdateItem") == 3 and order[-1] == "UpdateItem"
    view = store.fleet("t")
    assert view.settled == view.generation == 2


def test_fleet_ops_check_a_service_a_host_leaves_unless_it_is_kept_empty_on_purpose() -> None:
    a1 = Container("a1", "10.0.0.1", None, host_id="a")
    b1 = Container("b1", "10.0.0.2", None, host_id="b")
    # a leaves, b (as a saw it) stays: b may be leaving at the same moment, so the service is checked
    ops = layout.fleet_ops("t", diff({"web": svc(a1, b1)}, {"web": svc(b1)}), 2)
    assert ops.vacated == [("web", False)] and [i["sk"]["S"] for i in ops.container_deletes] == ["ctr#web#a1"]
    # the last container goes: the service delete is guarded
    ops = layout.fleet_ops("t", diff({"web": svc(a1)}, {}), 2)
    assert ops.vacated == [("web", True)]
    # a grace period keeps the service empty on purpose: never vacated
    graced = svc(a1).derive(options=(("grace", 30),))
    held = graced.derive(containers=(), options=(("empty_since", 1000.0), ("grace", 30)))
    ops = layout.fleet_ops("t", diff({"web": graced}, {"web": held}), 2)
    assert ops.vacated == [] and ops.settings == [held]
    # a container added: it is put, then the service joined (ver + 1)
    ops = layout.fleet_ops("t", diff({"web": svc(a1)}, {"web": svc(a1, b1)}), 2)
    assert [s.name for s in ops.joined] == ["web"] and ops.settings == [] and ops.vacated == []


def test_hosts_writing_from_one_stale_base_never_refuse_each_other(open_dynamodb) -> None:
    """Hosts starting at once all load the empty namespace, then all apply: with the namespace
    lock all but one conflicted and retried; fleet plans take no lock, so none conflicts."""
    from cosmos_core.reconcile import reconcile
    from cosmos_core.model import RunningContainer, Snapshot

    hosts = [open_dynamodb() for _ in range(5)]
    bases = [h.load("t") for h in hosts]
    for i, (handle, base) in enumerate(zip(hosts, bases, strict=True)):
        mine = Container(f"h{i}c", f"10.0.0.{i + 1}", None)
        snapshot = Snapshot("t", (RunningContainer("web", mine),), (svc(mine),), host_id=f"h{i}")
        handle.apply("t", diff(base.services, reconcile(base.services, snapshot)), base)
    assert sum(h.conflicts for h in hosts) == 0
    stored = hosts[0].load("t").services["web"]
    assert sorted((c.id, c.host_id) for c in stored.containers) == [(f"h{i}c", f"h{i}") for i in range(5)]
    view = hosts[0].fleet("t")
    assert view.generation == view.settled == 5  # every apply moved the generation once
