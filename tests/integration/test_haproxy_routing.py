"""Generated configs pass ``haproxy -c`` and route real requests (host HAProxy on loopback)."""

from __future__ import annotations

import http.client
import json
import subprocess
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cosmos_core.cli import app
from tests.support.haproxy_host import Backend, free_port, start_loopback

SEED = Path(__file__).parents[2] / "examples" / "seed-payload.json"


def check(haproxy_bin: str, config: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "check.cfg"
    path.write_text(config)
    return subprocess.run([haproxy_bin, "-c", "-f", str(path)], capture_output=True, text=True)


def generate(tmp_path: Path, data: dict, *extra: str) -> str:
    (tmp_path / "payload.json").write_text(json.dumps(data))
    result = CliRunner().invoke(
        app, ["generate", str(tmp_path / "payload.json"), "--store", f"sqlite://{tmp_path}/s.db", *extra]
    )
    assert result.exit_code == 0, result.stderr
    return result.stdout


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


def named(name: str) -> Backend:
    """A backend that names itself and the path, and sets the app's session cookie."""
    return Backend(name, lambda path: (f"{name} {path}".encode(), {"Set-Cookie": f"SID={name}-sess"}))


@pytest.fixture
def backends():
    started = {name: named(name) for name in ("a1", "a2", "api", "apiv2", "web")}
    yield started
    for backend in started.values():
        backend.close()


@pytest.fixture
def haproxy(haproxy_bin, tmp_path, backends):
    """Run the generated config in HAProxy on a loopback port; yields a GET helper."""
    port = free_port()

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
    config = generate(tmp_path, data)
    try:
        proc = start_loopback(haproxy_bin, config, tmp_path / "haproxy.cfg", port)
    except RuntimeError as error:
        pytest.fail(str(error))

    def get(path: str = "/", host: str = "none.example.com", cookie: str | None = None):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        headers = {"Host": host}
        if cookie:
            headers["Cookie"] = cookie
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        body = response.read().decode()
        conn.close()
        return response.status, body, response.getheader("Set-Cookie")

    yield get
    proc.terminate()
    proc.wait(timeout=10)


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
