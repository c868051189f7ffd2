"""Generated configs pass ``haproxy -c`` and route real requests (host HAProxy on loopback)."""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cosmos_core.cli import app
from tests.support.haproxy import Backend, HAProxyRun

SEED = Path(__file__).parents[2] / "examples" / "seed-payload.json"


def check(haproxy_bin: str, config: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """``haproxy -c`` on ``config`` placed beside the last generated bundle's map files."""
    path = tmp_path / "out" / "check.cfg"
    path.parent.mkdir(exist_ok=True)
    path.write_text(config)
    return subprocess.run([haproxy_bin, "-c", "-f", str(path)], capture_output=True, text=True)


def generate(tmp_path: Path, data: dict, *extra: str) -> str:
    """``cosmos generate --output tmp_path/out/haproxy.cfg``: the config text (maps beside it)."""
    (tmp_path / "payload.json").write_text(json.dumps(data))
    out = tmp_path / "out" / "haproxy.cfg"
    out.parent.mkdir(exist_ok=True)
    result = CliRunner().invoke(
        app, ["generate", str(tmp_path / "payload.json"), "--store", f"sqlite://{tmp_path}/s.db", "--output", str(out),
              *extra]
    )
    assert result.exit_code == 0, result.stderr
    return out.read_text()


def bundle_files(tmp_path: Path) -> dict[str, bytes]:
    """The auxiliary files ``generate`` wrote beside the config."""
    out = tmp_path / "out"
    return {str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*") if p.is_file() and p.suffix == ".map"}


def test_seed_config_passes_haproxy_check(haproxy_bin, tmp_path) -> None:
    config = generate(tmp_path, json.loads(SEED.read_text()))
    result = check(haproxy_bin, config, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_empty_state_and_many_services_pass_haproxy_check(haproxy_bin, tmp_path) -> None:
    assert check(haproxy_bin, generate(tmp_path, {"tableName": "empty"}), tmp_path).returncode == 0
    candidates = [
        {"serviceName": f"svc{i}", "configMode": "path" if i % 2 else "host",
         "predicate": f"/p{i}/x" if i % 2 else f"h{i}.example.com", "cookie": "SID" if i % 3 else None,
         "containers": [{"id": f"c{i}-{j}", "ip": f"10.1.{i}.{j + 1}", "port": 8000 + j} for j in range(3)]}
        for i in range(200)
    ]
    config = generate(tmp_path, {"table": "many", "candidates": candidates})
    result = check(haproxy_bin, config, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture
def backends():
    started = {name: Backend(name) for name in ("a1", "a2", "api", "apiv2", "web")}
    yield started
    for backend in started.values():
        backend.close()


@pytest.fixture
def haproxy(haproxy_bin, tmp_path, backends):
    """Run the generated config in HAProxy on a loopback port; yields a GET helper."""

    def container(name: str) -> dict:
        return {"id": name, "ip": f"127.0.0.1:{backends[name].port}"}

    data = {
        "table": "e2e",
        "candidates": [
            {"serviceName": "app", "configMode": "host", "predicate": "app.example.com", "cookie": "SID",
             "containers": [container("a1"), container("a2")]},
            {"serviceName": "api", "configMode": "path", "predicate": "/api", "containers": [container("api")]},
            {"serviceName": "apiv2", "configMode": "path", "predicate": "api/v2", "containers": [container("apiv2")]},
            {"serviceName": "web", "configMode": "Host", "predicate": "WEB.example.com",
             "containers": [container("web")]},
        ],
    }
    try:
        run = HAProxyRun(haproxy_bin, generate(tmp_path, data), tmp_path / "run", bundle_files(tmp_path))
    except RuntimeError as exc:
        pytest.fail(str(exc))
    yield run.get
    run.stop()


def test_host_routing_with_and_without_port_in_host_header(haproxy) -> None:
    assert haproxy("/", "web.example.com")[1] == "web /"
    assert haproxy("/", "WEB.example.com:80")[1] == "web /"
    assert haproxy("/x", "web.example.com:8443")[1] == "web /x"
    assert haproxy("/", "web.example.com.evil")[0] == 404


def test_path_routing_prefix_semantics_and_longest_prefix_wins(haproxy) -> None:
    assert haproxy("/api")[1] == "api /api"
    assert haproxy("/api/users")[1] == "api /api/users"
    assert haproxy("/api/v2")[1] == "apiv2 /api/v2"
    assert haproxy("/api/v2/items")[1] == "apiv2 /api/v2/items"
    assert haproxy("/api/v20")[1] == "api /api/v20"
    assert haproxy("/apifoo")[0] == 404


def test_unmatched_request_gets_a_clean_404(haproxy) -> None:
    status, body, _ = haproxy("/nothing", "unknown.example.com")
    assert status == 404 and "no service matches" in body


def test_sticky_cookie_keeps_a_client_on_one_server_and_others_spread(haproxy) -> None:
    # Without the cookie, requests spread across both servers.
    spread = Counter(haproxy("/", "app.example.com")[1].split()[0] for _ in range(10))
    assert set(spread) == {"a1", "a2"}
    # The app sets SID; HAProxy prefixes it with the server's own cookie value.
    for server in ("a1", "a2"):
        for _ in range(4):
            status, body, set_cookie = haproxy("/", "app.example.com")
            if body.startswith(server):
                break
        assert set_cookie.startswith(f"SID={server}~{server}-sess"), set_cookie
        cookie = set_cookie.split(";")[0]
        seen = {haproxy("/", "app.example.com", cookie)[1].split()[0] for _ in range(10)}
        assert seen == {server}


@pytest.mark.parametrize("host", ["web.example.com.", "WEB.example.com.:80", "web.example.com.:8443"])
def test_host_routing_ignores_a_trailing_dot_in_the_host_header(haproxy, host) -> None:
    """Fault 2: the absolute (trailing-dot) form of a host name is the same host, with or without a port."""
    assert haproxy("/x", host)[1] == "web /x"


@pytest.mark.parametrize("host", ["web.example.com..", ".web.example.com", "web.example.com.evil."])
def test_host_routing_strips_only_one_trailing_dot(haproxy, host) -> None:
    assert haproxy("/x", host)[0] == 404


@pytest.mark.parametrize("path, expected", [
    ("/%61pi/x", "api"), ("/ap%69/x", "api"), ("/%61%70%69", "api"), ("/%41pi/x", None),  # %41 is "A"
    ("/api/%76%32/items", "apiv2"), ("/%61pi/v2", "apiv2"), ("/api%2Fv2", None), ("/%2561pi", None),
    ("/api/%zz", "api"), ("/api%7e", None), ("/ap%69foo", None),
])
def test_percent_encoded_unreserved_characters_route_as_their_decoded_form(haproxy, path, expected) -> None:
    """Fault 5: RFC 3986 6.2.2.2: "/%61pi" is "/api"; "%2F" is not "/" and "%25" is not decoded twice."""
    status, body, _ = haproxy(path)
    if expected is None:
        assert status == 404, body
    else:
        assert body == f"{expected} {path}"  # the backend gets the request as the client sent it


def test_a_template_with_a_utf8_bom_renders_without_it(haproxy_bin, tmp_path) -> None:
    """Fault 6: the byte-order mark is not part of the config; HAProxy accepts the result."""
    from cosmos_core.builtin.haproxy_emitter import DEFAULT_TEMPLATE

    template = tmp_path / "bom.cfg.j2"
    template.write_bytes(b"\xef\xbb\xbf" + DEFAULT_TEMPLATE.read_bytes())
    config = generate(tmp_path, json.loads(SEED.read_text()), "--template", str(template))
    assert not config.startswith("\ufeff") and config.startswith("# Generated by cosmos")
    result = check(haproxy_bin, config, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("raw", ["# café\n".encode("latin-1"), b"\xff\xfe#\x00 \x00", b"ok\n\x80\n"])
def test_a_template_that_is_not_utf8_is_exit_2_with_one_line_naming_it(tmp_path, raw) -> None:
    template = tmp_path / "latin1.cfg.j2"
    template.write_bytes(raw)
    (tmp_path / "payload.json").write_text(SEED.read_text())
    result = CliRunner().invoke(app, ["generate", str(tmp_path / "payload.json"), "--store",
                                      f"sqlite://{tmp_path}/s.db", "--template", str(template)])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cosmos: error: template: is not UTF-8"), result.stderr
    assert "latin1.cfg.j2" in lines[0] and str(template)[:20] in lines[0]
    assert not (tmp_path / "s.db").exists() or "app1" not in (tmp_path / "s.db").read_bytes().decode("latin-1")
