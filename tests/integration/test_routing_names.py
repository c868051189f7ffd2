"""Fault 3: no service name can be misread by HAProxy.

The names come from HAProxy's own lists: every keyword the installed binary
registers (``haproxy -dKall``: configuration, ACL, sample fetch, converter,
filter, service and CLI keywords), the predefined ACLs of the 2.6
configuration manual (section 7.4), the condition operators, and the names of
the frontend and the fallback backend.  Every one of them, as a service name,
gives a config that ``haproxy -c`` accepts and that routes, or a clean
refusal (exit 2, one line).
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cosmos_core import payload, pipeline, routing_maps
from cosmos_core.errors import CosmosError
from cosmos_core.plugins import Plugins
from cosmos_core.runtime import Runtime
from cosmos_core.settings import Settings
from tests.support.haproxy import Backend, HAProxyRun

# configuration.txt of HAProxy 2.6, section 7.4 "Pre-defined ACLs".
PREDEFINED_ACLS = [
    "FALSE", "HTTP", "HTTP_1.0", "HTTP_1.1", "HTTP_2.0", "HTTP_CONTENT", "HTTP_URL_ABS", "HTTP_URL_SLASH",
    "HTTP_URL_STAR", "LOCALHOST", "METH_CONNECT", "METH_DELETE", "METH_GET", "METH_HEAD", "METH_OPTIONS",
    "METH_POST", "METH_PUT", "METH_TRACE", "RDP_COOKIE", "REQ_CONTENT", "TRUE", "WAIT_END",
]
# Condition operators (section 7.2) and the names the built-in template gives its own sections.
OPERATORS = ["or", "OR", "||", "!", "if", "unless", "{", "}"]
OWN_NAMES = ["http", "_no_match", "be_x", "acl_x", "default_backend", "use_backend", "global", "defaults",
             "frontend", "backend", "listen", "MASTER", "GLOBAL"]


def haproxy_keywords(haproxy_bin: str) -> list[str]:
    """Every word of ``haproxy -dKall``: the keywords this binary registers."""
    out = subprocess.run([haproxy_bin, "-dKall", "-q", "-c", "-f", "/dev/null"], capture_output=True, text=True)
    words = set(re.findall(r"[A-Za-z0-9_.:|!-]+", out.stdout + out.stderr))
    assert len(words) > 500, "haproxy -dKall listed too few keywords"
    return sorted(words)


def make_runtime() -> Runtime:
    from cosmos_routing_host_path import plugin as routing

    return Runtime(Settings(store="sqlite://:memory:"), Plugins.from_plugins(routing))


def haproxy_check(haproxy_bin: str, rendered: tuple[str, dict[str, bytes]]) -> subprocess.CompletedProcess[str]:
    config, files = rendered
    with tempfile.TemporaryDirectory() as work:
        for name, data in files.items():
            Path(work, name).parent.mkdir(parents=True, exist_ok=True)
            Path(work, name).write_bytes(data)
        Path(work, "haproxy.cfg").write_text(config)
        return subprocess.run([haproxy_bin, "-c", "-f", f"{work}/haproxy.cfg"], capture_output=True, text=True)


def render_or_refuse(names: list[str], predicates: list[tuple[str, object, object]] | None = None,
                     use_maps: bool = True) -> tuple[str, dict[str, bytes]] | None:
    """Config and map files for the services ``names`` (host and path, or ``predicates``: mode,
    predicate, path), routed by maps or by ACLs; None after a clean refusal."""
    candidates = []
    for index, name in enumerate(names):
        mode = "host" if index % 2 == 0 else "path"
        predicate: object = f"h{index}.example.com" if mode == "host" else f"/p{index}"
        path: object = None
        if predicates:
            mode, predicate, path = predicates[index % len(predicates)]
        item = {"serviceName": name, "configMode": mode, "predicate": predicate,
                "containers": [{"id": f"c{index}", "ip": f"10.0.0.{index % 250 + 1}:80"}]}
        if path is not None:
            item["path"] = path
        candidates.append(item)
    runtime = make_runtime()
    runtime.emitter.use_maps = use_maps
    try:
        result = pipeline.generate(runtime, payload.parse({"table": "t", "candidates": candidates}))
        routes = pipeline.build_routes(sorted(result.services, key=lambda s: s.name), runtime.routing)
        return result.config, routing_maps.plan(routes).files if use_maps else {}
    except CosmosError as exc:
        assert exc.exit_code == 2 and "\n" not in str(exc)
        return None
    finally:
        runtime.close()


def test_every_haproxy_keyword_as_a_service_name_passes_haproxy_check(haproxy_bin) -> None:
    """All names at once, in one config: each is accepted and checked, or refused by itself."""
    accepted = []
    for name in sorted(set(haproxy_keywords(haproxy_bin) + PREDEFINED_ACLS + OPERATORS + OWN_NAMES)):
        if render_or_refuse([name]) is not None:
            accepted.append(name)
    assert {"or", "OR", "TRUE", "METH_GET", "http", "HTTP_1.0", "path_beg", "use_backend"} <= set(accepted)
    # Case matters to HAProxy as to Cosmos: "or" and "OR" are two services.
    unique = list(dict.fromkeys(accepted))
    for use_maps in (True, False):
        rendered = render_or_refuse(unique, use_maps=use_maps)
        assert rendered is not None
        result = haproxy_check(haproxy_bin, rendered)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "will never match" not in result.stderr


@pytest.fixture(scope="module")
def keyword_names(haproxy_bin) -> list[str]:
    return haproxy_keywords(haproxy_bin) + PREDEFINED_ACLS + OPERATORS + OWN_NAMES


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_names_and_predicates_give_a_valid_config_or_a_clean_refusal(data, keyword_names, haproxy_bin) -> None:
    names = data.draw(st.lists(st.one_of(st.sampled_from(keyword_names), st.text(max_size=6),
                                         st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,8}", fullmatch=True)),
                               min_size=1, max_size=5, unique=True))
    words = st.one_of(st.sampled_from(keyword_names), st.text(max_size=6))
    hosts = st.one_of(words, st.from_regex(r"(\*\.)?[a-z0-9]{1,6}(\.[a-z0-9]{1,6}){0,2}\.?", fullmatch=True))
    predicates = data.draw(st.lists(st.tuples(
        st.sampled_from(["host", "path", "HOST"]),
        st.one_of(words, hosts, st.lists(hosts, min_size=1, max_size=3).map(",".join)),
        st.one_of(st.none(), words, st.from_regex(r"/?[a-z0-9_~.-]{1,6}(/[a-z0-9]{1,4})?/?", fullmatch=True))),
        min_size=1, max_size=5))
    rendered = render_or_refuse(names, predicates, data.draw(st.booleans()))
    if rendered is not None:
        result = haproxy_check(haproxy_bin, rendered)
        assert result.returncode == 0, result.stdout + result.stderr


def test_services_called_or_http_and_true_route_real_requests(haproxy_bin, tmp_path) -> None:
    names = ["or", "OR", "http", "TRUE", "METH_GET"]
    backends = {name: Backend(name) for name in names}
    candidates = [{"serviceName": name, "predicate": f"s{i}.example.com",
                   "containers": [{"id": f"c{i}", "ip": f"127.0.0.1:{backends[name].port}"}]}
                  for i, name in enumerate(names)]
    runtime = make_runtime()
    runtime.emitter.use_maps = True
    try:
        result = pipeline.generate(runtime, payload.parse({"table": "t", "candidates": candidates}))
        files = routing_maps.plan(pipeline.build_routes(sorted(result.services, key=lambda s: s.name),
                                                        runtime.routing)).files
    finally:
        runtime.close()
    run = HAProxyRun(haproxy_bin, result.config, tmp_path, files)
    try:
        for i, name in enumerate(names):
            assert run.get("/x", f"s{i}.example.com")[1] == f"{name} /x"
        assert run.get("/x", "unknown.example.com")[0] == 404
    finally:
        run.stop()
        for backend in backends.values():
            backend.close()
