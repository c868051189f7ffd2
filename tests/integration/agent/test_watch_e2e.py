"""`cosmos watch` end to end: real dockerd, the FROM-scratch HAProxy and busybox images.

Each test runs the agent as a subprocess (sqlite store in tmp_path, its own
HAProxy container) and talks HTTP to HAProxy's container address only.
"""

from __future__ import annotations

import collections
import signal
from collections.abc import Callable

from tests.integration.agent.conftest import Agent, Env, url, wait_routed
from tests.support.images import http_get, run_test_container, wait_http

MakeAgent = Callable[..., Agent]
NO_MATCH = "no service matches this request"


def test_labelled_containers_route_by_host_and_path_and_stopping_removes_them(env: Env, make_agent: MakeAgent) -> None:
    proxy = env.haproxy()
    agent = make_agent()
    agent.wait_event("agent_started")
    by_host = env.backend("web", service="web", predicate="web.test", port="8080")
    # The backend serves /cgi-bin/sticky; HAProxy passes the path through unchanged.
    env.backend("shop", service="shop", mode="path", predicate="/cgi-bin", port="8080")

    assert wait_routed(url(proxy), "web.test") == f"{env.prefix}-web\n"
    assert wait_routed(url(proxy, "/cgi-bin/sticky")) == f"{env.prefix}-shop\n"
    assert http_get(url(proxy, "/cgi-binx")).body == NO_MATCH  # a prefix matches whole segments

    by_host.stop(timeout=1)

    wait_http(url(proxy), headers={"Host": "web.test"}, expect_status=404)
    assert http_get(url(proxy), {"Host": "web.test"}).body == NO_MATCH
    assert http_get(url(proxy, "/cgi-bin/sticky")).body == f"{env.prefix}-shop\n"
    stored = agent.events("reconciled")[-1]
    assert stored["services"] == 1
    assert agent.stop() == 0
    assert agent.events("agent_stopped")[-1]["failures"] == 0


def test_sticky_cookie_keeps_a_client_on_one_backend_while_new_clients_spread(env: Env, make_agent: MakeAgent) -> None:
    proxy = env.haproxy()
    for index in range(3):
        env.backend(f"app{index}", service="app", predicate="app.test", port="8080", cookie="SRV")
    make_agent()
    sticky = url(proxy, "/cgi-bin/sticky")
    host = {"Host": "app.test"}
    wait_routed(sticky, "app.test")

    fresh = collections.Counter(http_get(sticky, host).body for _ in range(30))
    first = http_get(sticky, host)
    cookie = first.headers["Set-Cookie"].split(";")[0]
    pinned = {http_get(sticky, {**host, "Cookie": cookie}).body for _ in range(30)}

    assert len(fresh) == 3 and min(fresh.values()) >= 5, fresh  # round robin without a cookie
    assert cookie.startswith("SRV=") and cookie.endswith(f"~{first.body.strip()}-sess")
    assert pinned == {first.body}


def test_hostile_or_invalid_labels_are_skipped_and_others_keep_routing(env: Env, make_agent: MakeAgent) -> None:
    proxy = env.haproxy()
    env.backend("evil", service="evil", predicate="evil.test\n    use_backend good", port="8080")
    env.backend("badport", service="badport", predicate="badport.test", port="80x")
    env.backend("badmode", service="badmode", mode="regex", predicate="x.test", port="8080")
    agent = make_agent()
    env.backend("good", service="good", predicate="good.test", port="8080")

    assert wait_routed(url(proxy), "good.test") == f"{env.prefix}-good\n"
    skipped = agent.wait_event("container_skipped", count=3)
    assert sorted((w["container"], w["label"]) for w in skipped) == [
        (f"{env.prefix}-badmode", "cosmos.mode"),
        (f"{env.prefix}-badport", "cosmos.port"),
        (f"{env.prefix}-evil", "cosmos.predicate"),
    ]
    for host in ("evil.test", "badport.test", "x.test"):
        assert http_get(url(proxy), {"Host": host}).status == 404
    env.backend("good2", service="good", predicate="good.test", port="8080")
    wait_routed(url(proxy), "good.test", expect=f"{env.prefix}-good2\n")  # several syncs later...
    assert len(agent.events("container_skipped")) == 3  # warned once each, not on every sync
    assert agent.events("pass_failed") == []


def test_killed_agent_restarted_while_containers_come_and_go_converges(env: Env, make_agent: MakeAgent) -> None:
    proxy = env.haproxy()
    old = env.backend("old", service="old", predicate="old.test", port="8080")
    keep = env.backend("keep1", service="keep", predicate="keep.test", port="8080")
    first = make_agent()
    wait_routed(url(proxy), "old.test")
    wait_routed(url(proxy), "keep.test")

    first.stop(signal.SIGKILL)
    old.stop(timeout=1)
    keep.remove(force=True)
    env.backend("keep2", service="keep", predicate="keep.test", port="8080")
    env.backend("new", service="new", predicate="new.test", port="8080")
    second = make_agent()

    assert wait_routed(url(proxy), "new.test") == f"{env.prefix}-new\n"
    assert http_get(url(proxy), {"Host": "old.test"}).status == 404
    bodies = {http_get(url(proxy), {"Host": "keep.test"}).body for _ in range(10)}
    assert bodies == {f"{env.prefix}-keep2\n"}
    assert second.events("reconciled")[0]["services"] == 2
    assert second.stop() == 0


def test_agent_waits_for_a_missing_haproxy_container_then_configures_it(env: Env, make_agent: MakeAgent) -> None:
    env.backend("web", service="web", predicate="web.test", port="8080")
    agent = make_agent()
    failed = agent.wait_event("pass_failed")
    assert f"{env.prefix}-haproxy" in failed[0]["error"] and "not found" in failed[0]["error"]

    proxy = env.haproxy()  # its start event makes the agent try again

    assert wait_routed(url(proxy), "web.test") == f"{env.prefix}-web\n"
    assert agent.proc is not None and agent.proc.poll() is None


def test_once_syncs_reloads_and_exits(env: Env, make_agent: MakeAgent) -> None:
    proxy = env.haproxy()
    env.backend("web", service="web", predicate="web.test", port="8080")

    agent = make_agent("--once")

    assert agent.proc is not None and agent.proc.wait(30) == 0
    assert http_get(url(proxy), {"Host": "web.test"}).body == f"{env.prefix}-web\n"
    assert [e["event"] for e in agent.events() if e["event"] in ("reload", "agent_stopped")] == ["reload", "agent_stopped"]


def test_health_checks_and_pause_decide_routability(env: Env, make_agent: MakeAgent) -> None:
    proxy = env.haproxy()
    agent = make_agent()
    agent.wait_event("reload", timeout=60)  # the start-up sync is live before the container starts
    name = f"{env.prefix}-hc"
    checked = run_test_container(
        env.client, env.backend_image, name=name, hostname=name,
        labels=env.labels(service="hc", predicate="hc.test", port="8080"),
        healthcheck={"test": ["CMD-SHELL", "test -f /tmp/ok"], "interval": 300_000_000, "retries": 1},
    )
    env.started.append(checked)
    agent.wait_event("docker_synced", count=2)  # its start was seen ...
    wait_http(url(proxy), headers={"Host": "hc.test"}, expect_status=404)  # ... and a config is live
    assert http_get(url(proxy), {"Host": "hc.test"}).body == NO_MATCH  # ... but it is not healthy yet

    checked.exec_run(["touch", "/tmp/ok"])
    assert wait_routed(url(proxy), "hc.test") == f"{name}\n"

    checked.pause()
    wait_http(url(proxy), headers={"Host": "hc.test"}, expect_status=404)
    checked.unpause()
    assert wait_routed(url(proxy), "hc.test") == f"{name}\n"


def test_the_agent_works_with_the_dynamodb_store(env: Env, make_agent: MakeAgent, dynalite_env: dict[str, str]) -> None:
    proxy = env.haproxy()
    web = env.backend("web", service="web", predicate="web.test", port="8080")
    agent = make_agent(store=f"dynamodb://{env.prefix}", variables=dynalite_env)

    assert wait_routed(url(proxy), "web.test") == f"{env.prefix}-web\n"
    web.stop(timeout=1)
    wait_http(url(proxy), headers={"Host": "web.test"}, expect_status=404)
    assert agent.events("pass_failed") == []
    assert agent.stop() == 0


def test_connecting_a_network_makes_a_container_routable(env: Env, make_agent: MakeAgent) -> None:
    """`docker network connect` is an event too: the agent picks up the new address."""
    network = env.client.networks.create(f"{env.prefix}-net", labels={"cosmos-test": "1"})
    try:
        proxy = env.haproxy()
        agent = make_agent()
        agent.wait_event("reload", timeout=60)  # the start-up sync is live before the container starts
        name = f"{env.prefix}-late"
        late = run_test_container(
            env.client, env.backend_image, name=name, hostname=name, network=network.name,
            labels=env.labels(service="late", predicate="late.test", port="8080", network="bridge"),
        )
        env.started.append(late)
        agent.wait_event("container_skipped")  # no address on the bridge yet: skipped with a warning
        wait_http(url(proxy), headers={"Host": "late.test"}, expect_status=404)  # the config is live (reloads are async)
        assert http_get(url(proxy), {"Host": "late.test"}).body == NO_MATCH

        env.client.networks.get("bridge").connect(late)

        assert wait_routed(url(proxy), "late.test") == f"{name}\n"
        assert agent.stop() == 0
    finally:
        for container in env.started:
            container.remove(force=True)
        env.started.clear()
        network.remove()
