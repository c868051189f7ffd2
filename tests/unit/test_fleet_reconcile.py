"""Fleet mode in the model, the payload and reconcile: a host owns what it reports."""

from __future__ import annotations

import pytest

from cosmos_core import payload
from cosmos_core.errors import ValidationError
from cosmos_core.model import Container, RunningContainer, Service, Snapshot
from cosmos_core.reconcile import diff, reconcile


def svc(name: str, *containers: Container, port: int | None = 80) -> Service:
    return Service(name, "host", f"{name}.example.com", None, port, containers)


def snap(host: str | None, *running: tuple[str, Container], candidates: tuple[Service, ...] = ()) -> Snapshot:
    return Snapshot("t", tuple(RunningContainer(s, c) for s, c in running), candidates, host_id=host)


def report(host: str, service: str, *ids: str) -> Snapshot:
    """What a Docker host reports: its running containers plus one candidate per service."""
    containers = tuple(Container(i, f"10.0.{ord(host[-1]) % 250}.{n + 1}", 8080) for n, i in enumerate(ids))
    candidates = (svc(service, *containers, port=None),) if ids else ()
    return snap(host, *((service, c) for c in containers), candidates=candidates)


def ids_by_host(services: dict[str, Service]) -> dict[str, list[tuple[str, str | None]]]:
    return {n: [(c.id, c.host_id) for c in s.containers] for n, s in services.items()}


def test_host_id_is_checked_in_model_and_snapshot() -> None:
    assert Container("c1", "10.0.0.1", 80, host_id="host-a").host_id == "host-a"
    with pytest.raises(ValidationError) as exc:
        Container("c1", "10.0.0.1", 80, host_id="bad#host")
    assert exc.value.field == "host"
    with pytest.raises(ValidationError):
        Snapshot("t", host_id="has space")


def test_snapshot_stamps_its_host_on_every_container() -> None:
    desired = reconcile({}, report("a", "web", "c1", "c2"))
    assert ids_by_host(desired) == {"web": [("c1", "a"), ("c2", "a")]}


def test_a_host_never_touches_another_hosts_containers() -> None:
    stored = reconcile({}, report("a", "web", "a1"))
    stored = reconcile(stored, report("b", "web", "b1"))
    assert ids_by_host(stored) == {"web": [("a1", "a"), ("b1", "b")]}
    # b reports nothing: only b's container goes, the service lives on with a's.
    stored = reconcile(stored, report("b", "web"))
    assert ids_by_host(stored) == {"web": [("a1", "a")]}
    # a reports nothing either: the service has no container left anywhere, it goes.
    assert reconcile(stored, report("a", "web")) == {}


def test_a_service_lives_while_any_host_has_a_container() -> None:
    stored = reconcile({}, report("a", "web", "a1"))
    stored = reconcile(stored, report("b", "api", "b1"))
    after = reconcile(stored, snap("b"))
    assert ids_by_host(after) == {"web": [("a1", "a")]}


def test_single_host_containers_belong_to_the_first_fleet_host_that_reports() -> None:
    legacy = reconcile({}, snap(None, ("web", Container("old", "10.0.0.9", 80)),
                                candidates=(svc("web", Container("old", "10.0.0.9", 80)),)))
    assert ids_by_host(legacy) == {"web": [("old", None)]}
    after = reconcile(legacy, report("a", "web", "new"))
    assert ids_by_host(after) == {"web": [("new", "a")]}


def test_without_a_host_id_the_snapshot_is_the_whole_truth_as_before() -> None:
    stored = reconcile({}, report("a", "web", "a1"))
    stored = reconcile(stored, report("b", "web", "b1"))
    only = Container("c9", "10.9.9.9", 80)
    after = reconcile(stored, snap(None, ("web", only)))
    assert ids_by_host(after) == {"web": [("c9", None)]}


def test_moving_a_container_between_hosts_changes_its_owner() -> None:
    stored = reconcile({}, report("a", "web", "x"))
    moved = reconcile(stored, report("b", "web", "x"))
    assert ids_by_host(moved) == {"web": [("x", "b")]}
    plan = diff(stored, moved)
    assert [c.host_id for c in plan.changes[0].added] == ["b"]
    # a no longer reports x, but x now belongs to b: a leaves it alone.
    assert ids_by_host(reconcile(moved, report("a", "web"))) == {"web": [("x", "b")]}


def test_reports_from_many_hosts_in_any_order_give_the_union() -> None:
    import itertools

    reports = [report(h, "web", f"{h}1", f"{h}2") for h in "abc"]
    results = set()
    for order in itertools.permutations(reports):
        state: dict[str, Service] = {}
        for r in order:
            state = reconcile(state, r)
        results.add(tuple(ids_by_host(state)["web"]))
    assert results == {(("a1", "a"), ("a2", "a"), ("b1", "b"), ("b2", "b"), ("c1", "c"), ("c2", "c"))}


def test_a_repeated_report_changes_nothing() -> None:
    stored = reconcile(reconcile({}, report("a", "web", "a1")), report("b", "web", "b1"))
    assert not diff(stored, reconcile(stored, report("a", "web", "a1")))


def test_payload_host_field_in_both_dialects_and_round_trip() -> None:
    old = payload.parse({"tableName": "t", "host": "node-1", "runningServices": [], "candidateServices": []})
    new = payload.parse({"table": "t", "host": "node-1", "running": []})
    assert old.host_id == new.host_id == "node-1"
    assert payload.parse({"table": "t"}).host_id is None
    back = payload.loads(payload.dumps(new))
    assert back.host_id == "node-1"
    assert "host" not in payload.dump(payload.parse({"table": "t"}))


@pytest.mark.parametrize("bad", ["a b", 7, "#x", "x" * 129, "", None])  # "" / null would be "whole truth"
def test_a_bad_payload_host_names_the_field(bad: object) -> None:
    with pytest.raises(ValidationError) as exc:
        payload.parse({"table": "t", "host": bad})
    assert exc.value.field == "host"


def test_status_dict_shows_the_host_only_in_fleet_mode() -> None:
    one = svc("web", Container("c1", "10.0.0.1", 80, host_id="a"), Container("c2", "10.0.0.2"))
    assert one.to_dict()["containers"] == [
        {"id": "c1", "address": "10.0.0.1:80", "host": "a"},
        {"id": "c2", "address": "10.0.0.2:80"},
    ]
