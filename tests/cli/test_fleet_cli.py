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
                        (["--host-id", "bad host"], "--host-id"), (["--advertise-address", "no way"], "advertise_address")):
        result = runner.invoke(app, ["watch", "--once", "--events", "payload", "--reloader", "none",
                                     "--store", store, *argv])
        assert result.exit_code == 2, (argv, result.stderr)
        assert result.stderr.count("\n") == 1 and field in result.stderr
    env = runner.invoke(app, ["watch", "--once", "--events", "payload", "--reloader", "none", "--store", store],
                        env={"COSMOS_HOST_ID": "bad id"})
    assert env.exit_code == 2 and env.stderr.count("\n") == 1 and "COSMOS_HOST_ID" in env.stderr
    bad = runner.invoke(app, ["generate", "--store", store], input=json.dumps({**PAYLOAD, "host": "a#b"}))
    assert bad.exit_code == 2 and "host" in bad.stderr
    assert not (tmp_path / "s.db").exists()  # refused before anything is stored: no store file made either
    assert not SQLiteStore(f"{tmp_path}/s.db").load("t").services


def test_an_empty_host_id_is_refused_not_replaced_by_the_machine_name(runner: CliRunner, tmp_path: Path) -> None:
    """`--host-id ""` (or env / toml) is bad input; `"host": ""` / `null` in a payload too (a payload
    without `host` is the whole truth for its table: an empty one would wipe every host)."""
    store = f"sqlite://{tmp_path}/s.db"
    seed(runner, store, "node-a", "a1")
    argv = ["watch", "--once", "--events", "payload", "--reloader", "none", "--store", store]
    for extra, env, toml, field in ((["--host-id", ""], {}, None, "--host-id"),
                                    ([], {"COSMOS_HOST_ID": ""}, None, "COSMOS_HOST_ID"),
                                    ([], {}, 'host_id = ""\n', "cosmos.toml: host_id")):
        if toml is not None:
            (tmp_path / "cosmos.toml").write_text(toml)
        result = runner.invoke(app, [*argv, *extra],
                               env={**env, **({"COSMOS_CONFIG": str(tmp_path / "cosmos.toml")} if toml else {})})
        assert result.exit_code == 2, (extra, env, result.stderr)
        assert result.stderr.count("\n") == 1 and f"{field}: " in result.stderr and "''" in result.stderr
    (tmp_path / "cosmos.toml").unlink()
    for empty in ('""', "null"):
        bad = runner.invoke(app, ["generate", "--store", store], input='{"table": "t", "host": %s, "running": []}' % empty)
        assert bad.exit_code == 2 and bad.stderr.startswith("cosmos: error: host: "), bad.stderr
    raw = SQLiteStore(f"{tmp_path}/s.db")
    try:
        assert [c.id for c in raw.load("t").services["web"].containers] == ["a1"]  # nothing wiped
        assert list(raw.fleet("t").hosts) == []  # and no host record from the refused agents
    finally:
        raw.close()


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
    `host`, the agent's `--host-id` owns it (a one-shot agent writes no host record either way)."""
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


def test_a_one_shot_payload_agent_writes_no_host_record(runner: CliRunner, tmp_path: Path) -> None:
    """`cosmos watch --events payload` runs one pass and exits, with or without `--once`: it
    claims no liveness it cannot keep (no host record, so its containers never expire on other
    hosts) and says so in its log instead of `fleet_joined`."""
    store = f"sqlite://{tmp_path}/s.db"
    (tmp_path / "p.json").write_text(json.dumps(PAYLOAD))
    for once in (["--once"], []):
        result = runner.invoke(app, ["--log-format", "json", "watch", "--events", "payload", "--payload",
                                     str(tmp_path / "p.json"), "--store", store, "--host-id", "h1",
                                     "--heartbeat", "0.05", "--reloader", "none", *once])
        assert result.exit_code == 0, result.stderr
        events = [json.loads(line)["event"] for line in result.stderr.splitlines() if line.startswith("{")]
        assert "fleet_one_shot" in events and "fleet_joined" not in events, (once, events)
    raw = SQLiteStore(f"{tmp_path}/s.db")
    try:
        assert dict(raw.fleet("t").hosts) == {}
        assert [c.host_id for c in raw.load("t").services["web"].containers] == ["h1"]
    finally:
        raw.close()
    status = runner.invoke(app, ["fleet", "status", "--store", store, "--table", "t", "--json"])
    assert [(h["host"], h["state"]) for h in json.loads(status.stdout)["hosts"]] == [("h1", "no-record")]


def test_fleet_status_by_default_reads_once_and_judges_nothing(runner: CliRunner, tmp_path: Path, monkeypatch) -> None:
    """The default never waits (one read: counters and each host's recorded heartbeat time as
    information); `--observe SECONDS` judges liveness on the command's own clock."""
    import time

    store = f"sqlite://{tmp_path}/s.db"
    seed(runner, store, "node-a", "a1")
    raw = SQLiteStore(f"{tmp_path}/s.db")
    raw.heartbeat("t", "node-a", "192.0.2.1", at=1_764_488_400.0)  # 2025-11-30T07:40:00Z by node-a's clock
    raw.close()

    def no_waiting(seconds: float) -> None:
        raise AssertionError(f"fleet status waited {seconds} s")

    monkeypatch.setattr(time, "sleep", no_waiting)
    result = runner.invoke(app, ["fleet", "status", "--store", store, "--table", "t", "--json"])
    assert result.exit_code == 0, result.stderr or result.stdout
    data = json.loads(result.stdout)
    assert data["judged"] is False and data["sampled_s"] == 0
    host = data["hosts"][0]
    assert (host["host"], host["state"], host["beats"]) == ("node-a", "unjudged", 1)
    assert host["heartbeat_at"] == "2025-11-30T07:40:00Z" and host["heartbeat_wall_age_s"] > 0
    text = runner.invoke(app, ["fleet", "status", "--store", store, "--table", "t"]).stdout
    assert "node-a  unjudged  beats=1" in text and "last_heartbeat=2025-11-30T07:40:00Z" in text
    assert "not observed (--observe SECONDS judges liveness)" in text
    monkeypatch.undo()
    observed = runner.invoke(app, ["fleet", "status", "--store", store, "--table", "t", "--observe", "0.3",
                                   "--heartbeat", "0.1", "--lease", "0.2", "--json"])
    assert json.loads(observed.stdout)["hosts"][0]["state"] == "dead"  # no beat in 0.3 s >= the lease
    bad = runner.invoke(app, ["fleet", "status", "--store", store, "--observe", "-1"])
    assert bad.exit_code == 2 and "observe" in bad.stderr


def test_fleet_status_checks_observe_heartbeat_and_lease_as_watch_does(runner: CliRunner, tmp_path: Path,
                                                                      monkeypatch) -> None:
    """Non-finite --observe (it would never return), a lease that is not positive or not longer than
    the heartbeat (flag or cosmos.toml): one line naming the field and value, exit 2, nothing read."""
    import time

    store = f"sqlite://{tmp_path}/s.db"
    seed(runner, store, "node-a", "a1")

    def no_waiting(seconds: float) -> None:  # a refused --observe never starts watching
        raise AssertionError(f"fleet status waited {seconds} s")

    monkeypatch.setattr(time, "sleep", no_waiting)
    status = ["fleet", "status", "--store", store, "--table", "t"]
    for argv, field in ((["--observe", "inf"], "observe"), (["--observe", "1e400"], "observe"),
                        (["--observe", "nan"], "observe"), (["--lease", "-1"], "lease"), (["--lease", "0"], "lease"),
                        (["--heartbeat", "2", "--lease", "2"], "lease"), (["--heartbeat", "0"], "heartbeat"),
                        (["--heartbeat", "-1"], "heartbeat")):
        result = runner.invoke(app, [*status, *argv])
        assert result.exit_code == 2, (argv, result.stdout, result.stderr)
        assert result.stderr.count("\n") == 1 and f"error: {field}: " in result.stderr, (argv, result.stderr)
        assert not result.stdout
    (tmp_path / "cosmos.toml").write_text("heartbeat = 1\nlease = 1\n")
    for command in (status, ["watch", "--once", "--events", "payload", "--reloader", "none", "--store", store]):
        result = runner.invoke(app, command)
        assert result.exit_code == 2 and "error: lease: " in result.stderr and "(got 1.0)" in result.stderr, result.stderr
