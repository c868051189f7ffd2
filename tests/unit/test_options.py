"""Per-service and per-container options: payload, labels, model, dump and SQLite in one declaration."""

from __future__ import annotations

import json
import sqlite3

import pytest
from cosmos_events_docker import labels

from cosmos_core import options as opts
from cosmos_core import payload
from cosmos_core.builtin.sqlite_store import SQLiteStore
from cosmos_core.errors import StoreError, ValidationError
from cosmos_core.model import Container, Service
from cosmos_core.reconcile import diff
from cosmos_core.testing.options import registered_test_options


@pytest.fixture(autouse=True)
def _options():
    with registered_test_options():
        yield


def request(**extra):
    return {
        "table": "t",
        "running": [{"serviceName": "web", "id": "c1", "ip": "10.0.0.1:80", "testWeight": "10"}],
        "candidates": [{
            "serviceName": "web", "predicate": "web.example.com", "testAlgo": "leastconn",
            "testNets": ["10.0.0.0/8"], "containers": [{"id": "c1", "ip": "10.0.0.1:80", "testWeight": 10}],
            **extra,
        }],
    }


def test_payload_fields_become_options_and_dump_round_trips():
    snapshot = payload.parse(request())
    service = snapshot.candidates[0]
    assert service.options == (("test_algo", "leastconn"), ("test_nets", ("10.0.0.0/8",)))
    assert service.containers[0].options == (("test_weight", 10),)
    assert snapshot.running[0].container.options == (("test_weight", 10),)
    assert payload.parse(json.loads(payload.dumps(snapshot))) == snapshot


@pytest.mark.parametrize("field, value, path", [
    ("testAlgo", "fastest", "candidates[0].testAlgo"),
    ("testNets", ["10.0.0.0/33"], "candidates[0].testNets"),
])
def test_a_bad_service_option_names_its_field(field, value, path):
    with pytest.raises(ValidationError) as info:
        payload.parse(request(**{field: value}))
    assert info.value.field == path
    assert repr(value)[:20] in str(info.value)


def test_a_bad_container_option_names_its_field():
    data = request()
    data["candidates"][0]["containers"][0]["testWeight"] = 999
    with pytest.raises(ValidationError) as info:
        payload.parse(data)
    assert info.value.field == "candidates[0].containers[0].testWeight"


def test_the_model_refuses_undeclared_options():
    with pytest.raises(ValidationError, match="not a known option"):
        Service("web", "host", "w.example.com", None, 80, options=(("nope", 1),))
    with pytest.raises(ValidationError, match="not a known option"):
        Container("c1", "10.0.0.1", 80, options=(("test_algo", "first"),))  # a service option on a container


def test_changed_options_are_a_settings_change():
    before = Service("web", "host", "w.example.com", None, 80, options=(("test_algo", "first"),))
    after = before.derive(options=(("test_algo", "leastconn"),))
    (change,) = diff({"web": before}, {"web": after}).changes
    assert change.settings_changed


def test_labels_set_options_and_a_bad_label_names_container_and_label():
    attrs = {
        "Id": "a" * 64, "Name": "/web1", "Created": "2026-01-01",
        "State": {"Running": True},
        "Config": {"Labels": {"cosmos.service": "web", "cosmos.predicate": "web.example.com", "cosmos.port": "80",
                              "cosmos.test-algo": "first", "cosmos.test-weight": "3"}},
        "NetworkSettings": {"Networks": {"bridge": {"IPAddress": "172.17.0.2"}}},
    }
    parsed = labels.parse(attrs)
    assert parsed.entry is not None
    assert parsed.entry.service.options == (("test_algo", "first"),)
    assert parsed.entry.container.options == (("test_weight", 3),)
    snap = labels.snapshot([parsed.entry], "t")
    assert snap.candidates[0].options == (("test_algo", "first"),)
    attrs["Config"]["Labels"]["cosmos.test-weight"] = "heavy"
    problem = labels.parse(attrs).problem
    assert problem is not None and problem.label == "cosmos.test-weight"
    assert problem.message().startswith("container web1: cosmos.test-weight:")


def test_sqlite_migrates_a_database_written_before_options(tmp_path):
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.executescript(
        "CREATE TABLE services (tbl TEXT NOT NULL, name TEXT NOT NULL, mode TEXT NOT NULL, predicate TEXT NOT NULL,"
        " cookie TEXT, port INTEGER, PRIMARY KEY (tbl, name)) WITHOUT ROWID;"
        "CREATE TABLE containers (tbl TEXT NOT NULL, service TEXT NOT NULL, id TEXT NOT NULL, host TEXT NOT NULL,"
        " port INTEGER, PRIMARY KEY (tbl, service, id)) WITHOUT ROWID;"
        "CREATE TABLE revisions (tbl TEXT PRIMARY KEY, revision INTEGER NOT NULL) WITHOUT ROWID;"
        "INSERT INTO services VALUES ('t', 'web', 'host', 'w.example.com', NULL, 80);"
        "INSERT INTO containers VALUES ('t', 'web', 'c1', '10.0.0.1', NULL);"
        "INSERT INTO revisions VALUES ('t', 3);"
    )
    conn.commit()
    conn.close()
    store = SQLiteStore(str(path))
    state = store.load("t")
    assert state.services["web"].containers == (Container("c1", "10.0.0.1"),)
    tuned = state.services["web"].derive(options=(("test_algo", "first"),))
    store.apply("t", diff(state.services, {"web": tuned}), state)
    assert SQLiteStore(str(path)).load("t").services["web"] == tuned


def test_a_stored_option_that_fails_its_check_is_a_store_error(tmp_path):
    store = SQLiteStore(str(tmp_path / "s.db"))
    store.load("t")
    store.conn.execute("INSERT INTO services VALUES ('t', 'web', 'host', 'w.example.com', NULL, 80, ?)",
                       (json.dumps({"test_algo": "fastest"}),))
    with pytest.raises(StoreError, match="test_algo"):
        store.load("t")


def test_options_encode_deterministically():
    assert opts.encode(()) is None
    a = opts.freeze({"test_nets": ["10.0.0.0/8"], "test_algo": "first"})
    assert opts.encode(a) == '{"test_algo":"first","test_nets":["10.0.0.0/8"]}'
    assert opts.decode(opts.encode(a), opts.SERVICE_OPTIONS, "x") == a
