"""The docker source's pure helpers and its sync bookkeeping (a recording client double)."""

from __future__ import annotations

from typing import Any

import pytest
from cosmos_events_docker import source

from cosmos_core.settings import Settings
from tests.plugins.events_docker.test_labels import WEB, attrs


class RecordingApi:
    """The two low-level calls sync makes: list running containers, inspect one."""

    def __init__(self) -> None:
        self.containers_by_id: dict[str, dict[str, Any]] = {}
        self.inspected: list[str] = []

    def containers(self) -> list[dict[str, Any]]:
        return [{"Id": cid} for cid in self.containers_by_id]

    def inspect_container(self, cid: str) -> dict[str, Any]:
        import docker.errors

        self.inspected.append(cid)
        if cid not in self.containers_by_id:
            raise docker.errors.NotFound("gone")
        return self.containers_by_id[cid]


class Client:
    def __init__(self) -> None:
        self.api = RecordingApi()


def test_relevant_events_give_their_container_id() -> None:
    assert source.relevant({"Type": "container", "Action": "start", "id": "abc"}) == "abc"
    assert source.relevant({"Type": "container", "Action": "health_status: healthy", "Actor": {"ID": "abc"}}) == "abc"
    assert source.relevant({"Type": "container", "Action": "exec_start: sh -c x", "id": "abc"}) is None
    # Connecting or disconnecting a network changes the container's address.
    connect = {"Type": "network", "Action": "connect", "id": "n", "Actor": {"ID": "n", "Attributes": {"container": "abc"}}}
    assert source.relevant(connect) == "abc"
    assert source.relevant({**connect, "Action": "disconnect"}) == "abc"
    assert source.relevant({**connect, "Action": "create"}) is None
    assert source.relevant({"Type": "network", "Action": "connect", "id": "n"}) is None


def test_backoff_doubles_up_to_a_cap() -> None:
    delays = [source.backoff(n) for n in range(1, 10)]
    assert delays[:3] == [0.2, 0.4, 0.8]
    assert max(delays) == source.RECONNECT.cap
    assert delays == sorted(delays)


def test_sync_inspects_new_and_dirty_containers_only_and_forgets_gone_ones() -> None:
    client = Client()
    a, b = "a" * 64, "b" * 64
    client.api.containers_by_id[a] = attrs(name="w1", cid=a, label=WEB)
    src = source.DockerSource(Settings(table="t1"))

    first = src.sync(client, dirty=set())
    client.api.containers_by_id[b] = attrs(name="w2", cid=b, label=WEB, networks={"bridge": "172.17.0.9"})
    second = src.sync(client, dirty=set())
    client.api.containers_by_id[a] = attrs(name="w1", cid=a, label=WEB, state={"Running": True, "Paused": True})
    third = src.sync(client, dirty={a})
    del client.api.containers_by_id[b]
    fourth = src.sync(client, dirty=set())

    assert client.api.inspected == [a, b, a]
    assert first.table == "t1" and [r.container.id for r in first.running] == ["a" * 12]
    assert [r.container.id for r in second.running] == ["a" * 12, "b" * 12]
    assert [r.container.id for r in third.running] == ["b" * 12]  # paused: not routable
    assert fourth.running == () and fourth.candidates == ()


def test_an_invalid_container_is_warned_about_once(capsys: pytest.CaptureFixture[str]) -> None:
    from cosmos_core import logs

    logs.configure("json", "info")
    client = Client()
    bad, good = "c" * 64, "d" * 64
    client.api.containers_by_id[bad] = attrs(name="evil", cid=bad, label={**WEB, "cosmos.port": "nope"})
    client.api.containers_by_id[good] = attrs(name="fine", cid=good, label=WEB, networks={"bridge": "172.17.0.8"})
    src = source.DockerSource(Settings())

    snaps = [src.sync(client, dirty={bad}) for _ in range(3)]

    warnings = [line for line in capsys.readouterr().err.splitlines() if "container_skipped" in line]
    assert len(warnings) == 1 and "evil" in warnings[0] and "cosmos.port" in warnings[0]
    assert all([r.container.id for r in snap.running] == ["d" * 12] for snap in snaps)


def test_a_deadly_kill_drains_a_container_before_it_dies_and_a_start_brings_it_back() -> None:
    kill = {"Type": "container", "Action": "kill", "id": "a", "Actor": {"ID": "a", "Attributes": {"signal": "15"}}}
    assert source.dying(kill) is True
    assert source.dying({**kill, "Actor": {"Attributes": {"signal": "SIGKILL"}}}) is True
    assert source.dying({**kill, "Actor": {"Attributes": {"signal": "1"}}}) is False  # SIGHUP: a reload, not death
    assert source.dying({"Type": "container", "Action": "start", "id": "a"}) is False
    assert source.dying({"Type": "container", "Action": "die", "id": "a"}) is None

    client = Client()
    a, b = "a" * 64, "b" * 64
    client.api.containers_by_id[a] = attrs(name="w1", cid=a, label=WEB)
    client.api.containers_by_id[b] = attrs(name="w2", cid=b, label=WEB, networks={"bridge": "172.17.0.9"})
    src = source.DockerSource(Settings(table="t1"))
    src._dying.add(a)  # what the event pump records for the kill event  # noqa: SLF001

    draining = src.sync(client, dirty={a})  # still running, but no new requests
    src._dying.discard(a)  # noqa: SLF001
    back = src.sync(client, dirty={a})

    assert [r.container.id for r in draining.running] == ["b" * 12]
    assert [r.container.id for r in back.running] == ["a" * 12, "b" * 12]


def test_storms_are_counted_in_services_named_by_the_event_labels() -> None:
    src = source.DockerSource(Settings(table="t1"))
    src._services["c1"] = "service:web"  # noqa: SLF001
    assert src._service_of("c1") == "service:web" and src._service_of("c2") == "c2"  # noqa: SLF001


class EventsClient:
    """A client whose event stream is a fixed list (what ``_follow``'s pump reads)."""

    def __init__(self, events: list[dict[str, Any]]) -> None:
        self.events_list = events
        self.api = RecordingApi()

    def events(self, decode: bool, filters: dict[str, Any]) -> list[dict[str, Any]]:
        return self.events_list


def pumped(src: source.DockerSource, events: list[dict[str, Any]]) -> list[str]:
    """The container ids the event pump queues for ``events`` (each one would cost a pass)."""
    src._follow(EventsClient(events))  # noqa: SLF001
    queued = []
    while (item := src._queue.get(timeout=5)) != source.LOST:  # noqa: SLF001
        queued.append(item)
    return queued


def container_event(cid: str, name: str, action: str = "start", **extra: str) -> dict[str, Any]:
    return {"Type": "container", "Action": action, "id": cid,
            "Actor": {"ID": cid, "Attributes": {"name": name, **extra}}}


def network_event(cid: str) -> dict[str, Any]:
    return {"Type": "network", "Action": "connect", "id": "n",
            "Actor": {"ID": "n", "Attributes": {"container": cid, "name": "bridge", "type": "bridge"}}}


def test_events_of_containers_the_name_filter_excludes_trigger_no_pass() -> None:
    src = source.DockerSource(Settings(options={"name_filter": "shop"}))
    events = [
        container_event("a", "shop-web"), container_event("b", "blog-web"),
        network_event("b"),                     # the network event names the network: b is known to be excluded
        container_event("b", "blog-web", "die"), network_event("a"), network_event("c"),  # c: unknown, kept
        container_event("d", "shop-db", "rename", oldName="/blog-db"),  # renamed into the filter: kept
        container_event("a", "blog-web2", "rename", oldName="/shop-web"),  # renamed out of it: kept (to remove it)
        container_event("e", "", "start"),      # no name in the event: kept (sync decides)
    ]
    # Network events of containers not running at the last sync (none ran: no sync yet) start no pass of
    # their own (issue 11: `docker run` connects before it starts); they are kept for the next pass.
    assert pumped(src, events) == ["a", "d", "a", "e"] and src._late == {"a", "c"}  # noqa: SLF001
    # Without a filter every relevant event counts.
    plain = source.DockerSource(Settings())
    assert pumped(plain, events) == ["a", "b", "b", "d", "a", "e"] and plain._late == {"a", "b", "c"}  # noqa: SLF001


def test_sync_learns_which_containers_the_name_filter_excludes() -> None:
    client = Client()
    a, b = "a" * 64, "b" * 64
    client.api.containers_by_id[a] = attrs(name="shop-web", cid=a, label=WEB)
    client.api.containers_by_id[b] = attrs(name="blog-web", cid=b, label=WEB)
    src = source.DockerSource(Settings(table="t1", options={"name_filter": "shop"}))
    snap = src.sync(client, dirty=set())
    assert [r.container.id for r in snap.running] == ["a" * 12]
    assert src.wanted(network_event(b)) is None and src.wanted(network_event(a)) == a
    del client.api.containers_by_id[b]
    src.sync(client, dirty=set())
    assert src.wanted(network_event(b)) == b  # gone, forgotten: bounded memory


def _event(kind: str, action: str, cid: str, **attributes: str) -> dict[str, Any]:
    if kind == "network":
        return {"Type": "network", "Action": action, "id": "net", "Actor": {"ID": "net", "Attributes": {"container": cid, **attributes}}}
    return {"Type": "container", "Action": action, "id": cid, "Actor": {"ID": cid, "Attributes": attributes}}


def test_docker_run_starts_one_pass_on_start_not_on_the_network_connect_before_it() -> None:
    """`docker run` is create, network connect, start: the connect of a container not running yet starts
    no pass (else the start waits for the debounce interval after that pass); the container is still
    inspected with the next pass, and a connect of a running container starts one at once."""
    import queue as q

    src = source.DockerSource(Settings(table="t1"))
    fed: q.Queue[str] = q.Queue()
    new, running = "n" * 64, "r" * 64
    src._cache[running] = object()  # type: ignore[assignment]  # noqa: SLF001 - listed at the last sync
    src._on_event(_event("container", "create", new, **{"cosmos.service": "web"}), fed)  # noqa: SLF001
    src._on_event(_event("network", "connect", new), fed)  # noqa: SLF001
    assert fed.empty() and src._first_event_at is None  # noqa: SLF001
    src._on_event(_event("container", "start", new, **{"cosmos.service": "web"}), fed)  # noqa: SLF001
    src._on_event(_event("network", "connect", running), fed)  # noqa: SLF001
    assert [fed.get_nowait(), fed.get_nowait()] == [new, running] and fed.empty()
    assert src._service_of(new) == "service:web"  # known from `create` on: the storm rule counts the service  # noqa: SLF001

    client = Client()
    late = "x" * 64
    src._on_event(_event("network", "connect", late), fed)  # noqa: SLF001 - not running at the last sync: marked only
    assert fed.empty()
    client.api.containers_by_id[late] = attrs(name="w1", cid=late, label=WEB)
    src._cache = {late: source.labels.Parsed()}  # noqa: SLF001 - a pass cached it meanwhile (the race)
    src.sync(client, dirty=set())
    assert client.api.inspected == [late]  # the marked container is inspected again with the next pass


def test_events_of_containers_the_name_filter_excludes_start_no_pass() -> None:
    import queue as q

    src = source.DockerSource(Settings(table="t1", options={"name_filter": "prod-"}))
    fed: q.Queue[str] = q.Queue()
    src._on_event(_event("container", "start", "a" * 64, name="other-1"), fed)  # noqa: SLF001
    assert fed.empty()
    src._on_event(_event("container", "start", "b" * 64, name="prod-web-1"), fed)  # noqa: SLF001
    src._on_event(_event("container", "rename", "c" * 64, name="other-2", oldName="/prod-web-2"), fed)  # noqa: SLF001
    src._on_event(_event("container", "start", "d" * 64), fed)  # noqa: SLF001 - no name: not filtered
    assert [fed.get_nowait() for _ in range(3)] == ["b" * 64, "c" * 64, "d" * 64]


def test_a_whole_docker_run_and_stop_of_an_excluded_container_starts_no_pass() -> None:
    """Fresh-user review fault 13: `docker run --name blog-1` under name_filter=shop (create, network connect,
    start, then kill, die, network disconnect, stop, destroy) queues nothing; the same for shop-1 queues its
    start and its stop events, and the connect before its start starts no pass either."""
    import queue as q

    src = source.DockerSource(Settings(table="t1", options={"name_filter": "shop"}))
    fed: q.Queue[str] = q.Queue()

    def run_and_stop(cid: str, name: str) -> list[str]:
        for kind, action in (("container", "create"), ("network", "connect"), ("container", "start"),
                             ("container", "kill"), ("container", "die"), ("network", "disconnect"),
                             ("container", "stop"), ("container", "destroy")):
            extra = {"name": name, "cosmos.service": "web"} if kind == "container" else {"name": "bridge"}
            src._on_event(_event(kind, action, cid, **extra), fed)  # noqa: SLF001
        return [fed.get_nowait() for _ in range(fed.qsize())]

    assert run_and_stop("b" * 64, "blog-1") == []
    shop = run_and_stop("s" * 64, "shop-1")
    assert shop and set(shop) == {"s" * 64}
    assert "b" * 64 not in src._late  # noqa: SLF001 - known to be excluded: not even inspected again


def test_an_unknown_label_is_warned_about_once_per_container_and_the_container_routes(
        capsys: pytest.CaptureFixture[str]) -> None:
    from cosmos_core import logs

    logs.configure("json", "info")
    client = Client()
    cid = "e" * 64
    client.api.containers_by_id[cid] = attrs(name="typo", cid=cid, label={**WEB, "cosmos.wieght": "5"})
    src = source.DockerSource(Settings())
    snaps = [src.sync(client, dirty={cid}) for _ in range(3)]
    warnings = [line for line in capsys.readouterr().err.splitlines() if "container_label_unknown" in line]
    assert len(warnings) == 1 and "typo" in warnings[0] and "cosmos.wieght" in warnings[0]
    assert "did you mean cosmos.weight?" in warnings[0]
    assert all([r.container.id for r in snap.running] == ["e" * 12] for snap in snaps)
    client.api.containers_by_id[cid] = attrs(name="typo", cid=cid, label={**WEB, "cosmos.balanse": "first"})
    src.sync(client, dirty={cid})
    again = [line for line in capsys.readouterr().err.splitlines() if "container_label_unknown" in line]
    assert len(again) == 1 and "cosmos.balanse" in again[0]  # a new misspelling is warned about again


def test_created_containers_of_new_services_are_announced_to_the_storm_rule_until_they_start() -> None:
    """`docker compose up` creates every container before it starts any: the pump announces each `create`
    to the debouncer under its service (a storm on its way), and a `start`, `die` or `destroy` settles it
    before the start is queued.  A container the name filter excludes is never announced."""
    import queue as q

    src = source.DockerSource(Settings(table="t1", options={"name_filter": "shop"}))
    fed: q.Queue[str] = q.Queue()
    for index in range(5):
        src._on_event(_event("container", "create", f"c{index}", name=f"shop-s{index}",  # noqa: SLF001
                             **{"cosmos.service": f"s{index}"}), fed)
    src._on_event(_event("container", "create", "c9", name="blog-x", **{"cosmos.service": "x"}), fed)  # noqa: SLF001
    src._on_event(_event("container", "create", "c8", name="shop-s0b", **{"cosmos.service": "s0"}), fed)  # noqa: SLF001
    now = src.debouncer.clock()
    assert fed.empty()  # a creation starts no pass
    assert src.debouncer._awaited(now) == 5  # noqa: SLF001 - s0..s4 (s0 twice); blog-x is filtered out
    src._on_event(_event("container", "start", "c1", name="shop-s1", **{"cosmos.service": "s1"}), fed)  # noqa: SLF001
    src._on_event(_event("container", "destroy", "c2", name="shop-s2", **{"cosmos.service": "s2"}), fed)  # noqa: SLF001
    src._on_event(_event("container", "die", "c3", name="shop-s3", **{"cosmos.service": "s3"}), fed)  # noqa: SLF001
    assert src.debouncer._awaited(now) == 2  # noqa: SLF001 - s0 (two containers) and s4 still to start
    assert fed.get_nowait() == "c1"
