"""The ``remote`` emitter against a real ``cosmos serve`` (and against no server at all)."""

from __future__ import annotations

import http.server
import json
import socket
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cosmos_emit_remote.client import (
    RemoteCosmos,
    RemoteError,
    backoff_delay,
    check_url,
)

from cosmos_core import payload
from cosmos_core.passes import RemotePass
from cosmos_core.plugins import Plugins
from cosmos_core.errors import ValidationError
from cosmos_core.model import Container, RunningContainer, Service, Snapshot
from cosmos_core.runtime import Runtime
from cosmos_core.server.testing import ServeProcess, start_serve
from cosmos_core.settings import Settings
from tests.support.net import free_port

SEED = Path(__file__).resolve().parents[3] / "examples" / "seed-payload.json"
TOKEN = "remote-token"


class Sleeps(list[float]):
    """A fake ``sleep`` that records the delays instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def get_json(url: str, path: str, token: str | None = None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with urllib.request.urlopen(urllib.request.Request(url + path, headers=headers), timeout=10) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    """One real server with a token, for the module."""
    base = tmp_path_factory.mktemp("remote")
    with start_serve(["--store", f"sqlite://{base / 'state.db'}"], env={"COSMOS_API_TOKEN": TOKEN},
                     log_path=base / "serve.log") as running:
        yield running


def seed_snapshot() -> Snapshot:
    return payload.loads(SEED.read_bytes())


def web_snapshot(table: str, *ids: str) -> Snapshot:
    containers = tuple(Container(cid, f"10.9.0.{i + 1}", 8080) for i, cid in enumerate(ids))
    return Snapshot(
        table=None,
        running=tuple(RunningContainer("web", c) for c in containers),
        candidates=(Service("web", "host", "web.example.com", None, 8080, containers),),
    )


# ------------------------------------------------------------------ against a real server


def test_the_remote_config_is_the_servers_and_the_state_lives_there(server: ServeProcess) -> None:
    remote = RemoteCosmos(server.url, token=TOKEN)
    config = remote.remote_config(web_snapshot("ignored", "w1", "w2"), "agent-table")
    assert "server w1 10.9.0.1:8080" in config
    assert "server w2 10.9.0.2:8080" in config
    stored = get_json(server.url, "/status", TOKEN)["tables"]["agent-table"]
    assert [c["id"] for c in stored[0]["containers"]] == ["w1", "w2"]


def test_pipeline_generate_delegates_to_the_remote_and_stores_nothing_locally(server: ServeProcess,
                                                                             tmp_path: Path) -> None:
    local_store = tmp_path / "local.db"
    settings = Settings(store=f"sqlite://{local_store}", emitter="remote", options={"remote_url": server.url + "/"},
                        api_token=TOKEN, table="pipeline-table")
    runtime = Runtime(settings)
    try:
        assert isinstance(runtime.strategy, RemotePass)
        result = runtime.strategy.run(web_snapshot("x", "p1"))
        assert result.table == "pipeline-table"
        assert "server p1 10.9.0.1:8080" in result.config
        assert runtime.strategy.run(web_snapshot("x", "p1", "p2")).config.count("server p") == 2
    finally:
        runtime.close()
    assert not local_store.exists()
    assert "pipeline-table" in get_json(server.url, "/status", TOKEN)["tables"]


def test_the_seed_through_the_remote_equals_the_seed_posted_directly(server: ServeProcess) -> None:
    remote = RemoteCosmos(server.url, token=TOKEN)
    via_emitter = remote.remote_config(seed_snapshot(), "astro-remote")
    body = SEED.read_text().replace('"astro"', '"astro-direct"').encode()
    request = urllib.request.Request(server.url + "/generate", data=body, method="POST",
                                     headers={"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        direct = response.read().decode()
    assert via_emitter == direct


def test_a_wrong_token_fails_at_once_without_retries(server: ServeProcess) -> None:
    sleeps = Sleeps()
    remote = RemoteCosmos(server.url, token="wrong", retries=3, sleep=sleeps)
    with pytest.raises(RemoteError, match="HTTP 401"):
        remote.remote_config(seed_snapshot(), "astro")
    assert sleeps == []


def test_a_refused_payload_fails_at_once_with_the_servers_reason(server: ServeProcess) -> None:
    sleeps = Sleeps()
    remote = RemoteCosmos(server.url, token=TOKEN, sleep=sleeps)
    snapshot = Snapshot(None, candidates=(Service("x", "nosuchmode", "x", None, 80, ()),))
    with pytest.raises(RemoteError, match=r"HTTP 400: candidates\[0\]\.configMode"):
        remote.remote_config(snapshot, "astro")
    assert sleeps == []


# ------------------------------------------------------------------ remote down


def test_a_down_remote_is_retried_with_backoff_then_a_clear_error() -> None:
    sleeps = Sleeps()
    remote = RemoteCosmos(f"http://127.0.0.1:{free_port()}", retries=3, backoff=0.1, sleep=sleeps)
    with pytest.raises(RemoteError, match=r"unavailable after 4 attempt\(s\): Connection refused"):
        remote.remote_config(seed_snapshot(), "astro")
    assert len(sleeps) == 3
    for attempt, delay in enumerate(sleeps, start=1):
        ceiling = 0.1 * 2 ** (attempt - 1)
        assert ceiling / 2 <= delay <= ceiling


def test_a_remote_that_answers_503_is_retried(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with start_serve(["--store", f"sqlite://{blocker / 'db'}"], log_path=tmp_path / "serve.log") as broken:
        sleeps = Sleeps()
        remote = RemoteCosmos(broken.url, retries=2, sleep=sleeps)
        with pytest.raises(RemoteError, match=r"after 3 attempt\(s\): HTTP 503: store unavailable"):
            remote.remote_config(seed_snapshot(), "astro")
        assert len(sleeps) == 2


def test_a_silent_remote_times_out() -> None:
    with socket.socket() as silent:  # accepts connections (backlog) but never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        remote = RemoteCosmos(f"http://127.0.0.1:{silent.getsockname()[1]}", timeout=0.3, retries=1,
                              sleep=Sleeps())
        with pytest.raises(RemoteError, match="timed out"):
            remote.remote_config(seed_snapshot(), "astro")


def test_it_catches_up_when_the_remote_returns(tmp_path: Path) -> None:
    port = free_port()
    remote = RemoteCosmos(f"http://127.0.0.1:{port}", retries=0, sleep=Sleeps())
    with pytest.raises(RemoteError):
        remote.remote_config(web_snapshot("t", "late1"), "catch-up")
    with start_serve(["--port", str(port), "--store", f"sqlite://{tmp_path / 'db'}"],
                     log_path=tmp_path / "serve.log") as back:
        assert back.port == port
        assert "server late1 10.9.0.1:8080" in remote.remote_config(web_snapshot("t", "late1"), "catch-up")


def test_a_200_that_is_not_a_config_is_refused() -> None:
    class Html(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            self.rfile.read(int(self.headers["Content-Length"]))
            body = b"<html>login</html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), Html) as fake:
        thread = threading.Thread(target=fake.serve_forever, daemon=True)
        thread.start()
        try:
            remote = RemoteCosmos(f"http://127.0.0.1:{fake.server_address[1]}", sleep=Sleeps())
            with pytest.raises(RemoteError, match="expected text/plain"):
                remote.remote_config(seed_snapshot(), "astro")
        finally:
            fake.shutdown()


# ------------------------------------------------------------------ settings


def test_settings_are_checked() -> None:
    with pytest.raises(ValidationError) as missing:
        RemoteCosmos.from_settings(Settings(emitter="remote"))
    assert missing.value.field == "remote_url"
    for bad in ("ftp://x", "cosmos:8080", "http://x/?q=1", "http://"):
        with pytest.raises(ValidationError):
            check_url(bad)
    with pytest.raises(ValidationError):
        RemoteCosmos.from_settings(Settings(options={"remote_url": "http://x", "remote_timeout": 0}))
    with pytest.raises(ValidationError):
        RemoteCosmos.from_settings(Settings(options={"remote_url": "http://x", "remote_backoff": "soon"}))
    remote = RemoteCosmos.from_settings(Settings(api_token="t", options={
        "remote_url": "http://cosmos:8080/prod/", "remote_timeout": 2.5, "remote_retries": 1, "remote_backoff": 0.05}))
    assert (remote.endpoint, remote.token, remote.timeout, remote.retries, remote.backoff) == (
        "http://cosmos:8080/prod/generate", "t", 2.5, 1, 0.05)


def test_remote_is_a_pass_strategy_not_an_emitter() -> None:
    plugins = Plugins.discover()
    assert "remote" in plugins.registry("passes") and "remote" not in plugins.registry("emitters")
    assert not hasattr(RemoteCosmos, "render")  # no emitter whose render always raises


def test_backoff_grows_and_is_capped() -> None:
    assert all(0.5 <= backoff_delay(1, 1.0) <= 1.0 for _ in range(50))
    assert all(2.0 <= backoff_delay(3, 1.0) <= 4.0 for _ in range(50))
    assert all(2.5 <= backoff_delay(10, 1.0, cap=5.0) <= 5.0 for _ in range(50))
