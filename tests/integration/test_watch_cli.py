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
    assert "backend app1" in config.read_text()
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
