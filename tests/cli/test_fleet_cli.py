"""`cosmos fleet status|forget`, `cosmos status` hosts, and the fleet options of `cosmos watch`."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from typer.testing import CliRunner

from cosmos_core.builtin.sqlite_store import SQLiteStore
from cosmos_core.cli import app

PAYLOAD = {"table": "t", "running": [{"serviceName": "web", "id": "c1", "ip": "10.0.0.1:80"}],
           "candidates": [{"serviceName": "web", "configMode": "host", "predicate": "w.test",
                           "containers": [{"id": "c1", "ip": "10.0.0.1:80"}]}]}


def seed(runner: CliRunner, store: str, host: str, cid: str) -> None:
    data = json.loads(json.dumps(PAYLOAD).replace("c1", cid))
    result = runner.invoke(app, ["generate", "--store", store], input=json.dumps({**data, "host": host}))
    assert result.exit_code == 0, result.stderr


def test_status_and_fleet_status_show_hosts(runner: CliRunner, tmp_path: Path) -> None:
    store = f"sqlite://{tmp_path}/s.db"
    seed(runner, store, "node-a", "a1")
    seed(runner, store, "node-b", "b1")
    raw = SQLiteStore(f"{tmp_path}/s.db")
    raw.heartbeat("t", "node-a", "192.0.2.1")
    raw.heartbeat("t", "node-b", None)
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(0.1):
            raw.heartbeat("t", "node-a", "192.0.2.1")

    text = runner.invoke(app, ["status", "--store", store])
    assert "a1  10.0.0.1:80  host=node-a" in text.stdout and "b1  10.0.0.1:80  host=node-b" in text.stdout
    beater = threading.Thread(target=beat)
    beater.start()
    try:
        result = runner.invoke(app, ["fleet", "status", "--store", store, "--table", "t", "--sample", "1",
                                     "--heartbeat", "0.2", "--lease", "0.6", "--json"])
    finally:
        stop.set()
        beater.join()
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["generation"] == 2 and data["lease_s"] == 0.6
    hosts = {h["host"]: h for h in data["hosts"]}
    assert hosts["node-a"]["state"] == "alive" and hosts["node-a"]["address"] == "192.0.2.1"
    assert hosts["node-b"]["state"] == "dead" and hosts["node-b"]["containers"] == 1
    quick = runner.invoke(app, ["fleet", "status", "--store", store, "--table", "t", "--sample", "0"])
    assert "node-b  silent  beats=1" in quick.stdout

    forgot = runner.invoke(app, ["fleet", "forget", "node-b", "--store", store, "--table", "t"])
    assert forgot.exit_code == 0, forgot.stderr
    assert "record removed, 1 container(s) removed" in forgot.stdout
    after = {s.name: [c.id for c in s.containers] for s in raw.load("t").services.values()}
    assert after == {"web": ["a1"]}
    assert list(raw.fleet("t").hosts) == ["node-a"]
    again = runner.invoke(app, ["fleet", "forget", "node-b", "--store", store, "--table", "t"])
    assert again.exit_code == 2 and "host" in again.stderr
    raw.close()


def test_bad_fleet_options_are_one_line_exit_2(runner: CliRunner, tmp_path: Path) -> None:
    store = f"sqlite://{tmp_path}/s.db"
    for argv, field in ((["--heartbeat", "0"], "heartbeat"), (["--heartbeat", "5", "--lease", "2"], "lease"),
                        (["--host-id", "bad host"], "host_id"), (["--advertise-address", "no way"], "advertise_address")):
        result = runner.invoke(app, ["watch", "--once", "--events", "payload", "--reloader", "none",
                                     "--store", store, *argv])
        assert result.exit_code == 2, (argv, result.stderr)
        assert result.stderr.count("\n") == 1 and field in result.stderr
    bad = runner.invoke(app, ["generate", "--store", store], input=json.dumps({**PAYLOAD, "host": "a#b"}))
    assert bad.exit_code == 2 and "host" in bad.stderr
    assert not SQLiteStore(f"{tmp_path}/s.db").load("t").services


def test_env_and_toml_set_the_host_id(runner: CliRunner, tmp_path: Path, monkeypatch) -> None:
    store = f"sqlite://{tmp_path}/s.db"
    (tmp_path / "p.json").write_text(json.dumps(PAYLOAD))
    (tmp_path / "cosmos.toml").write_text('host_id = "from-toml"\nheartbeat = 1.5\n')
    result = runner.invoke(app, ["watch", "--once", "--events", "payload", "--reloader", "none", "--store", store],
                           env={"COSMOS_PAYLOAD": str(tmp_path / "p.json")})
    assert result.exit_code == 0, result.stderr
    assert [c.host_id for c in SQLiteStore(f"{tmp_path}/s.db").load("t").services["web"].containers] == ["from-toml"]
    monkeypatch.setenv("COSMOS_HOST_ID", "from-env")
    result = runner.invoke(app, ["watch", "--once", "--events", "payload", "--reloader", "none", "--store", store],
                           env={"COSMOS_PAYLOAD": str(tmp_path / "p.json"), "COSMOS_HOST_ID": "from-env"})
    assert result.exit_code == 0, result.stderr
    hosts = sorted(c.host_id for c in SQLiteStore(f"{tmp_path}/s.db").load("t").services["web"].containers)
    assert hosts == ["from-env"]  # the env var wins over the file; container c1 changed owner


def test_watch_events_payload_the_payload_host_wins_over_host_id(runner: CliRunner, tmp_path: Path) -> None:
    """`cosmos watch --events payload`: a payload naming its `host` is that host's truth; without
    `host`, the agent's `--host-id` owns it (the agent heartbeats as `--host-id` either way)."""
    store = f"sqlite://{tmp_path}/s.db"
    for name, data in (("named", {**PAYLOAD, "host": "node-x"}), ("plain", json.loads(json.dumps(PAYLOAD).replace("c1", "c2")))):
        (tmp_path / f"{name}.json").write_text(json.dumps(data))
        result = runner.invoke(app, ["watch", "--events", "payload", "--payload", str(tmp_path / f"{name}.json"),
                                     "--store", store, "--host-id", "agent-1", "--reloader", "none", "--once"])
        assert result.exit_code == 0, result.stderr
    stored = SQLiteStore(f"{tmp_path}/s.db")
    try:
        owners = {c.id: c.host_id for s in stored.load("t").services.values() for c in s.containers}
    finally:
        stored.close()
    assert owners == {"c1": "node-x", "c2": "agent-1"}
