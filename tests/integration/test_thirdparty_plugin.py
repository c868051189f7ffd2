"""A third-party routing plugin, pip-installed with its entry point, extends the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

FIXTURE = Path(__file__).parents[1] / "fixtures" / "thirdparty_routing"
COSMOS = [sys.executable, "-c", "from cosmos_core.cli import main; main()"]


def pip_install(fixture: Path, target: Path) -> dict[str, str]:
    """Install ``fixture`` into ``target``: the environment of a ``cosmos`` that sees it (no COSMOS_* vars)."""
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
         "--disable-pip-version-check", "--target", str(target), str(fixture)],
        check=True, capture_output=True,
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("COSMOS_")}
    env["PYTHONPATH"] = str(target)
    return env


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict[str, str]:
    return pip_install(FIXTURE, tmp_path_factory.mktemp("site"))


def run(env, *args, input=None):
    return subprocess.run([*COSMOS, *args], env=env, capture_output=True, text=True, input=input)


def test_plugin_is_listed_with_its_names(installed) -> None:
    result = run(installed, "plugins", "--json")
    assert result.returncode == 0, result.stderr
    plugins = {p["name"]: p for p in json.loads(result.stdout)["plugins"]}
    assert plugins["exact_path"]["source"] == "cosmos-exact-path 1.0.0"
    assert plugins["exact_path"]["provides"] == {"routing_modes": ["exact"]}


def test_plugin_mode_routes_and_passes_haproxy_check(installed, tmp_path, haproxy_bin) -> None:
    payload = {"table": "t", "candidates": [
        {"serviceName": "health", "configMode": "EXACT", "predicate": "healthz",
         "containers": [{"id": "h1", "ip": "10.0.0.1:80"}]},
        {"serviceName": "web", "configMode": "path", "predicate": "/",
         "containers": [{"id": "w1", "ip": "10.0.0.2:80"}]},
    ]}
    cfg = tmp_path / "out" / "h.cfg"
    result = run(installed, "generate", "-", "--store", f"sqlite://{tmp_path}/s.db", "--output", str(cfg),
                 input=json.dumps(payload))
    assert result.returncode == 0, result.stderr
    frontend = [line.strip() for line in cfg.read_text().splitlines() if line.startswith("    ")]
    # The plugin's mode has no map entries: its ACL (precedence 5) comes before the map lookup of host/path.
    acl = frontend.index("acl acl_health path /healthz")
    assert frontend[acl + 1] == "use_backend be_health if acl_health"
    assert frontend.index("use_backend %[var(txn.cosmos_backend)] if { var(txn.cosmos_backend) -m found }") > acl + 1
    assert (tmp_path / "out" / "maps" / "paths.map").read_text() == "/ be_web\n"
    check = subprocess.run([haproxy_bin, "-c", "-f", str(cfg)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


def test_without_the_plugin_the_mode_is_unknown(tmp_path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COSMOS_")}
    payload = {"candidates": [{"serviceName": "h", "configMode": "exact", "predicate": "/x",
                               "containers": [{"id": "h1", "ip": "10.0.0.1:80"}]}]}
    result = run(env, "generate", "-", "--store", f"sqlite://{tmp_path}/s.db", input=json.dumps(payload))
    assert result.returncode == 2
    assert "routing mode 'exact' not recognised; installed: host, path; is the plugin installed?" in result.stderr


# ------------------------------------------- a reloader with its own setting, a broken mode, a misspelled hook

DROP_FIXTURE = Path(__file__).parents[1] / "fixtures" / "thirdparty_reloader"
SEED = Path(__file__).parents[2] / "examples" / "seed-payload.json"


@pytest.fixture(scope="module")
def installed_drop(tmp_path_factory) -> dict[str, str]:
    return pip_install(DROP_FIXTURE, tmp_path_factory.mktemp("site-drop"))


def run_in(cwd: Path, env, *args, input=None):
    return subprocess.run([*COSMOS, *args], env=env, capture_output=True, text=True, input=input, cwd=cwd)


def test_declared_options_are_listed_and_a_misspelled_hook_is_a_load_failure(installed_drop, tmp_path) -> None:
    result = run_in(tmp_path, installed_drop, "plugins", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    plugins = {p["name"]: p for p in data["plugins"]}
    assert plugins["file_drop"]["options"] == [{
        "name": "drop_dir", "type": "str", "default": None, "help": "directory that receives haproxy.cfg and its files",
        "env": "COSMOS_DROP_DIR", "table": "plugins.drop", "key": "dir"}]
    failed = {f["name"]: f["error"] for f in data["failed"]}
    assert "misspelled" not in plugins
    assert "'misspelled'" in failed["misspelled"] and "'cosmos_routing_mode'" in failed["misspelled"]
    human = run_in(tmp_path, installed_drop, "plugins").stdout
    assert "misspelled" in human and "FAILED" in human and "cosmos_routing_mode" in human


def test_a_third_party_reloader_reads_its_setting_from_env_and_cosmos_toml(installed_drop, tmp_path) -> None:
    store = f"sqlite://{tmp_path}/s.db"
    args = ("watch", "--once", "--events", "payload", "--payload", str(SEED), "--reloader", "drop", "--store", store)

    from_env = run_in(tmp_path, {**installed_drop, "COSMOS_DROP_DIR": str(tmp_path / "env")}, *args)
    assert from_env.returncode == 0, from_env.stderr
    assert "backend be_app1" in (tmp_path / "env" / "haproxy.cfg").read_text()

    (tmp_path / "cosmos.toml").write_text(f'[plugins.drop]\ndir = "{tmp_path / "table"}"\n')
    from_table = run_in(tmp_path, installed_drop, *args)
    assert from_table.returncode == 0, from_table.stderr
    assert "backend be_app1" in (tmp_path / "table" / "haproxy.cfg").read_text()

    (tmp_path / "cosmos.toml").write_text(f'drop_dir = "{tmp_path / "top"}"\n')
    env_wins = run_in(tmp_path, {**installed_drop, "COSMOS_DROP_DIR": str(tmp_path / "env2")}, *args)
    assert env_wins.returncode == 0, env_wins.stderr
    assert (tmp_path / "env2" / "haproxy.cfg").exists() and not (tmp_path / "top").exists()

    (tmp_path / "cosmos.toml").unlink()
    missing = run_in(tmp_path, installed_drop, *args)
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines()[-1] == (
        "cosmos: error: drop_dir: is required by the drop reloader (got None)")


def test_a_mode_whose_criteria_return_a_line_break_is_refused_and_nothing_is_stored(installed_drop, tmp_path) -> None:
    store = f"sqlite://{tmp_path}/s.db"
    payload = {"table": "t", "candidates": [
        {"serviceName": "evil", "configMode": "smuggle", "predicate": "/x",
         "containers": [{"id": "e1", "ip": "10.0.0.1:80"}]}]}
    result = run_in(tmp_path, installed_drop, "generate", "-", "--store", store, input=json.dumps(payload))
    assert result.returncode == 2
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith("cosmos: error: routing mode 'smuggle' (cosmos_file_drop): criteria('/x') returned a line")
    assert "6.6.6.6" not in result.stdout
    assert not (tmp_path / "s.db").exists()  # nothing stored: the store was not even created
    status = run_in(tmp_path, installed_drop, "status", "--json", "--store", store)
    assert status.returncode == 2 and "no such SQLite file" in status.stderr, status.stderr
