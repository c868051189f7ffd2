"""Fleet end to end: three `cosmos watch` processes, each with its own Docker Engine and HAProxy, one dynalite table."""

from __future__ import annotations

import signal

from tests.integration.fleet.conftest import LEASE, Fleet, dump, wait_until


def test_a_container_on_one_host_is_routed_by_every_host_and_leaves_everywhere(fleet: Fleet) -> None:
    a, b, c = fleet.nodes
    web = a.run("web", "web")
    body = f"{a.prefix}-a-web"
    for node in (a, b, c):
        wait_until(lambda n=node: fleet.serves(n, "web", body), f"{node.name} routes web on a\n{dump(node)}")
    # One more on b: every HAProxy balances over both hosts' containers, byte-identical configs.
    web2 = b.run("web2", "web")
    for node in (a, b, c):
        wait_until(lambda n=node: f"server {web2.id[:12]} " in n.config() and f"server {web.id[:12]} " in n.config(),
                   f"{node.name} has both containers")
    wait_until(lambda: a.config().replace(str(a.port), "P") == b.config().replace(str(b.port), "P")
               == c.config().replace(str(c.port), "P"), "same config on every host (but the bind port)")
    bodies = {b.body("web")[1] for _ in range(8)}
    assert bodies == {f"{a.prefix}-a-web\n", f"{b.prefix}-b-web2\n"}

    web.stop(timeout=1)
    for node in (a, b, c):
        wait_until(lambda n=node: f"server {web.id[:12]} " not in n.config(), f"{node.name} dropped a's container")
        wait_until(lambda n=node: fleet.serves(n, "web", f"{b.prefix}-b-web2"), f"{node.name} routes b's only")
    for node in (a, b, c):  # (a reload racing HAProxy's master re-exec may fail once and is retried)
        assert not [e for e in node.agent.events("pass_failed") if "store" in e["error"]], dump(node)


def test_a_killed_agent_expires_within_the_lease_and_returns_on_restart(fleet: Fleet, haproxy_bin: str) -> None:
    a, b, c = fleet.nodes
    a.run("api", "api")
    body = f"{a.prefix}-a-api"
    for node in (b, c):
        wait_until(lambda n=node: fleet.serves(n, "api", body), f"{node.name} routes api on a")
    a.agent.stop(signal.SIGKILL)
    for node in (b, c):  # the lease is LEASE s; allow for a loaded machine, without timing it
        wait_until(lambda n=node: n.body("api")[0] == 404, f"{node.name} drops a's api after a's lease",
                   timeout=LEASE + 30)
    assert "be_api" not in b.config()  # the dead host's only service left the config, not just the routing
    a.start_agent(haproxy_bin)
    for node in (b, c):
        wait_until(lambda n=node: fleet.serves(n, "api", body), f"{node.name} routes api again")


def test_a_partitioned_agent_keeps_its_config_and_converges_when_the_store_returns(fleet: Fleet) -> None:
    a, b, c = fleet.nodes
    proxy = fleet.proxies["c"]
    a.run("one", "one")
    c.run("own", "own")
    for node in (a, b, c):
        wait_until(lambda n=node: fleet.serves(n, "one", f"{a.prefix}-a-one") and
                   fleet.serves(n, "own", f"{c.prefix}-c-own"), f"{node.name} routes one and own")
    reloads_before = len(c.agent.events("reload"))
    config_before = c.config()

    proxy.stop()
    c.agent.wait_event("fleet_store_unreachable", timeout=30)
    # a and b stop seeing c's heartbeats: c's container leaves their configs after the lease.
    for node in (a, b):
        wait_until(lambda n=node: n.body("own")[0] == 404, f"{node.name} expires c while c is cut off",
                   timeout=LEASE + 30)
    a.run("two", "two")
    wait_until(lambda: fleet.serves(b, "two", f"{a.prefix}-a-two"), "b routes two")
    # c, cut off all this time, kept its last good config: a's container is still routed there.
    assert c.config() == config_before
    assert fleet.serves(c, "one", f"{a.prefix}-a-one") and fleet.serves(c, "own", f"{c.prefix}-c-own")
    assert len(c.agent.events("reload")) == reloads_before  # no flapping
    assert len(c.agent.events("fleet_store_unreachable")) == 1  # logged once per state change

    proxy.start()
    c.agent.wait_event("fleet_store_reachable", timeout=60)
    wait_until(lambda: fleet.serves(c, "two", f"{a.prefix}-a-two"), f"c converges\n{dump(c)}", timeout=60)
    for node in (a, b):
        wait_until(lambda n=node: fleet.serves(n, "own", f"{c.prefix}-c-own"), f"{node.name} routes c again",
                   timeout=60)
    assert len(c.agent.events("fleet_store_unreachable")) == 1
    assert len(c.agent.events("fleet_store_reachable")) == 1


def test_an_advertised_address_routes_at_the_published_port_unless_a_label_says_network(
    fleet: Fleet, haproxy_bin: str
) -> None:
    a, b, _ = fleet.nodes
    assert a.agent.stop() == 0
    a.start_agent(haproxy_bin, "--advertise-address", "127.0.0.1")
    a.agent.wait_event("fleet_joined", timeout=60)
    published = a.run("pub", "pub", ports={"8080/tcp": ("127.0.0.1", None)})
    overlay = a.run("net", "net", ports={"8080/tcp": ("127.0.0.1", None)}, address="network")
    wait_until(lambda: fleet.serves(b, "pub", f"{a.prefix}-a-pub"), f"b routes pub\n{dump(a)}")
    wait_until(lambda: fleet.serves(b, "net", f"{a.prefix}-a-net"), "b routes net")
    published.reload()
    port = published.attrs["NetworkSettings"]["Ports"]["8080/tcp"][0]["HostPort"]
    config = b.config()
    assert f"server {published.id[:12]} 127.0.0.1:{port} " in config
    overlay.reload()
    ip = next(iter(overlay.attrs["NetworkSettings"]["Networks"].values()))["IPAddress"]
    assert f"server {overlay.id[:12]} {ip}:8080 " in config
