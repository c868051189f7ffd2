"""Fleet addressing: the advertised address plus the published port, overridable per container."""

from __future__ import annotations

from cosmos_events_docker import labels

from tests.plugins.events_docker.test_labels import WEB, attrs


def published(port: str = "32768", **kwargs: object) -> dict:
    data = attrs(**kwargs)  # type: ignore[arg-type]
    data["NetworkSettings"]["Ports"] = {"8080/tcp": [{"HostIp": "0.0.0.0", "HostPort": port},
                                                     {"HostIp": "::", "HostPort": port}]}
    return data


def test_advertised_address_and_published_port() -> None:
    entry = labels.parse(published(label=WEB), advertise="192.0.2.10").entry
    assert entry is not None
    assert (entry.container.host, entry.container.port) == ("192.0.2.10", 32768)
    assert entry.service.port == 8080


def test_a_label_picks_the_network_address_although_the_agent_advertises() -> None:
    entry = labels.parse(published(label={**WEB, "cosmos.address": "network"}), advertise="192.0.2.10").entry
    assert entry is not None and (entry.container.host, entry.container.port) == ("172.17.0.5", 8080)


def test_without_an_advertised_address_the_network_address_is_used() -> None:
    entry = labels.parse(published(label=WEB)).entry
    assert entry is not None and entry.container.host == "172.17.0.5"


def test_problems_name_the_label() -> None:
    unpublished = labels.parse(attrs(label=WEB), advertise="192.0.2.10")
    assert unpublished.problem is not None and unpublished.problem.label == "cosmos.address"
    assert "not published" in unpublished.problem.message()
    needs = labels.parse(published(label={**WEB, "cosmos.address": "published"}))
    assert needs.problem is not None and "--advertise-address" in needs.problem.message()
    bad = labels.parse(published(label={**WEB, "cosmos.address": "overlay"}), advertise="192.0.2.10")
    assert bad.problem is not None and bad.problem.label == "cosmos.address"
