"""The host and path routing modes: validation, ACL criteria and match order."""

from __future__ import annotations

import pytest

from cosmos_core.model import Service
from cosmos_core.pipeline import build_routes
from cosmos_core.plugins import Plugins
from cosmos_core.runtime import Runtime
from cosmos_core.settings import Settings
from cosmos_routing_host_path import plugin as routing
from cosmos_routing_host_path.plugin import HostMode, PathMode


@pytest.mark.parametrize("value, expected", [
    ("First.Example.com", "first.example.com"), ("a-b.example.com.", "a-b.example.com"), ("localhost", "localhost"),
])
def test_host_normalize(value, expected) -> None:
    assert HostMode().normalize(value) == expected


@pytest.mark.parametrize("value", ["-a.com", "a_b.com", "a..com", "x" * 64 + ".com", "a.com:80", "/path",
                                   "*", "*.", "a.*.com", "**.a.com", "*a.com", "a.com,", ",a.com", "a.com,,b.com",
                                   "a.com b.com", "*.*.a.com"])
def test_host_refuses(value) -> None:
    with pytest.raises(ValueError):
        HostMode().normalize(value)


@pytest.mark.parametrize("value, expected", [
    ("www.Example.com., example.com", "example.com,www.example.com"), ("*.Example.com", "*.example.com"),
    ("b.com,a.com,b.com.", "a.com,b.com"), ("*.com,com", "*.com,com"),
])
def test_host_normalize_several_and_wildcard_hosts(value, expected) -> None:
    assert HostMode().normalize(value) == expected


def test_host_map_claims_exact_wildcard_and_path() -> None:
    assert HostMode().map_claims("*.a.com,a.com") == [("wildcard", ".a.com/"), ("host", "a.com/")]
    assert HostMode().map_claims("a.com", "/api/v2") == [("host", "a.com/api/v2/")]
    assert HostMode().map_claims("a.com", "/") == [("host", "a.com/")]
    assert PathMode().map_claims("/api") == [("path", "/api/")]
    assert PathMode().map_claims("/") == [("path", "/")]


def test_host_criteria_ignore_a_port_in_the_host_header() -> None:
    assert HostMode().criteria("a.example.com") == [
        "req.hdr(host),field(1,:) -m str -i a.example.com a.example.com."
    ]


@pytest.mark.parametrize("value, expected", [("app", "/app"), ("/app/", "/app"), ("/api/v2", "/api/v2"), ("/", "/")])
def test_path_normalize(value, expected) -> None:
    assert PathMode().normalize(value) == expected


@pytest.mark.parametrize("value", ["/a//b", "/a/../b", "/a b", "/a%20b", "/a?b", "/a;b", "/é"])
def test_path_refuses(value) -> None:
    with pytest.raises(ValueError):
        PathMode().normalize(value)


def test_path_criteria_match_the_prefix_and_its_subpaths_only() -> None:
    assert PathMode().criteria("/app") == [
        "path,regsub(%2[fF],%252F,g),url_dec -m str /app", "path,regsub(%2[fF],%252F,g),url_dec -m beg /app/",
        "path /app", "path_beg /app/",
    ]
    assert PathMode().criteria("/") == ["path_beg /"]


def test_routes_order_hosts_first_then_longest_path_prefix() -> None:
    runtime = Runtime(Settings(), Plugins.from_plugins(routing))
    services = [
        Service("root", "path", "/", None, 80), Service("api", "path", "/api", None, 80),
        Service("apiv2", "path", "/api/v2", None, 80), Service("web", "host", "a.example.com", None, 80),
    ]
    assert [r.backend for r in build_routes(services, runtime.routing)] == ["be_web", "be_apiv2", "be_api", "be_root"]


def test_plugin_registers_both_modes() -> None:
    found = Plugins.from_plugins(routing)
    assert found.names("routing_modes") == ["host", "path"]
