"""Per-service tuning options (issue 15): validation messages, labels, payload, template lines, grace."""

from __future__ import annotations

import json

import pytest
from cosmos_events_docker import labels

from cosmos_core import grace, payload
from cosmos_core.builtin.haproxy_emitter import DEFAULT_TEMPLATE, HAProxyEmitter
from cosmos_core.builtin.sqlite_store import SQLiteStore
from cosmos_core.errors import ValidationError
from cosmos_core.model import Container, RunningContainer, Service, Snapshot
from cosmos_core.options_tuning import check_duration, check_networks
from cosmos_core.reconcile import diff, reconcile

HASH = "$6$saltsalt$Hx7o0Ku8XyzrZ0aJ1m3l8E5q0Pj3m4vXo1sY2b9uQ7n6a5c4d3e2f1g0h9i8j7k6l5m4n3o2p1q0r9s8t7u6v5"


def request(service: dict | None = None, container: dict | None = None) -> dict:
    return {
        "table": "t",
        "candidates": [{
            "serviceName": "web", "predicate": "web.example.com", **(service or {}),
            "containers": [{"id": "c1", "ip": "10.0.0.1:80", **(container or {})}],
        }],
    }


def test_every_payload_field_becomes_a_normalised_option_and_round_trips() -> None:
    snapshot = payload.parse(request(
        {"balance": "LeastConn", "timeoutConnect": 5, "timeoutServer": "30", "timeoutTunnel": "1h",
         "authUser": "bob", "authHash": HASH, "allow": ["10.0.0.0/8", "2001:db8::/32"], "grace": "30"},
        {"weight": "10", "maxconn": 50},
    ))
    service = snapshot.candidates[0]
    assert dict(service.options) == {
        "balance": "leastconn", "timeout_connect": "5s", "timeout_server": "30s", "timeout_tunnel": "1h",
        "auth_user": "bob", "auth_hash": HASH, "allow": ("10.0.0.0/8", "2001:db8::/32"), "grace": 30,
    }
    assert dict(service.containers[0].options) == {"weight": 10, "maxconn": 50}
    assert payload.parse(json.loads(payload.dumps(snapshot))) == snapshot


@pytest.mark.parametrize("field, value, reason", [
    ("balance", "fastest", "must be one of roundrobin, leastconn, source, uri, first"),
    ("balance", "roundrobin\n    server evil 6.6.6.6:80", "must be one of"),
    ("timeoutServer", "30 s", "must be a duration"),
    ("timeoutServer", "0", "between 1ms and 24 days"),
    ("timeoutTunnel", "25d", "between 1ms and 24 days"),
    ("timeoutConnect", True, "must be a duration"),
    ("allow", "10.0.0.1/8", "not a CIDR network"),
    ("allow", "10.0.0.0/8 #", "not a CIDR network"),
    ("allow", [], "must be a list of CIDR networks"),
    ("grace", -1, "a grace period in seconds"),
    ("grace", "1.5", "a grace period in seconds"),
    ("authUser", "bob smith", "must be 1-64 letters"),
])
def test_a_bad_service_value_names_its_payload_field(field: str, value: object, reason: str) -> None:
    extra = {"authUser": "bob", "authHash": HASH} if field == "authUser" else {}
    with pytest.raises(ValidationError) as info:
        payload.parse(request({**extra, field: value}))
    assert info.value.field == f"candidates[0].{field}"
    assert reason in str(info.value)


@pytest.mark.parametrize("field, value", [("weight", 257), ("weight", "ten"), ("maxconn", 0), ("maxconn", True)])
def test_a_bad_container_value_names_its_payload_field(field: str, value: object) -> None:
    with pytest.raises(ValidationError) as info:
        payload.parse(request(container={field: value}))
    assert info.value.field == f"candidates[0].containers[0].{field}"


def test_a_clear_text_password_is_refused_and_not_echoed() -> None:
    with pytest.raises(ValidationError) as info:
        payload.parse(request({"authUser": "bob", "authHash": "hunter2"}))
    assert info.value.field == "candidates[0].authHash"
    assert "hunter2" not in str(info.value) and "crypt(3)" in str(info.value)
    with pytest.raises(ValidationError, match="crypt"):  # MD5-crypt is too weak to accept
        payload.parse(request({"authUser": "bob", "authHash": "$1$saltsalt$abcdefghijklmnopqrstuv"}))


def test_user_and_hash_come_together() -> None:
    with pytest.raises(ValidationError) as info:
        payload.parse(request({"authUser": "bob"}))
    assert info.value.field == "candidates[0].authUser"
    assert "needs candidates[0].authHash" in str(info.value)
    with pytest.raises(ValidationError) as info:
        payload.parse(request({"authHash": HASH}))
    assert info.value.field == "candidates[0].authHash"


def test_durations_are_explicit_about_units() -> None:
    assert check_duration(30, "f") == "30s"  # a bare number is seconds, not HAProxy's milliseconds
    assert check_duration("30", "f") == "30s"
    assert check_duration("250ms", "f") == "250ms"
    assert check_duration("2M", "f") == "2m"
    assert check_networks("10.0.0.0/8, 192.168.1.7 10.0.0.0/8", "f") == ("10.0.0.0/8", "192.168.1.7/32")


def test_internal_grace_mark_cannot_be_set_from_outside() -> None:
    # Not a payload field: refused as unknown (issue 10: unknown fields are never silently ignored).
    for field in ("emptySince", "empty_since"):
        with pytest.raises(ValidationError) as refused:
            payload.parse(request({field: 1}))
        assert refused.value.field == f"candidates[0].{field}"
    attrs = docker_attrs({"cosmos.empty-since": "1", "cosmos.": "1"})
    assert labels.parse(attrs).entry.service.options == ()


def docker_attrs(extra: dict[str, str]) -> dict:
    return {
        "Id": "b" * 64, "Name": "/web1", "Created": "2026-01-01", "State": {"Running": True},
        "Config": {"Labels": {"cosmos.service": "web", "cosmos.predicate": "web.example.com", "cosmos.port": "80",
                              **extra}},
        "NetworkSettings": {"Networks": {"bridge": {"IPAddress": "172.17.0.2"}}},
    }


def test_labels_set_the_options_and_a_bad_one_names_container_and_label() -> None:
    parsed = labels.parse(docker_attrs({"cosmos.balance": "first", "cosmos.weight": "10", "cosmos.allow": "10.0.0.0/8",
                                        "cosmos.timeout-tunnel": "3600", "cosmos.grace": "20"}))
    assert parsed.entry is not None
    assert dict(parsed.entry.service.options) == {"balance": "first", "allow": ("10.0.0.0/8",),
                                                 "timeout_tunnel": "3600s", "grace": 20}
    assert parsed.entry.container.options == (("weight", 10),)
    for label, value in [("cosmos.maxconn", "-1"), ("cosmos.timeout-server", "soon"), ("cosmos.auth-user", "bob")]:
        problem = labels.parse(docker_attrs({label: value})).problem
        assert problem is not None and problem.label == label, (label, problem)
        assert problem.message().startswith(f"container web1: {label}:")


def render(services: list[Service]) -> str:
    return HAProxyEmitter(DEFAULT_TEMPLATE, ":80").render(services, []).config


def test_template_lines_per_feature() -> None:
    service = payload.parse(request(
        {"balance": "uri", "timeoutServer": "2m", "allow": "10.0.0.0/8,::1", "authUser": "bob", "authHash": HASH},
        {"weight": 10, "maxconn": 7},
    )).candidates[0]
    config = render([service])
    assert "    balance uri\n" in config
    assert "    timeout server 2m\n" in config and "timeout tunnel" not in config
    assert "    http-request deny deny_status 403 unless { src 10.0.0.0/8 ::1/128 }\n" in config
    assert f"userlist cosmos_auth_web\n    user bob password {HASH}\n" in config
    assert "    http-request auth realm web unless { http_auth(cosmos_auth_web) }\n" in config
    assert "    server c1 10.0.0.1:80 check weight 10 maxconn 7\n" in config
    plain = render([Service("web", "host", "w.example.com", None, 80, (Container("c1", "10.0.0.1"),))])
    assert "    balance roundrobin\n" in plain and "userlist" not in plain and "http-request deny" not in plain
    assert "    server c1 10.0.0.1:80 check\n" in plain


# ------------------------------------------------------------------------ grace


def web(grace_s: int | None, *containers: Container) -> Service:
    options = (("grace", grace_s),) if grace_s is not None else ()
    return Service("web", "host", "w.example.com", None, 80, containers, options)


C1 = Container("c1", "10.0.0.1")


def test_without_grace_an_empty_service_goes_at_once() -> None:
    assert reconcile({"web": web(None, C1)}, Snapshot("t", at=1000.0)) == {}
    assert reconcile({"web": web(0, C1)}, Snapshot("t", at=1000.0)) == {}


def test_grace_keeps_an_empty_service_until_it_ends_then_drops_it() -> None:
    stored = {"web": web(30, C1)}
    held = reconcile(stored, Snapshot("t", at=1000.0))["web"]
    assert held.containers == () and dict(held.options)["empty_since"] == 1000.0
    # Later passes inside the grace keep it unchanged: nothing to write.
    assert reconcile({"web": held}, Snapshot("t", at=1029.9)) == {"web": held}
    assert not diff({"web": held}, reconcile({"web": held}, Snapshot("t", at=1029.9)))
    assert grace.next_expiry([held]) == 1030.0
    assert reconcile({"web": held}, Snapshot("t", at=1030.0)) == {}
    assert "503" in render([held]) and "503" not in render([web(30, C1)])


def test_a_container_back_within_grace_clears_the_mark() -> None:
    held = reconcile({"web": web(30, C1)}, Snapshot("t", at=1000.0))["web"]
    back = reconcile({"web": held}, Snapshot("t", (RunningContainer("web", C1),), at=1010.0))["web"]
    assert back == web(30, C1) and grace.next_expiry([back]) is None


def test_reconcile_without_a_time_does_not_hold() -> None:
    assert reconcile({"web": web(30, C1)}, Snapshot("t")) == {}


def test_the_grace_mark_is_stored(tmp_path) -> None:
    store = SQLiteStore(str(tmp_path / "s.db"))
    state = store.load("t")
    held = reconcile({"web": web(30, C1)}, Snapshot("t", at=1000.5))
    store.apply("t", diff(state.services, held), state)
    assert SQLiteStore(str(tmp_path / "s.db")).load("t").services == held


def test_the_agent_runs_a_pass_when_a_grace_period_ends(tmp_path) -> None:
    """No event comes when a grace ends: the agent re-runs its last snapshot then (503, then the route goes)."""
    import threading
    from dataclasses import replace

    from cosmos_core.agent import Agent
    from cosmos_core.contracts import ReloadOutcome
    from cosmos_core.plugins import Plugins
    from cosmos_core.runtime import Runtime
    from cosmos_core.settings import Settings

    class Source:
        def __init__(self) -> None:
            self.closed = threading.Event()

        def snapshots(self):
            service = web(1, C1)
            yield Snapshot("t", (RunningContainer("web", C1),), (service,))
            yield replace(Snapshot("t"), at=None)  # the last container stopped
            self.closed.wait(10)

        def close(self) -> None:
            self.closed.set()

    configs: list[str] = []
    routed: list[str] = []  # every map file and the config: where a route to be_web can be

    class Reloader:
        def apply(self, bundle, previous) -> ReloadOutcome:  # noqa: ANN001
            configs.append(bundle.config)
            routed.append(b"".join(bundle.files.values()).decode())
            if len(configs) == 3:
                agent.stop()
            return ReloadOutcome(True)

    runtime = Runtime(Settings(store=f"sqlite://{tmp_path}/s.db"), Plugins.discover())
    agent = Agent(runtime, Source(), Reloader())
    stopper = threading.Timer(8, agent.stop)
    stopper.start()
    try:
        stats = agent.run()
    finally:
        stopper.cancel()
        runtime.close()
    assert len(configs) == 3, configs  # the third pass came from the grace timer, not from the source
    assert "server c1" in configs[0]
    assert "status 503" in configs[1] and "backend be_web" in configs[1]
    assert "w.example.com" in routed[1] and " be_web" in routed[1]  # still routed (by map) during its grace
    assert "backend be_web" not in configs[2] and " be_web" not in routed[2] and stats.failures == 0


def test_stats_bind_and_auth_settings() -> None:
    from cosmos_core.builtin.haproxy_emitter import check_stats_auth, check_stats_bind

    assert check_stats_bind(None) is None
    assert check_stats_bind("8404") == "127.0.0.1:8404"
    assert check_stats_bind(":8404") == ":8404" and check_stats_bind("[::1]:8404") == "[::1]:8404"
    for bad in ("x y", "99999", "10.0.0.1:8404\n    stats admin if TRUE"):
        with pytest.raises(ValidationError) as info:
            check_stats_bind(bad)
        assert info.value.field == "stats_bind"
    assert check_stats_auth("admin:long-enough") == "admin:long-enough"
    with pytest.raises(ValidationError) as info:
        check_stats_auth("admin:short pw #")
    assert info.value.field == "stats_auth" and "short pw" not in str(info.value)
    off = HAProxyEmitter(DEFAULT_TEMPLATE, ":80").render([], []).config
    assert "cosmos_stats" not in off and "prometheus-exporter" not in off
