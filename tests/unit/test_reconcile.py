"""Reconcile rules 1-6 and the original's defects, against the pure functions."""

from __future__ import annotations

from pathlib import Path

from cosmos_core import payload
from cosmos_core.model import Container, RunningContainer, Service, Snapshot
from cosmos_core.reconcile import diff, reconcile

SEED = Path(__file__).parents[2] / "examples" / "seed-payload.json"


def svc(name: str, *containers: Container, predicate: str | None = None, cookie: str | None = None,
        port: int | None = 80, mode: str = "host") -> Service:
    return Service(name, mode, predicate or f"{name}.example.com", cookie, port, containers)


def c(cid: str, host: str = "10.0.0.1", port: int | None = None) -> Container:
    return Container(cid, host, port)


def running(*pairs: tuple[str, Container]) -> tuple[RunningContainer, ...]:
    return tuple(RunningContainer(s, ctr) for s, ctr in pairs)


def ids(service: Service) -> list[str]:
    return [x.id for x in service.containers]


def test_seed_payload_on_empty_store_matches_the_article() -> None:
    snapshot = payload.loads(SEED.read_text())
    desired = reconcile({}, snapshot)
    assert list(desired) == ["app1", "app2"]
    # Rule 4: a new service gets exactly the candidate's containers, so jk3243j54jl
    # (running, but not a candidate) is absent, as in the article's output.
    assert ids(desired["app1"]) == ["a23nj53h3j4"]
    assert ids(desired["app2"]) == ["das843j3h3k", "fds32k4354f"]
    assert desired["app1"].cookie == "JSESSIONID"
    assert desired["app1"].endpoint(desired["app1"].containers[0]) == "192.168.1.9:80"


def test_rule1_stored_service_without_running_container_is_deleted() -> None:
    stored = {"gone": svc("gone", c("x1")), "kept": svc("kept", c("k1"))}
    desired = reconcile(stored, Snapshot("t", running(("kept", c("k1")))))
    assert list(desired) == ["kept"]


def test_rule1_candidate_recreates_a_service_with_no_running_container() -> None:
    stored = {"app": svc("app", c("old"))}
    new = svc("app", c("new"), predicate="new.example.com")
    desired = reconcile(stored, Snapshot("t", (), (new,)))
    assert ids(desired["app"]) == ["new"]
    assert desired["app"].predicate == "new.example.com"


def test_rule2_keeps_only_running_containers_and_running_ones_join() -> None:
    stored = {"app": svc("app", c("a"), c("b"), port=8080)}
    snap = Snapshot("t", running(("app", c("b")), ("app", c("z", "10.0.0.9"))))
    desired = reconcile(stored, snap)
    assert ids(desired["app"]) == ["b", "z"]
    joined = desired["app"].containers[1]
    assert joined.port is None and desired["app"].endpoint(joined) == "10.0.0.9:8080"  # the stored port


def test_rule2_running_container_reports_its_current_address() -> None:
    stored = {"app": svc("app", c("a", "10.0.0.1", 81))}
    desired = reconcile(stored, Snapshot("t", running(("app", c("a", "10.0.0.2")))))
    assert desired["app"].endpoint(desired["app"].containers[0]) == "10.0.0.2:81"


def test_rule3_candidate_for_stored_service_adds_containers_and_replaces_settings() -> None:
    stored = {"app": svc("app", c("a"), cookie="OLD", predicate="old.example.com")}
    cand = svc("app", c("b"), cookie="NEW", predicate="new.example.com", mode="path", port=9000)
    snap = Snapshot("t", running(("app", c("a"))), (cand,))
    desired = reconcile(stored, snap)["app"]
    assert ids(desired) == ["a", "b"]
    assert desired.settings == ("path", "new.example.com", "NEW", 9000)


def test_rule3_candidate_without_port_keeps_the_stored_port() -> None:
    stored = {"app": svc("app", c("a"), port=8080)}
    cand = Service("app", "host", "app.example.com", None, None, ())
    desired = reconcile(stored, Snapshot("t", running(("app", c("a"))), (cand,)))["app"]
    assert desired.port == 8080 and ids(desired) == ["a"]


def test_rule3_a_2016_candidate_does_not_move_stored_servers_to_its_port() -> None:
    first = payload.parse({"table": "t", "candidates": [
        {"serviceName": "a", "predicate": "a.com", "port": 80, "containers": [{"id": "c1", "ip": "10.0.0.1"}]}]})
    stored = reconcile({}, first)
    second = payload.parse({"table": "t", "running": [{"serviceName": "a", "id": "c1", "ip": "10.0.0.1"}],
                            "candidates": [{"serviceName": "a", "predicate": "a.com",
                                            "containers": [{"id": "c2", "ip": "10.0.0.2:9000"}]}]})
    service = reconcile(stored, second)["a"]
    assert [service.endpoint(c) for c in service.containers] == ["10.0.0.1:80", "10.0.0.2:9000"]


def test_rule4_running_containers_of_unknown_services_are_ignored() -> None:
    snap = Snapshot("t", running(("stranger", c("s1")), ("new", c("n2"))), (svc("new", c("n1")),))
    desired = reconcile({}, snap)
    assert list(desired) == ["new"]
    assert ids(desired["new"]) == ["n1"]


def test_rule5_containers_are_deduplicated_by_id_candidate_wins() -> None:
    stored = {"app": svc("app", c("a", "10.0.0.1"))}
    cand = svc("app", c("a", "10.0.0.7"), c("a", "10.0.0.8"))
    desired = reconcile(stored, Snapshot("t", running(("app", c("a", "10.0.0.1"))), (cand,)))["app"]
    assert [(x.id, x.host) for x in desired.containers] == [("a", "10.0.0.8")]


def test_rule6_no_service_with_a_running_container_is_dropped() -> None:
    """The original kept only the first stored service on each request."""
    stored = {f"s{i}": svc(f"s{i}", c(f"c{i}")) for i in range(5)}
    snap = Snapshot("t", running(*((f"s{i}", c(f"c{i}")) for i in range(5))), (svc("s9", c("c9")),))
    desired = reconcile(stored, snap)
    assert list(desired) == ["s0", "s1", "s2", "s3", "s4", "s9"]


def test_seed_twice_keeps_every_service_and_adds_the_running_container() -> None:
    snapshot = payload.loads(SEED.read_text())
    first = reconcile({}, snapshot)
    second = reconcile(first, snapshot)
    assert ids(second["app1"]) == ["a23nj53h3j4", "jk3243j54jl"]
    # app2's containers are not in the running list: the candidate still re-adds them.
    assert ids(second["app2"]) == ["das843j3h3k", "fds32k4354f"]


def test_reconcile_output_is_sorted_and_deterministic() -> None:
    snap = Snapshot("t", (), (svc("b", c("2"), c("1")), svc("a", c("3"))))
    one, two = reconcile({}, snap), reconcile({}, Snapshot("t", (), tuple(reversed(snap.candidates))))
    assert list(one) == ["a", "b"] == list(two)
    assert one == two
    assert ids(one["b"]) == ["1", "2"]


def test_diff_is_empty_when_nothing_changes() -> None:
    state = {"app": svc("app", c("a"))}
    assert not diff(state, dict(state))
    assert reconcile(state, Snapshot("t", running(("app", c("a"))))) == state


def test_diff_reports_only_what_changed() -> None:
    before = {"a": svc("a", c("1")), "b": svc("b", c("2")), "gone": svc("gone", c("3"))}
    after = {"a": svc("a", c("1")), "b": svc("b", c("2"), c("4")), "new": svc("new", c("5"))}
    plan = diff(before, after)
    assert [ch.name for ch in plan.changes] == ["b", "gone", "new"]
    b = plan.changes[0]
    assert not b.settings_changed and [x.id for x in b.added] == ["4"] and b.removed == ()
    assert plan.summary() == {"created": 1, "deleted": 1, "updated": 1, "containers_added": 2, "containers_removed": 1}

