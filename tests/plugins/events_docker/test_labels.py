"""Inspect data -> routing entries -> Snapshot: labels, env fallback, validation, addressing."""

from __future__ import annotations

from typing import Any

import pytest
from cosmos_events_docker import labels

from cosmos_core.model import Container
from cosmos_core.plugins import Plugins
from cosmos_core.runtime import Runtime
from cosmos_core.settings import Settings


def attrs(
    name: str = "web-1",
    cid: str = "a" * 64,
    label: dict[str, str] | None = None,
    env: list[str] | None = None,
    networks: dict[str, str] | None = None,
    state: dict[str, Any] | None = None,
    exposed: dict[str, Any] | None = None,
    created: str = "2026-11-25T09:00:00Z",
) -> dict[str, Any]:
    """Docker inspect data, reduced to the fields the parser reads."""
    return {
        "Id": cid,
        "Name": f"/{name}",
        "Created": created,
        "State": state if state is not None else {"Running": True, "Paused": False},
        "Config": {"Labels": label or {}, "Env": env or [], "ExposedPorts": exposed},
        "NetworkSettings": {
            "Networks": {net: {"IPAddress": ip} for net, ip in (networks or {"bridge": "172.17.0.5"}).items()}
        },
    }


WEB = {"cosmos.service": "web", "cosmos.predicate": "web.test", "cosmos.port": "8080"}


@pytest.fixture(scope="module")
def check() -> labels.PredicateCheck:
    return labels.routing_check(Runtime(Settings(), Plugins.discover()).routing)


def test_labels_make_an_entry() -> None:
    parsed = labels.parse(attrs(label={**WEB, "cosmos.cookie": "SRV", "cosmos.mode": "HOST"}))

    assert parsed.problem is None and parsed.entry is not None
    service = parsed.entry.service
    assert (service.name, service.mode, service.predicate, service.cookie, service.port) == ("web", "host", "web.test", "SRV", 8080)
    assert parsed.entry.container == Container("a" * 12, "172.17.0.5", 8080)


def test_env_vars_are_the_fallback_and_labels_win() -> None:
    env = ["SERVICE_NAME=api", "CONFIG_MODE=path", "PREDICATE=/api", "COOKIE=JS", "PORT=9000", "OTHER=x=y"]
    from_env = labels.parse(attrs(env=env)).entry
    mixed = labels.parse(attrs(env=env, label={"cosmos.port": "7000", "cosmos.predicate": "/v2"})).entry

    assert from_env is not None and mixed is not None
    assert from_env.service.settings == ("path", "/api", "JS", 9000)
    assert mixed.service.settings == ("path", "/v2", "JS", 7000)


def test_containers_without_a_service_or_not_routable_are_ignored_silently() -> None:
    assert labels.parse(attrs(label={"other": "x"})) == labels.Parsed()
    for state in (
        {"Running": False},
        {"Running": True, "Paused": True},
        {"Running": True, "Health": {"Status": "starting"}},
        {"Running": True, "Health": {"Status": "unhealthy"}},
    ):
        assert labels.parse(attrs(label=WEB, state=state)) == labels.Parsed(), state
    healthy = labels.parse(attrs(label=WEB, state={"Running": True, "Health": {"Status": "healthy"}}))
    assert healthy.entry is not None


@pytest.mark.parametrize(
    ("extra", "label"),
    [
        ({"cosmos.predicate": "web.test\nbackend evil"}, "cosmos.predicate"),
        ({"cosmos.predicate": "bad_host!.test"}, "cosmos.predicate"),
        ({"cosmos.port": "80a"}, "cosmos.port"),
        ({"cosmos.port": "70000"}, "cosmos.port"),
        ({"cosmos.service": "web svc"}, "cosmos.service"),
        ({"cosmos.cookie": "a b"}, "cosmos.cookie"),
        ({"cosmos.mode": "nosuchmode"}, "cosmos.mode"),
        ({"cosmos.network": "backnet"}, "cosmos.network"),
    ],
)
def test_an_invalid_setting_is_a_problem_naming_container_and_label(
    check: labels.PredicateCheck, extra: dict[str, str], label: str
) -> None:
    parsed = labels.parse(attrs(name="evil-1", label={**WEB, **extra}), check)

    assert parsed.entry is None and parsed.problem is not None
    assert parsed.problem.container == "evil-1"
    assert parsed.problem.label == label
    assert label in parsed.problem.message()
    assert parsed.problem.message().startswith("container evil-1: ")


def test_routing_check_normalises_the_predicate(check: labels.PredicateCheck) -> None:
    entry = labels.parse(attrs(label={**WEB, "cosmos.mode": "path", "cosmos.predicate": "/api/"}), check).entry

    assert entry is not None and entry.service.predicate == "/api"


def test_a_bad_env_var_is_named_as_such() -> None:
    parsed = labels.parse(attrs(env=["SERVICE_NAME=web", "PREDICATE=web.test", "PORT=abc"]))

    assert parsed.problem is not None and parsed.problem.label == "PORT"


def test_address_on_the_chosen_or_only_network() -> None:
    two = {"front": "10.0.0.2", "back": "10.1.0.2"}
    chosen = labels.parse(attrs(label={**WEB, "cosmos.network": "back"}, networks=two)).entry
    ambiguous = labels.parse(attrs(label=WEB, networks=two))
    none = labels.parse(attrs(label=WEB, networks={"host": ""}))

    assert chosen is not None and chosen.container.host == "10.1.0.2"
    assert ambiguous.problem is not None and "several networks" in ambiguous.problem.message()
    assert none.problem is not None and none.problem.label == "cosmos.network"


def test_port_defaults_to_the_single_exposed_port() -> None:
    label = {"cosmos.service": "web", "cosmos.predicate": "web.test"}
    single = labels.parse(attrs(label=label, exposed={"8080/tcp": {}})).entry
    several = labels.parse(attrs(label=label, exposed={"80/tcp": {}, "443/tcp": {}}))

    assert single is not None and single.container.port == 8080
    assert several.problem is not None and several.problem.label == "cosmos.port"


def test_name_filter_keeps_only_matching_names() -> None:
    assert labels.parse(attrs(name="shop-web", label=WEB), name_filter="shop").entry is not None
    assert labels.parse(attrs(name="blog-web", label=WEB), name_filter="shop") == labels.Parsed()


def test_snapshot_has_every_container_and_one_candidate_per_service() -> None:
    old = labels.parse(attrs(name="w1", cid="1" * 64, label={**WEB, "cosmos.cookie": "OLD"}, created="2026-01-01")).entry
    new = labels.parse(attrs(name="w2", cid="2" * 64, label={**WEB, "cosmos.cookie": "NEW"}, networks={"bridge": "172.17.0.6"}, created="2026-02-01")).entry
    api = labels.parse(attrs(name="a1", cid="3" * 64, label={**WEB, "cosmos.service": "api", "cosmos.predicate": "api.test"})).entry
    assert old and new and api

    snap = labels.snapshot([new, api, old], "tbl")

    assert snap.table == "tbl"
    assert [(r.service, r.container.id) for r in snap.running] == [("api", "3" * 12), ("web", "1" * 12), ("web", "2" * 12)]
    assert [c.name for c in snap.candidates] == ["api", "web"]
    web = snap.candidates[1]
    assert web.cookie == "NEW"  # the newest container's settings win
    assert [c.id for c in web.containers] == ["1" * 12, "2" * 12]


def test_the_path_label_adds_a_path_prefix_and_a_bad_one_names_the_label(check: labels.PredicateCheck) -> None:
    entry = labels.parse(attrs(label={**WEB, "cosmos.predicate": "Web.test,*.web.test", "cosmos.path": "api/v2/"}),
                         check).entry
    assert entry is not None
    assert entry.service.predicate == "*.web.test,web.test" and dict(entry.service.options) == {"path": "/api/v2"}
    parsed = labels.parse(attrs(name="bad-1", label={**WEB, "cosmos.path": "/a/../b"}), check)
    assert parsed.entry is None and parsed.problem is not None and parsed.problem.label == "cosmos.path"


def test_an_unknown_cosmos_label_is_named_with_a_hint_and_the_container_still_routes() -> None:
    parsed = labels.parse(attrs(name="web-9", label={**WEB, "cosmos.wieght": "5", "cosmos.balanse": "first",
                                                     "other.label": "x", "cosmos.weight": "3"}))
    assert parsed.entry is not None and parsed.problem is None
    assert [(p.container, p.label) for p in parsed.unknown] == [("web-9", "cosmos.balanse"), ("web-9", "cosmos.wieght")]
    assert parsed.unknown[1].message() == ("container web-9: cosmos.wieght: unknown label, ignored "
                                           "(did you mean cosmos.weight?) (got '5')")
    assert "did you mean cosmos.balance?" in parsed.unknown[0].message()
    # a misspelled service label: nothing routes, but it is named all the same
    typo = labels.parse(attrs(label={"cosmos.servce": "web", "cosmos.port": "80"}))
    assert typo.entry is None and [p.label for p in typo.unknown] == ["cosmos.servce"]
    assert "did you mean cosmos.service?" in typo.unknown[0].detail
    # every label Cosmos reads is known, the declared options' ones too
    assert labels.parse(attrs(label={**WEB, "cosmos.path": "/api"})).unknown == ()
    assert labels.parse(attrs(label=WEB)).unknown == () and labels.parse(attrs(label={"a": "b"})) == labels.Parsed()
