"""cosmos_core.metrics: a no-op until enabled, then counters, histograms, gauges, a counted store, a server."""

from __future__ import annotations

import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from cosmos_core import metrics
from cosmos_core.builtin.sqlite_store import SQLiteStore
from cosmos_core.errors import ConflictError, ReloadError, StoreError, ValidationError
from cosmos_core.model import Container, Service
from tests.support.prometheus import parse


@pytest.fixture
def on() -> Iterator[None]:
    metrics.enable()
    yield
    metrics.disable()


def samples() -> dict:
    return parse(metrics.render().decode())


def test_off_by_default_every_call_is_a_no_op_and_the_cli_never_imports_prometheus_client() -> None:
    assert not metrics.enabled()
    metrics.pass_failed(StoreError("down"))
    metrics.runtime_api_updates(3)
    metrics.set_live_hosts(2)
    assert metrics.render() == b""
    store = object()
    assert metrics.instrument_store(store) is store
    code = ("import sys; from cosmos_core.cli import app; import cosmos_core.agent, cosmos_core.pipeline; "
            "print('prometheus_client' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "False\n"


def test_failure_kinds() -> None:
    assert metrics.failure_kind(ValidationError("f", 1, "bad")) == "invalid_input"
    assert metrics.failure_kind(ReloadError("refused", invalid=True)) == "refused_config"
    assert metrics.failure_kind(ReloadError("no container")) == "reload"
    assert metrics.failure_kind(StoreError("down")) == "store"
    assert metrics.failure_kind(RuntimeError("boom")) == "other"


def test_recordings_appear_with_prometheus_names(on: None) -> None:
    web = Service("web", "host", "w.example.com", None, 80, (Container("c1", "10.0.0.1"), Container("c2", "10.0.0.2")))
    metrics.pass_succeeded("t", [web], 0.004, 0.12, True, event_at=None)
    metrics.pass_succeeded("t", [web], 0.003, 0.001, False)
    metrics.pass_failed(ReloadError("no container"))
    metrics.runtime_api_updates(3)
    metrics.set_live_hosts(2)
    found = samples()
    assert found[("cosmos_passes_total", ())] == 3
    assert found[("cosmos_pass_failures_total", (("kind", "reload"),))] == 1
    assert found[("cosmos_pass_failures_total", (("kind", "store"),))] == 0
    assert found[("cosmos_reloads_total", (("result", "reloaded"),))] == 1
    assert found[("cosmos_reloads_total", (("result", "unchanged"),))] == 1
    assert found[("cosmos_reconcile_duration_seconds_count", ())] == 2
    assert found[("cosmos_reload_duration_seconds_bucket", (("le", "0.25"),))] == 2
    assert found[("cosmos_event_to_routable_seconds_count", ())] == 0
    assert found[("cosmos_runtime_api_updates_total", ())] == 3
    assert found[("cosmos_services", (("table", "t"),))] == 1
    assert found[("cosmos_containers", (("table", "t"),))] == 2
    assert found[("cosmos_live_hosts", ())] == 2


def test_a_counted_store_counts_calls_errors_and_conflicts(on: None, tmp_path) -> None:
    store = metrics.instrument_store(SQLiteStore(str(tmp_path / "s.db")))
    store.load("t")
    store.ping()
    assert store.path == SQLiteStore(str(tmp_path / "s.db")).path  # attributes pass through

    class Broken:
        def apply(self, *args: object) -> None:
            raise StoreError("disk full")

        def load(self, table: str) -> None:
            raise ConflictError("raced")

    broken = metrics.instrument_store(Broken())
    with pytest.raises(StoreError):
        broken.apply("t", None, None)
    with pytest.raises(ConflictError):
        broken.load("t")
    found = samples()
    assert found[("cosmos_store_requests_total", (("operation", "load"),))] == 2
    assert found[("cosmos_store_requests_total", (("operation", "ping"),))] == 1
    assert found[("cosmos_store_errors_total", (("operation", "apply"),))] == 1
    assert found[("cosmos_store_errors_total", (("operation", "load"),))] == 0
    assert found[("cosmos_store_conflicts_total", ())] == 1


def test_the_server_answers_metrics_and_health(on: None) -> None:
    state = {"ok": True}
    server = metrics.serve("127.0.0.1", 0, lambda: state["ok"])
    base = f"http://127.0.0.1:{server.server_address[1]}"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        metrics.runtime_api_updates(1)
        with opener.open(base + "/metrics", timeout=5) as response:
            assert "cosmos_runtime_api_updates_total 1.0" in response.read().decode()
        assert opener.open(base + "/healthz", timeout=5).status == 200
        state["ok"] = False
        with pytest.raises(urllib.error.HTTPError) as info:
            opener.open(base + "/healthz", timeout=5)
        assert info.value.code == 503
        with pytest.raises(urllib.error.HTTPError) as info:
            opener.open(base + "/other", timeout=5)
        assert info.value.code == 404
    finally:
        server.shutdown()
        server.server_close()
