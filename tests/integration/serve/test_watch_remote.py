"""``cosmos watch`` with the ``remote`` emitter against a real ``cosmos serve``, real Docker Engine.

The agent (the agent tests' fixtures: its own HAProxy container, containers
named with a per-test prefix) sends each snapshot to the server and loads the
config it gets back; the state lives on the server.  With the server down the
pass fails, HAProxy keeps the last good config, and the agent catches up on
its next event once the server is back.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from cosmos_core.server.testing import start_serve
from tests.integration.agent.conftest import (  # noqa: F401 - fixtures
    Agent,
    Env,
    env,
    make_agent,
    url,
    wait_routed,
)
from tests.integration.serve.helpers import request
from tests.integration.serve.test_http import cosmos
from tests.support.images import http_get

MakeAgent = Callable[..., Agent]
TOKEN = "watch-remote-token"
TABLE = "remote-e2e"


def write_settings(directory: Path, remote_url: str) -> None:
    """``cosmos.toml`` in the agent's working directory (the agent fixture drops COSMOS_* variables)."""
    (directory / "cosmos.toml").write_text(
        f'emitter = "remote"\nremote_url = "{remote_url}"\napi_token = "{TOKEN}"\ntable = "{TABLE}"\n'
        "remote_timeout = 2.0\nremote_retries = 1\n\n[plugins.remote]\nbackoff = 0.05\n"
    )


def stored_containers(server_url: str) -> dict[str, list[str]]:
    answer = request(server_url, "GET", "/status", headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status == 200
    services = answer.json()["tables"].get(TABLE, [])
    return {s["name"]: [c["id"] for c in s["containers"]] for s in services}


def test_watch_with_the_remote_emitter(env: Env, make_agent: MakeAgent, tmp_path: Path) -> None:  # noqa: F811
    server_store = f"sqlite://{tmp_path / 'server.db'}"
    server = start_serve(["--store", server_store], env={"COSMOS_API_TOKEN": TOKEN}, log_path=tmp_path / "serve1.log")
    try:
        write_settings(tmp_path, server.url)
        proxy = env.haproxy()
        web = env.backend("web", service="web", predicate="web.test", port="8080")
        agent: Agent = make_agent()

        # The config comes from the server, which holds the state.
        assert wait_routed(url(proxy), "web.test") == f"{env.prefix}-web\n"
        assert stored_containers(server.url) == {"web": [web.id[:12]]}
        remote_passes = agent.events("remote_generated")
        assert remote_passes and all(e["table"] == TABLE for e in remote_passes)
        assert agent.events("reconciled") == []  # nothing reconciled or stored by the agent itself
        assert not (tmp_path / "state.db").exists()  # the agent never even opened a store of its own
        local = cosmos("status", "--json", "--store", f"sqlite://{tmp_path}/state.db")
        assert local.returncode == 2 and "no such SQLite file" in local.stderr, local.stderr  # and status creates none
        assert not (tmp_path / "state.db").exists()

        # The server goes away: the pass fails and HAProxy keeps the last good config.
        server.stop()
        failures_before = len(agent.events("pass_failed"))
        env.backend("web2", service="web", predicate="web.test", port="8080")
        failed = agent.wait_event("pass_failed", count=failures_before + 1)[-1]
        assert "unavailable after 2 attempt(s)" in failed["error"]
        bodies = {http_get(url(proxy), {"Host": "web.test"}).body for _ in range(10)}
        assert bodies == {f"{env.prefix}-web\n"}
        assert agent.proc is not None and agent.proc.poll() is None

        # Back on the same port and store: the agent retries the failed pass and catches
        # up without any new container event.
        server = start_serve(["--port", str(server.port), "--store", server_store],
                             env={"COSMOS_API_TOKEN": TOKEN}, log_path=tmp_path / "serve2.log")
        wait_routed(url(proxy), "web.test", expect=f"{env.prefix}-web2\n", timeout=40.0)
        assert agent.events("pass_retry")
        # And the next event still goes through as usual.
        env.backend("web3", service="web", predicate="web.test", port="8080")
        expected = {f"{env.prefix}-{name}\n" for name in ("web", "web2", "web3")}
        wait_routed(url(proxy), "web.test", expect=f"{env.prefix}-web3\n")
        bodies = {http_get(url(proxy), {"Host": "web.test"}).body for _ in range(30)}
        assert bodies == expected
        assert len(stored_containers(server.url)["web"]) == 3
        assert agent.stop() == 0
    finally:
        server.stop()
