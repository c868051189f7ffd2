"""`cosmos serve` and the Lambda handler merge payloads from many hosts by their `host` field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cosmos_core.server.api import Api
from cosmos_core.server.lambda_handler import LambdaApp
from cosmos_core.settings import Settings
from tests.unit.test_lambda_handler import JSON, v2_event


def report(host: str | None, *ids: str) -> bytes:
    containers = [{"id": i, "ip": f"10.0.0.{n + 1}", "port": 8080} for n, i in enumerate(ids)]
    doc = {"table": "t", "running": [{"serviceName": "web", **c} for c in containers],
           "candidates": [{"serviceName": "web", "configMode": "host", "predicate": "web.test",
                           "containers": containers}] if ids else []}
    if host is not None:
        doc["host"] = host
    return json.dumps(doc).encode()


@pytest.fixture
def api(tmp_path: Path):
    service = Api(Settings(store=f"sqlite://{tmp_path / 'state.db'}"))
    yield service
    service.close()


def stored(api: Api) -> list[tuple[str, str | None]]:
    web = json.loads(api.status().body)["tables"]["t"][0]
    return [(c["id"], c.get("host")) for c in web["containers"]]


def test_serve_merges_hosts(api: Api) -> None:
    assert api.generate(report("a", "a1")).status == 200
    reply = api.generate(report("b", "b1"))
    assert reply.status == 200 and "server a1 " in reply.body.decode() and "server b1 " in reply.body.decode()
    assert stored(api) == [("a1", "a"), ("b1", "b")]
    api.generate(report("a"))  # a's containers are gone; b's stay
    assert stored(api) == [("b1", "b")]
    bad = api.generate(report("a#1", "x"))
    assert bad.status == 400 and json.loads(bad.body)["field"] == "host"


@pytest.mark.parametrize("empty", ['""', "null"])
def test_an_empty_or_null_host_is_refused_and_wipes_nothing(api: Api, empty: str) -> None:
    assert api.generate(report("a", "a1")).status == 200
    bad = api.generate(b'{"table": "t", "host": %s, "running": []}' % empty.encode())
    assert bad.status == 400 and json.loads(bad.body)["field"] == "host"
    assert stored(api) == [("a1", "a")]


def test_lambda_merges_hosts(api: Api) -> None:
    app = LambdaApp(api)
    for host, cid in (("a", "a1"), ("b", "b1")):
        assert app(v2_event("POST", "/generate", report(host, cid), JSON), None)["statusCode"] == 200
    assert stored(api) == [("a1", "a"), ("b1", "b")]


def test_a_store_file_from_before_fleet_mode_gains_the_host_column(tmp_path: Path) -> None:
    import sqlite3

    from cosmos_core.builtin.sqlite_store import SQLiteStore
    from cosmos_core.model import Container, Service
    from cosmos_core.reconcile import diff

    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.executescript(
        "CREATE TABLE containers (tbl TEXT NOT NULL, service TEXT NOT NULL, id TEXT NOT NULL, host TEXT NOT NULL,"
        " port INTEGER, PRIMARY KEY (tbl, service, id)) WITHOUT ROWID;"
    )
    conn.close()
    store = SQLiteStore(str(path))
    web = Service("web", "host", "w.test", None, 80, (Container("c1", "10.0.0.1", host_id="a"),))
    store.apply("t", diff({}, {"web": web}), store.load("t"))
    assert store.load("t").services["web"] == web
    store.close()


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("liveness", ["process", "store"])
def test_a_host_that_stops_posting_expires_after_the_lease_and_returns(tmp_path: Path, liveness: str) -> None:
    """serve ("process": memory, monotonic clock) and Lambda ("store": the post times recorded in the
    store, the handler's wall clock) leave a silent host's containers out once its lease ran out."""
    clock = FakeClock()
    api = Api(Settings(store=f"sqlite://{tmp_path / 'state.db'}", heartbeat=1.0, lease=3.0), liveness=liveness,
              clock=clock)
    handler = LambdaApp(api)

    def post(body: bytes) -> str:
        if liveness == "process":
            return api.generate(body).body.decode()
        return str(handler(v2_event("POST", "/generate", body, JSON), None)["body"])

    from structlog.testing import capture_logs

    def verdicts(logs: list[dict]) -> list[tuple[str, str]]:
        return [(e["event"], e["host"]) for e in logs if e["event"] in ("host_dead", "host_alive")]

    try:
        with capture_logs() as logs:
            assert "server a1 " in post(report("a", "a1"))
            clock.now += 2.9
            assert "server a1 " in post(report("b", "b1"))  # a posted 2.9 s ago: alive
            clock.now += 0.2
            config = post(report("b", "b1"))
            assert "server a1 " not in config and "server b1 " in config  # 3.1 s: a is dead
            assert verdicts(logs) == [("host_dead", "a")]
            post(report("b", "b1"))
            assert verdicts(logs) == [("host_dead", "a")]  # once per change, not per request
            assert stored(api) == [("a1", "a"), ("b1", "b")]  # still stored: it returns when a posts again
            clock.now += 10
            config = post(report("a", "a1"))
            assert "server a1 " in config and "server b1 " not in config  # now b is the silent one
            assert verdicts(logs) == [("host_dead", "a"), ("host_alive", "a"), ("host_dead", "b")]  # a is back
        dead = [e for e in logs if e["event"] == "host_dead"][0]
        assert dead["table"] == "t" and dead["lease_s"] == 3.0 and dead["silent_s"] == 3.1
        # A payload without a host is the single-host truth: nothing is judged.
        assert api._judge(None, "t", None) is None  # type: ignore[arg-type]
    finally:
        api.close()


def test_serves_live_hosts_gauge_counts_hosts_that_posted_within_the_lease(tmp_path: Path) -> None:
    """`cosmos serve`'s /metrics: ``cosmos_live_hosts`` is judged at scrape time on serve's clock."""
    import asyncio

    from cosmos_core import metrics
    from cosmos_core.server.app import create_app
    from tests.support.prometheus import parse, value

    clock = FakeClock()
    api = Api(Settings(store=f"sqlite://{tmp_path / 'state.db'}", heartbeat=1.0, lease=3.0), clock=clock)
    page = next(r.endpoint for r in create_app(api).routes if getattr(r, "path", None) == "/metrics")

    def live() -> float:
        return value(parse(asyncio.run(page(None)).body.decode()), "cosmos_live_hosts")

    try:
        assert live() == 0
        api.generate(report("a", "a1"))
        api.generate(report("b", "b1"))
        assert live() == 2
        clock.now += 2.0
        api.generate(report("b", "b1"))
        clock.now += 1.5  # a: 3.5 s silent, b: 1.5 s
        assert live() == 1  # no request since: the scrape itself judges
        api.generate(report("c", "c1"))  # a third host posts: b and c live
        assert live() == 2
    finally:
        api.close()
        metrics.disable()


def test_serve_gives_hosts_stored_before_it_started_a_full_lease(tmp_path: Path) -> None:
    store = f"sqlite://{tmp_path / 'state.db'}"
    first = Api(Settings(store=store))
    first.generate(report("a", "a1"))
    first.close()
    clock = FakeClock()
    api = Api(Settings(store=store, heartbeat=1.0, lease=3.0), clock=clock)
    try:
        assert "server a1 " in api.generate(report("b", "b1")).body.decode()  # a first seen now
        clock.now += 3.5
        assert "server a1 " not in api.generate(report("b", "b1")).body.decode()
    finally:
        api.close()


def test_the_lambda_handler_records_posts_in_the_store(tmp_path: Path) -> None:
    from cosmos_core.server.lambda_handler import from_environment

    app = from_environment({"COSMOS_STORE": f"sqlite://{tmp_path / 'state.db'}", "COSMOS_LEASE": "30"})
    try:
        assert app.api.liveness == "store" and app.api.lease == 30
        assert app(v2_event("POST", "/generate", report("a", "a1"), JSON), None)["statusCode"] == 200
        from cosmos_core.builtin.sqlite_store import SQLiteStore

        raw = SQLiteStore(str(tmp_path / "state.db"))
        record = raw.fleet("t").hosts["a"]
        raw.close()
        assert record.beats == 1 and record.at is not None
    finally:
        app.api.close()


def test_a_lease_that_is_not_positive_is_refused_at_start(tmp_path: Path) -> None:
    from cosmos_core.errors import ValidationError

    with pytest.raises(ValidationError) as exc:
        Api(Settings(store=f"sqlite://{tmp_path / 'state.db'}", lease=0.0))
    assert exc.value.field == "lease"
    with pytest.raises(ValidationError) as exc:
        Api(Settings(store=f"sqlite://{tmp_path / 'state.db'}", heartbeat=-1.0))
    assert exc.value.field == "heartbeat"
    with pytest.raises(ValidationError) as exc:  # a lease no longer than the heartbeat: as cosmos watch refuses it
        Api(Settings(store=f"sqlite://{tmp_path / 'state.db'}", heartbeat=1.0, lease=1.0))
    assert exc.value.field == "lease"
