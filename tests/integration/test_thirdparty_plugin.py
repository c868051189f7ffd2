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


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict[str, str]:
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
         "--disable-pip-version-check", "--target", str(target), str(FIXTURE)],
        check=True, capture_output=True,
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("COSMOS_")}
    env["PYTHONPATH"] = str(target)
    return env


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
    result = run(installed, "generate", "-", "--store", f"sqlite://{tmp_path}/s.db", input=json.dumps(payload))
    assert result.returncode == 0, result.stderr
    frontend = [line.strip() for line in result.stdout.splitlines() if line.startswith("    acl ")]
    assert frontend == ["acl health path /healthz", "acl web path_beg /"]  # precedence 5 sorts first
    cfg = tmp_path / "h.cfg"
    cfg.write_text(result.stdout)
    check = subprocess.run([haproxy_bin, "-c", "-f", str(cfg)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


def test_without_the_plugin_the_mode_is_unknown(tmp_path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COSMOS_")}
    payload = {"candidates": [{"serviceName": "h", "configMode": "exact", "predicate": "/x",
                               "containers": [{"id": "h1", "ip": "10.0.0.1:80"}]}]}
    result = run(env, "generate", "-", "--store", f"sqlite://{tmp_path}/s.db", input=json.dumps(payload))
    assert result.returncode == 2
    assert "routing mode 'exact' not recognised; installed: host, path; is the plugin installed?" in result.stderr
