"""Map-based routing in a real HAProxy: hosts, several hosts, wildcards, host + path, path prefixes.

Most specific wins: exact host + path, exact host, wildcard host + path, wildcard host, path;
among paths the longest prefix; "/api" matches "/api" and "/api/..." but not "/apifoo".
"""

from __future__ import annotations

import pytest

from cosmos_core import payload, pipeline, routing_maps
from cosmos_core.plugins import Plugins
from cosmos_core.runtime import Runtime
from cosmos_core.settings import Settings
from tests.support.haproxy import Backend, HAProxyRun

SERVICES = [
    ("app", "host", "app.example.com", None),
    ("appapi", "host", "app.example.com", "/api"),
    ("apex", "host", "example.com,WWW.example.com.", None),
    ("wild", "host", "*.example.com", None),
    ("wildapi", "host", "*.example.com", "api"),
    ("api", "path", "/api", None),
    ("apiv2", "path", "/api/v2", None),
    ("root", "path", "/", None),
]


def render_with_maps(data: dict, use_maps: bool = True) -> tuple[str, dict[str, bytes]]:
    """The built-in template with map routing on (or ACLs only), and its map files."""
    from cosmos_routing_host_path import plugin as routing

    runtime = Runtime(Settings(store="sqlite://:memory:"), Plugins.from_plugins(routing))
    try:
        runtime.emitter.use_maps = use_maps
        result = pipeline.generate(runtime, payload.parse(data))
        routes = pipeline.build_routes(sorted(result.services, key=lambda s: s.name), runtime.routing)
        return result.config, routing_maps.plan(routes).files
    finally:
        runtime.close()


@pytest.fixture(scope="module", params=["maps", "acls"])
def served(request, haproxy_bin, tmp_path_factory):
    """HAProxy with the built-in template routing by maps, and (as user templates do) by ACLs."""
    backends = {name: Backend(name) for name, *_ in SERVICES}
    candidates = []
    for name, mode, predicate, path in SERVICES:
        item = {"serviceName": name, "configMode": mode, "predicate": predicate,
                "containers": [{"id": f"c-{name}", "ip": f"127.0.0.1:{backends[name].port}"}]}
        if path:
            item["path"] = path
        candidates.append(item)
    config, files = render_with_maps({"table": "maps", "candidates": candidates}, request.param == "maps")
    if request.param == "maps":
        assert "map_beg(maps/hosts.map)" in config and "acl acl_" not in config
    else:
        assert "map_beg" not in config and "acl acl_" in config
    run = HAProxyRun(haproxy_bin, config, tmp_path_factory.mktemp("maps"), files)
    run.mode = request.param
    yield run
    run.stop()
    for backend in backends.values():
        backend.close()


@pytest.mark.parametrize("host, path, expected", [
    ("app.example.com", "/", "app"), ("app.example.com", "/x/y", "app"),
    ("app.example.com", "/api", "appapi"), ("app.example.com", "/api/x", "appapi"),
    ("app.example.com", "/apifoo", "app"), ("APP.Example.com.:8080", "/api/x", "appapi"),
    ("app.example.com", "/%61pi/x", "appapi"), ("app.example.com", "/api%2Fx", "app"),
    ("example.com", "/api", "apex"), ("www.example.com", "/", "apex"), ("www.example.com.", "/x", "apex"),
    ("foo.example.com", "/", "wild"), ("Foo.Example.com:80", "/api/v2", "wildapi"), ("foo.example.com", "/apix", "wild"),
    ("a.b.example.com", "/", "root"), ("a.b.example.com", "/api/v2/x", "apiv2"),  # one label only
    ("unknown.test", "/api", "api"), ("unknown.test", "/api/v2", "apiv2"), ("unknown.test", "/api/v20", "api"),
    ("unknown.test", "/apifoo", "root"), ("unknown.test", "/%61pi/%76%32", "apiv2"), ("unknown.test", "/api/%zz", "api"),
    ("example.com.evil", "/x", "root"), ("xample.com", "/x", "root"),
    (".example.com", "/", "root"), (".example.com", "/api/x", "api"),  # an empty first label is no label
])
def test_most_specific_rule_wins(served, host, path, expected) -> None:
    status, body, _ = served.get(path, host)
    assert (status, body.split(" ")[0]) == (200, expected), body


@pytest.mark.parametrize("served", ["maps"], indirect=True)
def test_a_slash_in_the_host_header_never_selects_a_host_path_rule(served) -> None:
    # (With ACLs, as user templates route, one line sees Host + path as one string: maps only.)
    assert served.get("/x", "app.example.com/api")[1] == "root /x"


def test_unknown_host_without_a_root_service_gets_the_fallback(haproxy_bin, tmp_path) -> None:
    backend = Backend("only")
    try:
        config, files = render_with_maps({"candidates": [{"serviceName": "only", "predicate": "only.example.com",
                                                          "containers": [{"id": "c1", "ip": f"127.0.0.1:{backend.port}"}]}]})
        assert files["maps/paths.map"] == b"" and files["maps/wildcards.map"] == b""
        run = HAProxyRun(haproxy_bin, config, tmp_path, files)
        try:
            assert run.get("/", "only.example.com")[1] == "only /"
            status, body, _ = run.get("/", "other.example.com")
            assert status == 404 and "no service matches" in body
        finally:
            run.stop()
    finally:
        backend.close()


# Dot segments (issue 10, open item): "/x/../api" is "/api" by RFC 3986 (5.2.4). HAProxy 2.6 cannot normalise
# it without an experimental directive, so such a request is refused with 400, in every form, never routed
# by its raw prefix (here "/x" -> root) while its normalised form belongs to another service ("/api" -> api).
DOT_PATHS = ["/x/../api", "/x/../api/", "/./api", "/api/./v2", "/api/v2/..", "/api/.", "/..", "/.", "/x/%2e%2e/api",
             "/x/%2E%2E/api", "/x/.%2e/api", "/x/%2e./api", "/%2e/api", "/%2E/api/x", "/x/%2e%2E", "/x/../api?q=1",
             "/api/v2/../../x"]


@pytest.mark.parametrize("host", ["unknown.test", "app.example.com", "foo.example.com"])
@pytest.mark.parametrize("path", DOT_PATHS)
def test_a_path_with_a_dot_segment_is_refused_in_every_form(served, host, path) -> None:
    status, body, _ = served.get(path, host)
    assert status == 400, (status, body)


@pytest.mark.parametrize("path, expected", [
    ("/.well-known/x", "root"), ("/..x/api", "root"), ("/x../api", "root"), ("/api/v2.", "api"),
    ("/api/...", "api"), ("/api/%2e%2e%2e", "api"), ("/api/.x/v2", "api"), ("/api/v2/.x", "apiv2"),
    ("/x/..%2Fapi", "root"),  # an encoded "/" is data: one segment "..%2Fapi", not a dot segment
    ("/api?next=/../x", "api"),  # the query is not the path
])
def test_dots_that_are_not_dot_segments_still_route(served, path, expected) -> None:
    status, body, _ = served.get(path, "unknown.test")
    assert (status, body.split(" ")[0]) == (200, expected), body


def _decode_unreserved(segment: str) -> str:
    import re

    return re.sub(r"%([0-9A-Fa-f]{2})",
                  lambda m: chr(int(m.group(1), 16)) if chr(int(m.group(1), 16)).isalnum() or chr(int(m.group(1), 16))
                  in "-._~" else m.group(0), segment)


def _normalised_service(segments: list[str]) -> str | None:
    """The path service of the RFC 3986 normalised path, or None when it has a dot segment (refused)."""
    decoded = [_decode_unreserved(s) for s in segments]
    if any(s in (".", "..") for s in decoded):
        return None
    path = "/" + "/".join(decoded)
    for prefix, name in (("/api/v2", "apiv2"), ("/api", "api")):
        if path == prefix or path.startswith(prefix + "/"):
            return name
    return "root"


@pytest.mark.parametrize("served", ["maps"], indirect=True)
def test_no_path_shape_reaches_another_service_than_its_normalised_form(served) -> None:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    segment = st.sampled_from([".", "..", "%2e", "%2E", "%2e%2e", ".%2E", "%2e.", "...", "api", "%61pi", "ap%69",
                               "v2", "%76%32", "x", ".x", "x.", "", "%2F"])

    @settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(st.lists(segment, min_size=1, max_size=5))
    def check(segments: list[str]) -> None:
        path = "/" + "/".join(segments)
        status, body, _ = served.get(path, "unknown.test")
        expected = _normalised_service(segments)
        if expected is None:
            assert status == 400, (path, status, body)
        else:
            assert (status, body.split(" ")[0]) == (200, expected), (path, body)

    check()
