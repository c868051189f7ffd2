"""`cosmos watch` through Typer's CliRunner (no Docker: the payload source and the host reloader)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cosmos_core.cli import app

SEED = Path(__file__).parents[2] / "examples" / "seed-payload.json"
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> CliRunner:
    for key in list(os.environ):
        if key.startswith("COSMOS_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("COSMOS_LOG_FORMAT", "json")
    monkeypatch.chdir(tmp_path)
    return CliRunner()


def test_once_with_the_payload_source_stores_and_reloads_through_the_host_reloader(runner: CliRunner, tmp_path: Path) -> None:
    config, marker = tmp_path / "haproxy.cfg", tmp_path / "reloaded"
    (tmp_path / "cosmos.toml").write_text(f'payload = "{SEED}"\nhaproxy_bin = "{HAPROXY}"\n')

    result = runner.invoke(
        app,
        ["watch", "--once", "--events", "payload", "--reloader", "host", "--haproxy-config", str(config),
         "--reload-command", f"touch {marker}"],
    )

    assert result.exit_code == 0, result.stderr
    assert "backend be_app1" in config.read_text()
    assert marker.exists()
    events = [json.loads(line)["event"] for line in result.stderr.splitlines() if line.startswith("{")]
    assert events[0] == "agent_started" and "reload" in events and events[-1] == "agent_stopped"


def test_once_exits_1_when_the_reload_fails(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        ["watch", "--once", "--events", "payload", "--reloader", "host", "--haproxy-config", str(tmp_path / "h.cfg"),
         "--reload-command", "false"],
        env={"COSMOS_PAYLOAD": str(SEED), "COSMOS_HAPROXY_BIN": HAPROXY},
    )

    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1].startswith("cosmos: error: reload command failed")


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["--reloader", "host"], "reload_command"),
        (["--debounce-quiet", "-1"], "debounce_quiet"),
        (["--debounce-quiet", "2", "--debounce-max-wait", "1"], "debounce_max_wait"),
        (["--events", "nosuch"], "events"),
        (["--reloader", "nosuch"], "reloader"),
    ],
)
def test_bad_settings_are_one_line_exit_2(runner: CliRunner, args: list[str], field: str) -> None:
    result = runner.invoke(app, ["watch", "--once", *args])

    assert result.exit_code == 2, result.stderr
    assert result.stderr.strip().startswith(f"cosmos: error: {field}")
    assert "Traceback" not in result.stderr


def test_settings_come_from_env_and_cosmos_toml(runner: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "cosmos.toml").write_text('reloader = "nosuch-from-toml"\n')
    from_toml = runner.invoke(app, ["watch", "--once"])
    from_env = runner.invoke(app, ["watch", "--once"], env={"COSMOS_RELOADER": "nosuch-from-env"})

    assert "'nosuch-from-toml'" in from_toml.stderr
    assert "'nosuch-from-env'" in from_env.stderr


def test_once_exits_2_on_an_invalid_payload_file_and_stores_nothing(runner: CliRunner, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    store = f"sqlite://{tmp_path}/s.db"
    result = runner.invoke(app, ["watch", "--once", "--events", "payload", "--payload", str(bad), "--reloader", "none",
                                 "--store", store])
    assert result.exit_code == 2, result.stderr
    assert result.stderr.splitlines()[-1].startswith("cosmos: error: payload")
    assert not (tmp_path / "s.db").exists()  # nothing stored: not even an empty store file is made
    status = runner.invoke(app, ["status", "--json", "--store", store])
    assert status.exit_code == 2 and "no such SQLite file" in status.stderr


def test_once_exits_2_when_haproxy_refuses_the_config(runner: CliRunner, tmp_path: Path) -> None:
    template = tmp_path / "bad.j2"
    template.write_text("global\n    no-such-keyword\n")
    config, marker = tmp_path / "h.cfg", tmp_path / "reloaded"
    config.write_text("previous\n")
    result = runner.invoke(
        app, ["watch", "--once", "--events", "payload", "--payload", str(SEED), "--reloader", "host",
              "--haproxy-config", str(config), "--reload-command", f"touch {marker}"],
        env={"COSMOS_TEMPLATE": str(template), "COSMOS_HAPROXY_BIN": HAPROXY},
    )
    assert result.exit_code == 2, result.stderr
    error = result.stderr.splitlines()[-1]
    assert error.startswith("cosmos: error: HAProxy refused the new config") and "no-such-keyword" in error
    assert config.read_text() == "previous\n" and not marker.exists()


def test_payload_from_stdin_with_the_payload_option(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(app, ["watch", "--once", "--events", "payload", "--payload", "-", "--reloader", "none",
                                 "--store", f"sqlite://{tmp_path}/s.db"], input=SEED.read_text())
    assert result.exit_code == 0, result.stderr
    status = runner.invoke(app, ["status", "--json", "--store", f"sqlite://{tmp_path}/s.db"])
    assert [s["name"] for s in json.loads(status.stdout)["tables"]["astro"]] == ["app1", "app2"]


def test_generate_output_writes_the_bundle_beside_the_main_file(runner: CliRunner, tmp_path: Path) -> None:
    output = tmp_path / "out" / "haproxy.cfg"
    result = runner.invoke(app, ["generate", str(SEED), "--store", f"sqlite://{tmp_path}/s.db", "--output", str(output)])
    assert result.exit_code == 0, result.stderr
    text = output.read_text()
    assert "default-path config" in text and "backend be_app1" in text
    check = __import__("subprocess").run([HAPROXY, "-c", "-f", str(output)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert sorted(p.name for p in output.parent.iterdir()) == ["haproxy.cfg", "maps"]
    assert sorted(p.name for p in (output.parent / "maps").iterdir()) == ["hosts.map", "paths.map", "wildcards.map"]
