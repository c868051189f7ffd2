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
