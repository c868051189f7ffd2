"""The embedded SQLite store: write only what changed, optimistic locking, atomic apply."""

from __future__ import annotations

import sqlite3

import pytest

from cosmos_core.builtin.sqlite_store import SQLiteStore
from cosmos_core.errors import ConflictError, StoreError
from cosmos_core.model import Container, Service
from cosmos_core.reconcile import diff


def svc(name: str, *ids: str, predicate: str = "a.example.com") -> Service:
    return Service(name, "host", predicate, "SID", 80, tuple(Container(i, "10.0.0.1") for i in ids))


@pytest.fixture
def store(tmp_path):
    s = SQLiteStore(str(tmp_path / "state.db"))
    yield s
    s.close()


def put(store, table: str, *services: Service):
    state = store.load(table)
    return store.apply(table, diff(state.services, {s.name: s for s in services}), state)


def test_round_trip_and_writes_only_what_changed(store) -> None:
    first = put(store, "t", svc("a", "1", "2"), svc("b", "3"))
    assert (first.written, first.deleted) == (5, 0)  # 2 services + 3 containers
    assert store.load("t").services == {"a": svc("a", "1", "2"), "b": svc("b", "3")}
    again = put(store, "t", svc("a", "1", "2"), svc("b", "3"))
    assert (again.written, again.deleted, again.requests) == (0, 0, 0)
    one_more = put(store, "t", svc("a", "1", "2", "4"), svc("b", "3"))
    assert (one_more.written, one_more.deleted) == (1, 0)
    settings_only = put(store, "t", svc("a", "1", "2", "4", predicate="b.example.com"), svc("b", "3"))
    assert (settings_only.written, settings_only.deleted) == (1, 0)


def test_delete(store) -> None:
    put(store, "t", svc("a", "1"), svc("b", "2"))
    result = put(store, "t", svc("b", "2"))
    assert result.deleted == 2 and list(store.load("t").services) == ["b"]


def test_tables_are_separate(store) -> None:
    put(store, "one", svc("a", "1"))
    put(store, "two", svc("b", "2"))
    assert store.tables() == ["one", "two"]
    assert list(store.load("one").services) == ["a"]
    assert store.load("empty").services == {}


def test_conflict_when_the_table_moved_since_load(store, tmp_path) -> None:
    stale = store.load("t")
    other = SQLiteStore(store.path)
    put(other, "t", svc("a", "1"))
    other.close()
    with pytest.raises(ConflictError):
        store.apply("t", diff(stale.services, {"b": svc("b", "2")}), stale)
    assert list(store.load("t").services) == ["a"]  # nothing half-written


def test_failed_apply_rolls_back(store, monkeypatch) -> None:
    put(store, "t", svc("a", "1"))
    state = store.load("t")
    plan = diff(state.services, {"a": svc("a", "1", "2"), "b": svc("b", "3")})
    calls = {"n": 0}
    original = store._apply_change

    def flaky(table, change):
        calls["n"] += 1
        if calls["n"] == 2:
            raise sqlite3.OperationalError("disk I/O error")
        return original(table, change)

    monkeypatch.setattr(store, "_apply_change", flaky)
    with pytest.raises(StoreError):
        store.apply("t", plan, state)
    assert store.load("t").services == {"a": svc("a", "1")}


def test_unopenable_path_is_a_store_error(tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StoreError) as info:
        SQLiteStore(str(blocker / "sub" / "state.db")).load("t")
    assert "check the path" in str(info.value)


def test_a_missing_file_is_made_on_the_first_write_and_read_once_another_process_made_it(tmp_path) -> None:
    from cosmos_core.model import Plan

    path = tmp_path / "new" / "s.db"
    reader, writer = SQLiteStore(str(path)), SQLiteStore(str(path))
    assert reader.load("t").services == {} and reader.tables() == []
    assert not path.parent.exists()  # reads make nothing
    state = writer.load("t")
    writer.apply("t", Plan(()), state)  # a pass that got as far as storing makes the file, even with nothing to store
    assert path.exists()
    writer.heartbeat("t", "h1", None)
    assert list(reader.fleet("t").hosts) == ["h1"]  # the reader now reads the file another handle made
    reader.close()
    writer.close()
