"""The churn planner: two configs and the live servers -> runtime commands, or a reload."""

from __future__ import annotations

from cosmos_core.haproxy.churn import applied, check_runtime_api, parse, plan, split_address, tcp_port
from cosmos_core.haproxy.runtime_api import ServerState

HEAD = """global
    stats socket ipv4@127.0.0.1:9999 level admin
defaults
    mode http
frontend http
    bind :80
    acl web hdr(host) web.test
    use_backend web if web
"""


def config(servers: dict[str, str], cookie: bool = True, extra: str = "") -> str:
    lines = [HEAD, "backend web", "    balance roundrobin"]
    if cookie:
        lines += ["    cookie SID prefix nocache dynamic", "    dynamic-cookie-key web"]
    lines += [f"    server {cid} {addr} check" + (f" cookie {cid}" if cookie else "") for cid, addr in servers.items()]
    lines += [f"    server cosmos-spare-{i} 0.0.0.0:1 disabled check" for i in range(1, 3)]
    return "\n".join(lines) + "\n" + extra


def state(name: str, address: str, port: int, maint: bool = False, drain: bool = False) -> ServerState:
    """A live server; spares keep CMAINT (0x04: `disabled` in the config) even once made ready."""
    cmaint = 0x04 if name.startswith("cosmos-spare-") else 0
    return ServerState("web", name, address, port, 0 if maint else 2, (0x01 if maint else 0) | cmaint | (0x08 if drain else 0), 1)


def live(*servers: ServerState) -> dict[str, dict[str, ServerState]]:
    return {"web": {s.name: s for s in servers}}


SPARES = (state("cosmos-spare-1", "0.0.0.0", 1, maint=True), state("cosmos-spare-2", "0.0.0.0", 1, maint=True))


def test_parse_separates_server_lines_and_ignores_cookie_values() -> None:
    parsed = parse(config({"a1": "10.0.0.1:8080"}))
    assert "server" not in parsed.skeleton
    a1, spare1, _ = parsed.servers["web"]
    assert (a1.name, a1.address, a1.port, a1.options) == ("a1", "10.0.0.1", 8080, ("check",))
    assert spare1.spare and spare1.options == ("check",)
    assert split_address("[fd00::1]:80") == ("fd00::1", 80)


def test_a_new_container_of_an_existing_service_fills_a_spare_slot() -> None:
    previous = config({"a1": "10.0.0.1:8080"})
    desired = config({"a1": "10.0.0.1:8080", "b2": "10.0.0.2:8080"})
    result = plan(previous, desired, live(state("a1", "10.0.0.1", 8080), *SPARES))
    assert not result.reload
    assert result.commands == ("set server web/cosmos-spare-1 addr 10.0.0.2 port 8080",
                               "set server web/cosmos-spare-1 state ready")


def test_a_gone_container_goes_to_maint_and_a_moved_one_gets_its_new_address() -> None:
    previous = config({"a1": "10.0.0.1:8080", "b2": "10.0.0.2:8080"})
    desired = config({"a1": "10.0.0.9:8080"})
    result = plan(previous, desired, live(state("a1", "10.0.0.1", 8080), state("b2", "10.0.0.2", 8080), *SPARES))
    assert result.commands == ("set server web/a1 addr 10.0.0.9 port 8080", "set server web/b2 state maint")
    assert (result.moved, result.removed) == (1, 1)


def test_a_container_filled_at_run_time_stays_where_it_is_and_a_gone_one_frees_its_slot() -> None:
    filled = state("cosmos-spare-1", "10.0.0.2", 8080)
    desired = config({"a1": "10.0.0.1:8080", "b2": "10.0.0.2:8080"})
    running = live(state("a1", "10.0.0.1", 8080), filled, SPARES[1])
    assert plan(config({"a1": "10.0.0.1:8080"}), desired, running).commands == ()

    gone = plan(desired, config({"a1": "10.0.0.1:8080", "c3": "10.0.0.3:8080"}), running)
    assert gone.commands == ("set server web/cosmos-spare-2 addr 10.0.0.3 port 8080",
                             "set server web/cosmos-spare-2 state ready",
                             "set server web/cosmos-spare-1 state maint")


def test_a_drained_server_that_is_wanted_again_is_made_ready() -> None:
    desired = config({"a1": "10.0.0.1:8080"})
    result = plan(config({}), desired, live(state("a1", "10.0.0.1", 8080, drain=True), *SPARES))
    assert result.commands == ("set server web/a1 state ready",)


def test_structural_changes_reload() -> None:
    base = config({"a1": "10.0.0.1:8080"})
    running = live(state("a1", "10.0.0.1", 8080), *SPARES)
    assert plan(None, base, running).reason == "no previous config"
    assert plan(base, base + "backend other\n    balance roundrobin\n", running).reason == "structure changed"
    assert plan(base, config({"a1": "10.0.0.1:8080"}, cookie=False), running).reload  # cookie changed
    assert plan(base, base.replace("bind :80", "bind :81"), running).reload
    weighted = base.replace("server a1 10.0.0.1:8080 check", "server a1 10.0.0.1:8080 check weight 5")
    assert "options differ" in plan(base, weighted, running).reason


def test_no_free_slot_or_no_live_backend_reloads() -> None:
    previous = config({"a1": "10.0.0.1:8080"})
    desired = config({"a1": "10.0.0.1:8080", "b": "10.0.0.2:80", "c": "10.0.0.3:80", "d": "10.0.0.4:80"})
    assert plan(previous, desired, live(state("a1", "10.0.0.1", 8080), *SPARES)).reason == "backend web: no free server slot"
    assert plan(previous, desired, {}).reason == "backend web is not live"


def test_unchanged_config_needs_nothing() -> None:
    base = config({"a1": "10.0.0.1:8080"})
    result = plan(base, base, {})
    assert not result.reload and result.commands == ()


def test_backends_whose_servers_did_not_change_are_left_alone() -> None:
    fallback = "backend _no_match\n    http-request return status 404\n"
    previous = config({"a1": "10.0.0.1:8080"}, extra=fallback)
    desired = config({"a1": "10.0.0.1:8080", "b2": "10.0.0.2:8080"}, extra=fallback)
    result = plan(previous, desired, live(state("a1", "10.0.0.1", 8080), *SPARES))
    assert not result.reload and result.added == 1


def test_the_live_model_follows_the_commands_so_the_next_plan_needs_no_query() -> None:
    running = live(state("a1", "10.0.0.1", 8080), *SPARES)
    first = plan(config({"a1": "10.0.0.1:8080"}), config({"a1": "10.0.0.1:8080", "b2": "10.0.0.2:8080"}), running)
    after = applied(running, first.commands)
    assert not after["web"]["cosmos-spare-1"].maint and after["web"]["cosmos-spare-1"].address == "10.0.0.2"
    assert running["web"]["cosmos-spare-1"].maint  # the input is left alone

    second = plan(config({"a1": "10.0.0.1:8080", "b2": "10.0.0.2:8080"}), config({"b2": "10.0.0.2:8080"}), after)
    assert second.commands == ("set server web/a1 state maint",)
    assert applied(after, second.commands)["web"]["a1"].maint


def test_runtime_api_addresses() -> None:
    import pytest

    from cosmos_core.errors import ValidationError

    assert check_runtime_api(None) is None and check_runtime_api("off") is None
    assert tcp_port(check_runtime_api("ipv4@127.0.0.1:9999") or "") == ("127.0.0.1", 9999)
    assert check_runtime_api("/run/haproxy/admin.sock") == "/run/haproxy/admin.sock"
    for bad in ("ipv4@127.0.0.1:70000", "127.0.0.1:9999", "relative.sock", "/x y", "/x\n    server evil 1.2.3.4:80"):
        with pytest.raises(ValidationError) as info:
            check_runtime_api(bad)
        assert info.value.field == "runtime_api"


def test_the_template_opens_the_socket_and_spare_slots_only_with_a_runtime_api() -> None:
    from cosmos_core.builtin.haproxy_emitter import make_emitter
    from cosmos_core.model import Container, Service
    from cosmos_core.settings import Settings

    service = Service("web", "host", "web.test", "SID", 8080, (Container("a1", "10.0.0.1", 8080),))
    plain = make_emitter(Settings()).render([service], []).config
    churning = make_emitter(Settings(runtime_api="ipv4@127.0.0.1:9999", hard_stop_after=0)).render([service], []).config

    assert "stats socket" not in plain and "cosmos-spare" not in plain and "hard-stop-after 60s" in plain
    assert "retry-on conn-failure empty-response response-timeout" in plain and "option redispatch" in plain
    assert "    stats socket ipv4@127.0.0.1:9999 level admin" in churning and "hard-stop-after" not in churning
    assert "cookie SID prefix nocache dynamic" in churning and "dynamic-cookie-key web" in churning
    assert churning.count("server cosmos-spare-") == 4
    assert parse(churning).skeleton == parse(churning.replace("10.0.0.1", "10.0.0.2")).skeleton


def test_in_a_health_checked_backend_a_server_made_ready_is_up_only_once_its_checks_pass() -> None:
    """cosmos.healthcheck: leaving maintenance HAProxy counts a server up until a check fails, so the same
    batch marks it `health down`; the checks bring it up.  Without a check, no such command."""
    checked = "backend web\n    balance roundrobin\n    option httpchk GET /ready"
    previous = config({"a1": "10.0.0.1:8080"}).replace("backend web\n    balance roundrobin", checked)
    desired = config({"a1": "10.0.0.1:8080", "b2": "10.0.0.2:8080"}).replace("backend web\n    balance roundrobin", checked)
    assert parse(desired).checked == frozenset({"web"}) and parse(config({})).checked == frozenset()
    servers = live(state("a1", "10.0.0.1", 8080), *SPARES)
    result = plan(previous, desired, servers)
    assert result.commands == ("set server web/cosmos-spare-1 addr 10.0.0.2 port 8080",
                               "set server web/cosmos-spare-1 state ready",
                               "set server web/cosmos-spare-1 health down")
    assert applied(servers, result.commands)["web"]["cosmos-spare-1"].address == "10.0.0.2"
    back = plan(desired, previous.replace("a1 10.0.0.1", "a1 10.0.0.1"), live(state("a1", "10.0.0.1", 8080, maint=True), *SPARES))
    assert back.commands == ("set server web/a1 state ready", "set server web/a1 health down")


def test_with_spare_slots_every_server_cookie_is_the_dynamic_one_so_a_reload_keeps_its_meaning() -> None:
    """A runtime-added server (spare slot) has HAProxy's dynamic cookie (key + address); a server line with its
    own `cookie <value>` would get another value after the reload, so no server line carries one then.
    Without a runtime API (cosmos generate, the seed payload) each server keeps its own value."""
    from cosmos_core.builtin.haproxy_emitter import make_emitter
    from cosmos_core.model import Container, Service
    from cosmos_core.settings import Settings

    service = Service("web", "host", "web.test", "SID", 8080, (Container("a1", "10.0.0.1", 8080),))
    plain = make_emitter(Settings()).render([service], []).config
    churning = make_emitter(Settings(runtime_api="ipv4@127.0.0.1:9999")).render([service], []).config

    assert "    server a1 10.0.0.1:8080 check cookie a1\n" in plain and "dynamic" not in plain
    assert "    server a1 10.0.0.1:8080 check\n" in churning and " cookie a1" not in churning


def test_the_servers_a_config_starts_are_what_a_reload_leaves_live() -> None:
    from cosmos_core.haproxy.churn import started

    servers = started(config({"a1": "10.0.0.1:8080"}).replace("a1 10.0.0.1:8080 check", "a1 10.0.0.1:8080 check weight 5"))
    assert servers == live(state("a1", "10.0.0.1", 8080), *SPARES) | {
        "web": {**live(state("a1", "10.0.0.1", 8080), *SPARES)["web"],
                "a1": ServerState("web", "a1", "10.0.0.1", 8080, 2, 0, 5)}}
    desired = config({"a1": "10.0.0.1:8080", "b2": "10.0.0.2:8080"})
    assert plan(config({"a1": "10.0.0.1:8080"}), desired, started(config({"a1": "10.0.0.1:8080"}))).commands == (
        "set server web/cosmos-spare-1 addr 10.0.0.2 port 8080", "set server web/cosmos-spare-1 state ready")
