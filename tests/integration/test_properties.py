"""Property-based: random and hostile payloads are refused cleanly, or render a config that
``haproxy -c`` accepts and that holds only the lines the template makes."""

from __future__ import annotations

import re
import subprocess
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cosmos_core import payload, pipeline
from cosmos_core.errors import CosmosError
from cosmos_core.plugins import Plugins
from cosmos_core.runtime import Runtime
from cosmos_core.settings import Settings

HOSTILE = ["\n", "\r", " ", "#", "'", '"', "\\", "$", "{", "}", "\x00", "é", ";", ":", "/", "%"]
tokens = st.one_of(
    st.sampled_from(["app", "a-b", "x.y", "first.example.com", "/api", "api/v2", "Host", "PATH", "SID", "80"]),
    st.text(alphabet=st.sampled_from(list("abcXYZ019-._/:") + HOSTILE), min_size=0, max_size=12),
    st.text(max_size=8),
)
scalars = st.one_of(tokens, st.integers(-5, 70000), st.none(), st.booleans())
addresses = st.one_of(
    st.builds(lambda a, b, p: f"10.0.{a}.{b}:{p}", st.integers(0, 255), st.integers(1, 254), st.integers(1, 65535)),
    st.sampled_from(["[fd00::1]:80", "db.internal:5432", "10.0.0.1", "host:", "1.2.3.4:80\n", "a b:80"]),
    tokens,
)
containers = st.lists(st.fixed_dictionaries({"id": tokens, "ip": addresses}, optional={"port": scalars}), max_size=3)
services = st.fixed_dictionaries(
    {"serviceName": tokens, "predicate": tokens, "containers": containers},
    optional={"configMode": st.one_of(st.sampled_from(["host", "path", "Path", "HOST"]), tokens),
              "cookie": st.one_of(tokens, st.none()), "port": scalars},
)
payloads = st.fixed_dictionaries(
    {"candidateServices": st.lists(services, max_size=4)},
    optional={"tableName": tokens,
              "runningServices": st.lists(st.fixed_dictionaries({"serviceName": tokens, "id": tokens, "ip": addresses}),
                                          max_size=3)},
)

NAME = r"[A-Za-z0-9][A-Za-z0-9_.-]*"
DYNAMIC = [re.compile(p) for p in (
    rf"    acl {NAME} req\.hdr\(host\),field\(1,:\) -m str -i [a-z0-9.-]+(?: [a-z0-9.-]+)*",
    rf"    acl {NAME} req\.hdr\(host\),field\(1,:\),regsub\(\^\[\^\.\]\*,\) -m str -i(?: \.[a-z0-9.-]+)+",
    rf"    acl {NAME} base,regsub\(%2\[fF\],%252F,g\),url_dec -m reg \^\(\?i:[a-z0-9.|\[\]^:/+-]+\)\[\.\]\?"
    r"\(\?::\[0-9\]\*\)\?/[A-Za-z0-9_~/\[\].-]+\(\?:/\|\$\)",
    rf"    acl {NAME} path /[A-Za-z0-9._~/-]+",
    rf"    acl {NAME} path,regsub\(%2\[fF\],%252F,g\),url_dec -m (?:str|beg) /[A-Za-z0-9._~/-]+",
    rf"    acl {NAME} path_beg /[A-Za-z0-9._~/-]*",
    rf"    use_backend {NAME} if {NAME}",
    rf"backend {NAME}",
    r"    balance roundrobin",
    r"    option forwardfor",
    r"    cookie [A-Za-z0-9_.-]+ prefix nocache",
    rf"    server {NAME} (?:[0-9.]+|\[[0-9a-f:]+\]|[a-z0-9.-]+):[0-9]+ check(?: cookie {NAME})?",
)]


def make_runtime() -> Runtime:
    from cosmos_routing_host_path import plugin as routing

    return Runtime(Settings(store="sqlite://:memory:"), Plugins.from_plugins(routing))


STATIC = set(pipeline.render(make_runtime(), {}).config.splitlines())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=payloads)
def test_hostile_payloads_are_refused_or_render_a_valid_config(data, haproxy_bin) -> None:
    runtime = make_runtime()
    try:
        result = pipeline.generate(runtime, payload.parse(data))
    except CosmosError as exc:
        assert exc.exit_code == 2
        assert "\n" not in str(exc)
        return
    finally:
        runtime.close()
    assert_only_template_lines_and_valid(result.bundle, haproxy_bin)


valid_names = st.from_regex(r"[a-z][a-z0-9-]{0,10}", fullmatch=True)
valid_services = st.builds(
    lambda name, mode, host, path, cookie, ips: {
        "serviceName": name, "configMode": mode, "predicate": host if mode.lower() == "host" else path,
        "cookie": cookie, "containers": [{"id": f"{name}-{i}", "ip": ip} for i, ip in enumerate(ips)]},
    valid_names, st.sampled_from(["host", "Host", "path", "PATH"]),
    st.from_regex(r"[a-z0-9]{1,8}(\.[a-z0-9]{1,8}){0,3}", fullmatch=True),
    st.from_regex(r"/?[A-Za-z0-9_~-][A-Za-z0-9._~-]{0,7}(/[A-Za-z0-9_~-]{1,8}){0,2}/?", fullmatch=True),
    st.one_of(st.none(), st.from_regex(r"[A-Za-z0-9_.-]{1,12}", fullmatch=True)),
    st.lists(st.one_of(
        st.builds(lambda a, p: f"10.0.0.{a}:{p}", st.integers(1, 254), st.integers(1, 65535)),
        st.sampled_from(["[fd00::1]:80", "db.internal:5432", "Web-1.Example.com:8080"]),
    ), max_size=4),
)


def route_of(service: dict) -> tuple[str, str]:
    """The route after normalisation: two services may not claim one (issue 10)."""
    if service["configMode"].lower() == "host":
        return "host", service["predicate"].lower().rstrip(".")
    return "path", service["predicate"].strip("/")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(services=st.lists(valid_services, max_size=6, unique_by=(lambda s: s["serviceName"], route_of)))
def test_valid_payloads_are_accepted_and_pass_haproxy_check(services, haproxy_bin) -> None:
    runtime = make_runtime()
    try:
        result = pipeline.generate(runtime, payload.parse({"table": "t", "candidates": services}))
    finally:
        runtime.close()
    assert len(result.services) == len(services)
    assert_only_template_lines_and_valid(result.bundle, haproxy_bin)


def assert_only_template_lines_and_valid(bundle, haproxy_bin: str) -> None:
    for line in bundle.config.splitlines():
        assert line in STATIC or any(p.fullmatch(line) for p in DYNAMIC), repr(line)
    for name, data in bundle.aux.items():  # map files: "key backend" lines only
        for line in data.decode("ascii").splitlines():
            assert re.fullmatch(rf"[a-z0-9.*/_~-]+ be_{NAME}", line) or re.fullmatch(rf"/[A-Za-z0-9._~/-]* be_{NAME}", line), line
    with tempfile.TemporaryDirectory() as work:
        bundle.write(Path(work))
        check = subprocess.run([haproxy_bin, "-c", "-f", f"{work}/{bundle.main}"], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
