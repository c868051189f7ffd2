"""The CLI through Typer's CliRunner: output, exit codes, settings, errors."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from cosmos_core.cli import app

SEED = Path(__file__).parents[2] / "examples" / "seed-payload.json"


def cosmos(runner, *args, input=None):
    return runner.invoke(app, list(args), input=input)


def stored(runner, *args) -> dict:
    result = cosmos(runner, "status", "--json", *args)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)["tables"]


def test_generate_seed_prints_config_and_stores_it(runner, tmp_path) -> None:
    result = cosmos(runner, "generate", str(SEED))
    assert result.exit_code == 0, result.stderr
    assert "backend be_app1" in result.stdout and "backend be_app2" in result.stdout
    assert (tmp_path / "state" / "cosmos" / "cosmos.db").exists()  # the embedded default, no flags
    tables = stored(runner)
    assert [s["name"] for s in tables["astro"]] == ["app1", "app2"]
    assert tables["astro"][0]["containers"] == [{"id": "a23nj53h3j4", "address": "192.168.1.9:80"}]


def test_generate_reads_stdin(runner) -> None:
    result = cosmos(runner, "generate", "-", input=SEED.read_text())
    assert result.exit_code == 0 and "backend be_app2" in result.stdout
    assert cosmos(runner, "generate", input=SEED.read_text()).exit_code == 0


def test_generate_payload_from_env(runner, monkeypatch) -> None:
    monkeypatch.setenv("COSMOS_PAYLOAD", str(SEED))
    result = cosmos(runner, "generate")
    assert result.exit_code == 0 and "backend be_app2" in result.stdout


def test_generate_output_file(runner, tmp_path) -> None:
    out = tmp_path / "etc" / "haproxy.cfg"
    result = cosmos(runner, "generate", str(SEED), "--output", str(out))
    assert result.exit_code == 0 and result.stdout == ""
    assert "backend be_app1" in out.read_text()
    assert sorted(p.name for p in out.parent.iterdir()) == ["haproxy.cfg", "maps"]  # no temp file left behind


def test_tables_do_not_delete_each_other(runner, tmp_path) -> None:
    """The original ignored the table name, so one host's request deleted the others' services."""
    other = json.loads(SEED.read_text())
    other["tableName"] = "other"
    other["candidateServices"] = other["candidateServices"][:1]
    (tmp_path / "other.json").write_text(json.dumps(other))
    assert cosmos(runner, "generate", str(SEED)).exit_code == 0
    assert cosmos(runner, "generate", str(tmp_path / "other.json")).exit_code == 0
    tables = stored(runner)
    assert sorted(tables) == ["astro", "other"]
    assert len(tables["astro"]) == 2 and len(tables["other"]) == 1
    assert list(stored(runner, "--table", "other")) == ["other"]


@pytest.mark.parametrize("mutate, field", [
    (lambda d: d["candidateServices"][0].update(predicate="x.com\n    server evil 6.6.6.6:80"),
     "candidateServices[0].predicate"),
    (lambda d: d["candidateServices"][0].update(predicate="under_score.example.com"),
     "candidateServices[0].predicate"),
    (lambda d: d["candidateServices"][2].update(configMode="path", predicate="/a/../b"),
     "candidateServices[2].predicate"),
    (lambda d: d["candidateServices"][1].update(configMode="weird"), "candidateServices[1].configMode"),
    (lambda d: d["candidateServices"][1]["containers"][0].update(ip="192.168.1.10:99999"),
     "candidateServices[1].containers[0].ip"),
    (lambda d: d.update(runningServices="nope"), "runningServices"),
])
def test_bad_input_exits_2_names_the_field_and_stores_nothing(runner, tmp_path, mutate, field) -> None:
    assert cosmos(runner, "generate", str(SEED)).exit_code == 0
    before = stored(runner)
    data = json.loads(SEED.read_text())
    data["candidateServices"].append({"serviceName": "app3", "predicate": "third.example.com",
                                      "containers": [{"id": "n1", "ip": "10.0.0.3:80"}]})
    mutate(data)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    result = cosmos(runner, "generate", str(bad))
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("cosmos: error: ")
    assert result.stderr.startswith(f"cosmos: error: {field}: ")
    assert "Traceback" not in result.stderr
    assert stored(runner) == before


def test_unknown_mode_lists_installed_modes(runner, tmp_path) -> None:
    data = json.loads(SEED.read_text())
    data["candidateServices"][0]["configMode"] = "weird"
    (tmp_path / "p.json").write_text(json.dumps(data))
    result = cosmos(runner, "generate", str(tmp_path / "p.json"))
    assert result.exit_code == 2
    assert "routing mode 'weird' not recognised; installed: host, path; is the plugin installed?" in result.stderr


def test_invalid_json_and_missing_file_exit_2(runner, tmp_path) -> None:
    (tmp_path / "bad.json").write_text("{")
    assert cosmos(runner, "generate", str(tmp_path / "bad.json")).exit_code == 2
    result = cosmos(runner, "generate", str(tmp_path / "missing.json"))
    assert result.exit_code == 2 and "payload" in result.stderr


def test_unknown_store_scheme_exits_2(runner) -> None:
    result = cosmos(runner, "generate", str(SEED), "--store", "redis://x")
    assert result.exit_code == 2
    assert "store scheme 'redis' not recognised; installed:" in result.stderr and "sqlite" in result.stderr


def test_store_without_scheme_exits_2(runner) -> None:
    result = cosmos(runner, "status", "--store", "/tmp/x.db")
    assert result.exit_code == 2 and result.stderr.startswith("cosmos: error: store: ")


def test_unreachable_store_exits_1_without_traceback(runner, tmp_path) -> None:
    (tmp_path / "blocker").write_text("")
    url = f"sqlite://{tmp_path}/blocker/sub/state.db"
    result = cosmos(runner, "generate", str(SEED), "--store", url)
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "blocker/sub/state.db" in result.stderr


def test_debug_shows_the_exception(runner, tmp_path) -> None:
    (tmp_path / "blocker").write_text("")
    result = cosmos(runner, "--debug", "generate", str(SEED), "--store", f"sqlite://{tmp_path}/blocker/x/s.db")
    assert result.exit_code == 1
    assert type(result.exception).__name__ == "StoreError"


def test_store_from_env_and_toml(runner, tmp_path, monkeypatch) -> None:
    (tmp_path / "cosmos.toml").write_text(f'store = "sqlite://{tmp_path}/from-toml.db"\n')
    assert cosmos(runner, "generate", str(SEED)).exit_code == 0
    assert (tmp_path / "from-toml.db").exists()
    monkeypatch.setenv("COSMOS_STORE", f"sqlite://{tmp_path}/from-env.db")
    assert cosmos(runner, "generate", str(SEED)).exit_code == 0
    assert (tmp_path / "from-env.db").exists()
    assert cosmos(runner, "generate", str(SEED), "--store", f"sqlite://{tmp_path}/from-flag.db").exit_code == 0
    assert (tmp_path / "from-flag.db").exists()


def test_bad_toml_setting_exits_2(runner, tmp_path) -> None:
    (tmp_path / "cosmos.toml").write_text('stroe = "sqlite:///x"\n')
    result = cosmos(runner, "status")
    assert result.exit_code == 2 and "stroe" in result.stderr and "not a known setting" in result.stderr


def test_bad_log_level_exits_2(runner) -> None:
    result = cosmos(runner, "--log-level", "loud", "status")
    assert result.exit_code == 2 and "log_level" in result.stderr


def test_status_human_and_empty(runner) -> None:
    result = cosmos(runner, "status")
    assert result.exit_code == 0 and "(no services stored)" in result.stdout
    cosmos(runner, "generate", str(SEED))
    result = cosmos(runner, "status")
    assert "table astro: 2 service(s)" in result.stdout
    assert "app2  host second.example.com  cookie=JSESSIONID" in result.stdout
    assert "das843j3h3k  192.168.1.10:80" in result.stdout


def test_plugins_json_lists_builtins_and_the_routing_plugin(runner) -> None:
    result = cosmos(runner, "plugins", "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    by_name = {p["name"]: p for p in data["plugins"]}
    assert by_name["cosmos_core.builtin.sqlite_store"] == {
        "name": "cosmos_core.builtin.sqlite_store", "source": "builtin", "provides": {"state_stores": ["sqlite"]},
        "options": []}
    host = by_name["cosmos_core.builtin.host_reloader"]["options"]
    assert {o["name"]: (o["type"], o["env"], o["table"]) for o in host}["master_socket"] == (
        "str", "COSMOS_MASTER_SOCKET", "plugins.host")
    docker_exec = {o["name"]: o for o in by_name["reload_docker_exec"]["options"]}
    assert docker_exec["haproxy_container"]["default"] == "haproxy"
    assert docker_exec["haproxy_config"]["table"] == "plugins.docker-exec"
    assert by_name["emit_remote"]["provides"] == {"passes": ["remote"]}
    assert by_name["routing_host_path"]["provides"] == {"routing_modes": ["host", "path"]}
    assert by_name["routing_host_path"]["source"].startswith("cosmos-routing-host-path ")
    human = cosmos(runner, "plugins").stdout
    assert "routing_modes: host, path" in human


def test_logs_are_json_on_stderr_when_not_a_tty(runner) -> None:
    result = cosmos(runner, "generate", str(SEED))
    events = [json.loads(line) for line in result.stderr.splitlines()]
    reconciled = [e for e in events if e["event"] == "reconciled"]
    assert reconciled and reconciled[0]["created"] == 2 and reconciled[0]["table"] == "astro"


def test_console_log_format(runner) -> None:
    result = cosmos(runner, "--log-format", "console", "generate", str(SEED))
    assert result.exit_code == 0 and "reconciled" in result.stderr and not result.stderr.startswith("{")


def test_help_is_fast_and_lists_commands(runner) -> None:
    result = cosmos(runner, "--help")
    assert result.exit_code == 0
    for command in ("generate", "status", "plugins"):
        assert command in result.stdout


def test_help_does_not_import_heavy_modules(tmp_path) -> None:
    import subprocess
    import sys

    code = ("import sys\nfrom cosmos_core.cli import app\n"
            "try:\n    app(['--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('boto3','docker','jinja2','sqlite3','uvicorn','starlette') if m in sys.modules), file=sys.stderr)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stderr.strip().splitlines()[-1] == "[]"


def test_console_script_is_installed() -> None:
    assert shutil.which("cosmos") or Path(__import__("sys").executable).with_name("cosmos").exists()


def test_unwritable_output_is_one_line_exit_1(runner, tmp_path) -> None:
    (tmp_path / "blocker").write_text("")
    result = cosmos(runner, "generate", str(SEED), "--output", str(tmp_path / "blocker" / "haproxy.cfg"))
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if not line.startswith("{")]  # the rest are JSON logs
    assert len(errors) == 1 and errors[0].startswith("cosmos: error: --output ") and "Traceback" not in result.stderr


def test_an_invalid_stored_row_is_a_store_error(runner, tmp_path) -> None:
    import sqlite3

    assert cosmos(runner, "generate", str(SEED)).exit_code == 0
    db = tmp_path / "state" / "cosmos" / "cosmos.db"
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE containers SET host = 'bad host' WHERE id = 'das843j3h3k'")
    result = cosmos(runner, "status")
    assert result.exit_code == 1 and "invalid row" in result.stderr and result.stderr.count("\n") == 1


def test_deeply_nested_json_exits_2_naming_the_payload(runner, tmp_path) -> None:
    """1,000 levels in 2 KB: bad input (exit 2, field payload), not a crash; nothing stored."""
    text = '{"tableName": "deep", "runningServices": ' + "[" * 1000 + "]" * 1000 + "}"
    assert len(text) < 2100
    (tmp_path / "deep.json").write_text(text)
    result = cosmos(runner, "generate", str(tmp_path / "deep.json"))
    assert result.exit_code == 2
    assert result.stderr.startswith("cosmos: error: payload: is nested too deeply")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert stored(runner) == {}


def test_generate_does_not_import_what_it_does_not_need(tmp_path) -> None:
    """A whole `cosmos generate --no-check` of the seed: no heavy library, and none of the modules
    deferred to the commands and features that use them (runtime API, fleet, certificates, quarantine)."""
    import subprocess
    import sys

    deferred = ("boto3", "botocore", "docker", "requests", "urllib3", "uvicorn", "starlette", "acme", "cryptography",
                "prometheus_client", "pydantic", "cosmos_core.haproxy.churn", "cosmos_core.haproxy.runtime_api",
                "cosmos_core.haproxy.tls_runtime", "cosmos_core.fleet", "cosmos_core.fleet_agent", "cosmos_core.certs",
                "cosmos_core.quarantine", "cosmos_core.agent", "cosmos_core.status", "cosmos_core.server")
    code = ("import sys\nfrom cosmos_core.cli import app\n"
            f"try:\n    app(['--log-level', 'warning', 'generate', {str(SEED)!r}, '--no-check', "
            f"'--store', 'sqlite:///{tmp_path}/c.db'])\nexcept SystemExit as exc:\n    assert not exc.code, exc.code\n"
            f"print(sorted(m for m in {deferred!r} if m in sys.modules), file=sys.stderr)")
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state"), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert "backend " in out.stdout  # it did render
    assert out.stderr.strip().splitlines()[-1] == "[]"


def test_command_annotations_are_objects_not_strings() -> None:
    """typer compiles and evaluates every string annotation of every command on each start (~10 ms for
    ours): the command modules do without ``from __future__ import annotations``."""
    import inspect

    from cosmos_core.cli import fleet

    callbacks = [c.callback for c in app.registered_commands] + [app.registered_callback.callback]
    callbacks += [c.callback for c in fleet.app.registered_commands]
    assert len(callbacks) >= 9
    for callback in callbacks:
        strings = [name for name, p in inspect.signature(callback).parameters.items() if isinstance(p.annotation, str)]
        assert not strings, (callback.__qualname__, strings)
