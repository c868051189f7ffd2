"""Per-service tuning options against the real HAProxy: `haproxy -c` and routed requests on loopback.

Canary weights, basic auth, allow-lists, timeouts and the grace period, each
rendered by the built-in template from a payload and served by a host HAProxy.
"""

from __future__ import annotations

import base64
import http.client
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from cosmos_core import payload, pipeline
from cosmos_core.plugins import Plugins
from cosmos_core.runtime import Runtime
from cosmos_core.settings import Settings
from tests.support.haproxy import Backend, free_port, start_loopback


def named(name: str) -> Backend:
    """A backend that answers its name; ``/slow`` answers after 3 s."""

    def answer(path: str) -> tuple[bytes, dict[str, str]]:
        if path == "/slow":
            time.sleep(3)
        return name.encode(), {}

    return Backend(name, answer)


@pytest.fixture
def backends() -> Iterator[dict[str, Backend]]:
    started = {name: named(name) for name in ("stable", "canary", "other")}
    yield started
    for backend in started.values():
        backend.close()


Get = Callable[..., tuple[int, str, http.client.HTTPResponse]]


@contextmanager
def serving(haproxy_bin: str, config: str, tmp_path: Path) -> Iterator[Get]:
    """Check ``config`` with ``haproxy -c``, run it on a loopback port; yield ``get(path, host, headers)``."""
    port = free_port()
    for relative, content in getattr(config, "aux", {}).items():  # maps resolve beside the config
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_bytes(content)
    (tmp_path / "check.cfg").write_text(config)
    checked = subprocess.run([haproxy_bin, "-c", "-f", str(tmp_path / "check.cfg")], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    try:
        proc = start_loopback(haproxy_bin, config, tmp_path / f"haproxy-{port}.cfg", port)
    except RuntimeError as error:
        pytest.fail(str(error))

    def get(path: str = "/", host: str = "web.example.com", headers: dict[str, str] | None = None):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", path, headers={"Host": host, **(headers or {})})
        response = conn.getresponse()
        body = response.read().decode()
        conn.close()
        return response.status, body, response

    try:
        yield get
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    rt = Runtime(Settings(store=f"sqlite://{tmp_path}/s.db"), Plugins.discover())
    yield rt
    rt.close()


class Rendered(str):
    """The main config's text; ``aux`` holds the bundle's other files (the routing maps)."""

    aux: dict[str, bytes]


def config_for(runtime: Runtime, data: dict, at: float | None = None) -> Rendered:
    snapshot = payload.parse(data)
    if at is not None:
        from dataclasses import replace

        snapshot = replace(snapshot, at=at)
    bundle = pipeline.generate(runtime, snapshot).bundle
    rendered = Rendered(bundle.config)
    rendered.aux = dict(bundle.aux)
    return rendered


def web(backends: dict[str, Backend], names: tuple[str, ...] = ("stable",), **options: object) -> dict:
    return {"table": "t", "candidates": [{
        "serviceName": "web", "predicate": "web.example.com", **options,
        "containers": [{"id": n, "ip": f"127.0.0.1:{backends[n].port}"} for n in names],
    }]}


def test_canary_weight_gets_about_a_tenth(haproxy_bin, tmp_path, runtime, backends) -> None:
    data = web(backends, ("stable", "canary"))
    data["candidates"][0]["containers"][0]["weight"] = 100
    data["candidates"][0]["containers"][1]["weight"] = 10
    config = config_for(runtime, data)
    assert "weight 10" in config and "weight 100" in config
    with serving(haproxy_bin, config, tmp_path) as get:
        seen = Counter(get()[1] for _ in range(440))
    print("canary share", dict(seen))
    assert set(seen) == {"stable", "canary"}
    share = seen["canary"] / 440
    assert 0.05 <= share <= 0.15, seen  # 10 / 110 = 9.1 %


@pytest.mark.parametrize("balance", ["roundrobin", "leastconn", "source", "uri", "first"])
def test_every_balance_algorithm_is_accepted_and_routes(haproxy_bin, tmp_path, runtime, backends, balance) -> None:
    config = config_for(runtime, web(backends, ("stable", "canary"), balance=balance))
    assert f"    balance {balance}\n" in config
    with serving(haproxy_bin, config, tmp_path) as get:
        assert get()[1] in ("stable", "canary")


def test_basic_auth_from_a_sha512_hash(haproxy_bin, tmp_path, runtime, backends) -> None:
    hashed = subprocess.run(["openssl", "passwd", "-6", "-salt", "c0sm0ssalt", "s3cret pass"],
                            capture_output=True, text=True, check=True).stdout.strip()
    config = config_for(runtime, web(backends, authUser="ops", authHash=hashed))

    def basic(user: str, password: str) -> dict[str, str]:
        return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}

    with serving(haproxy_bin, config, tmp_path) as get:
        status, _, response = get()
        assert status == 401 and 'realm="web"' in (response.getheader("WWW-Authenticate") or "")
        assert get(headers=basic("ops", "wrong"))[0] == 401
        assert get(headers=basic("other", "s3cret pass"))[0] == 401
        assert get(headers=basic("ops", "s3cret pass"))[:2] == (200, "stable")


def test_allow_list_denies_other_networks(haproxy_bin, tmp_path, runtime, backends) -> None:
    denied = config_for(runtime, web(backends, allow="10.0.0.0/8, 192.168.0.0/16"))
    with serving(haproxy_bin, denied, tmp_path) as get:
        assert get()[0] == 403
    allowed = config_for(runtime, web(backends, allow=["10.0.0.0/8", "127.0.0.0/8"]))
    with serving(haproxy_bin, allowed, tmp_path) as get:
        assert get()[:2] == (200, "stable")


def test_timeouts_are_rendered_and_the_server_timeout_applies(haproxy_bin, tmp_path, runtime, backends) -> None:
    config = config_for(runtime, web(backends, timeoutConnect="2s", timeoutServer=1, timeoutTunnel="1h"))
    backend = config[config.index("backend be_web"):]
    for line in ("timeout connect 2s", "timeout server 1s", "timeout tunnel 1h"):
        assert f"    {line}\n" in backend
    with serving(haproxy_bin, config, tmp_path) as get:
        assert get("/")[:2] == (200, "stable")
        assert get("/slow")[0] == 504  # the backend answers after 3 s; timeout server is 1 s


def test_grace_answers_503_then_404(haproxy_bin, tmp_path, runtime, backends) -> None:
    data = web(backends, grace=30)
    data["running"] = [{"serviceName": "web", "id": "stable", "ip": f"127.0.0.1:{backends['stable'].port}"}]
    with serving(haproxy_bin, config_for(runtime, data, at=1000.0), tmp_path) as get:
        assert get()[:2] == (200, "stable")
    gone = {"table": "t", "running": []}  # the last container stopped at t=1010
    with serving(haproxy_bin, config_for(runtime, gone, at=1010.0), tmp_path) as get:
        status, body, response = get()
        assert status == 503 and "web is down" in body
        assert get(host="unknown.example.com")[0] == 404
    with serving(haproxy_bin, config_for(runtime, gone, at=1039.0), tmp_path) as get:
        assert get()[0] == 503  # still inside the 30 s
    with serving(haproxy_bin, config_for(runtime, gone, at=1040.0), tmp_path) as get:
        status, body, _ = get()
        assert status == 404 and "no service matches" in body


# ------------------------------------------------------------- --stats-bind


def test_stats_bind_serves_haproxys_prometheus_exporter_and_stats_page(haproxy_bin, tmp_path, backends) -> None:
    import urllib.error
    import urllib.request

    stats_port = free_port()
    settings = Settings(store=f"sqlite://{tmp_path}/m.db",
                        options={"stats_bind": str(stats_port), "stats_auth": "admin:0p3n-s3same"})
    runtime = Runtime(settings, Plugins.discover())
    try:
        config = config_for(runtime, web(backends, ("stable", "canary")))
    finally:
        runtime.close()
    assert f"    bind 127.0.0.1:{stats_port}\n" in config  # a bare port means loopback
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with serving(haproxy_bin, config, tmp_path) as get:
        for _ in range(3):
            assert get()[0] == 200
        with opener.open(f"http://127.0.0.1:{stats_port}/metrics", timeout=5) as response:
            assert response.status == 200
            text = response.read().decode()
        assert 'haproxy_backend_http_responses_total{proxy="be_web",code="2xx"} 3' in text
        for server in ("stable", "canary"):
            assert f'haproxy_server_status{{proxy="be_web",server="{server}",state="UP"}} 1' in text
        served = sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                     if line.startswith('haproxy_server_http_responses_total{proxy="be_web",') and 'code="2xx"' in line)
        assert served == 3
        with pytest.raises(urllib.error.HTTPError) as info:
            opener.open(f"http://127.0.0.1:{stats_port}/", timeout=5)
        assert info.value.code == 401
        password = urllib.request.HTTPPasswordMgrWithDefaultRealm()
        password.add_password(None, f"http://127.0.0.1:{stats_port}/", "admin", "0p3n-s3same")
        authed = urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                             urllib.request.HTTPBasicAuthHandler(password))
        with authed.open(f"http://127.0.0.1:{stats_port}/;csv", timeout=5) as response:
            assert "web,stable," in response.read().decode()
