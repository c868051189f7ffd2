"""A real ``cosmos serve`` expires hosts that stop posting: their containers leave the configs it renders."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable
from pathlib import Path

from tests.integration.agent.conftest import (  # noqa: F401 - fixtures
    Agent,
    Env,
    env,
    make_agent,
    url,
    wait_routed,
)
from tests.integration.serve.conftest import Serve
from tests.integration.serve.helpers import request
from tests.support.net import wait_until

JSON = {"Content-Type": "application/json"}
LEASE = 2.0


def report(host: str, *ids: str) -> dict:
    containers = [{"id": i, "ip": f"10.0.0.{n + 1}", "port": 8080} for n, i in enumerate(ids)]
    return {"table": "t", "host": host, "running": [{"serviceName": "web", **c} for c in containers],
            "candidates": [{"serviceName": "web", "configMode": "host", "predicate": "web.test",
                            "containers": containers}]}


def post(url: str, data: dict) -> str:
    answer = request(url, "POST", "/generate", json.dumps(data).encode(), JSON)
    assert answer.status == 200, answer.text
    return answer.text


def test_a_silent_host_leaves_the_config_and_returns_when_it_posts(serve: Serve) -> None:
    server = serve(COSMOS_HEARTBEAT="0.5", COSMOS_LEASE=str(LEASE))
    post(server.url, report("a", "a1"))
    assert "server a1 " in post(server.url, report("b", "b1"))
    # a posts no more: within its lease (on the server's clock) it leaves b's answers
    wait_until(lambda: "server a1 " not in post(server.url, report("b", "b1")), "a expired")
    status = request(server.url, "GET", "/status").json()
    assert sorted(c["id"] for c in status["tables"]["t"][0]["containers"]) == ["a1", "b1"]  # kept stored
    config = post(server.url, report("a", "a1"))
    assert "server a1 " in config and "server b1 " in config


def test_a_remote_agent_keeps_itself_alive_by_posting_every_heartbeat(
    serve: Serve, env: Env, make_agent: Callable[..., Agent], tmp_path: Path  # noqa: F811
) -> None:
    """`cosmos watch` with the remote emitter (real Docker Engine): its last snapshot is posted again
    every heartbeat, so the server keeps it alive with no Docker event; killed, it expires."""
    server = serve(COSMOS_HEARTBEAT="0.5", COSMOS_LEASE=str(LEASE))
    (tmp_path / "cosmos.toml").write_text(f'emitter = "remote"\nremote_url = "{server.url}"\ntable = "t"\n')
    proxy = env.haproxy()
    web = env.backend("web", service="web", predicate="web.test", port="8080")
    agent = make_agent("--host-id", "a", "--heartbeat", "0.5", "--lease", str(LEASE))
    wait_routed(url(proxy), "web.test")
    mine = f"server {web.id[:12]} "
    assert mine in post(server.url, report("b", "b1"))
    started = time.monotonic()
    while time.monotonic() - started < 3 * LEASE:  # three leases without a Docker event: still alive
        assert mine in post(server.url, report("b", "b1")), agent.log_path.read_text()[-2000:]
        time.sleep(0.2)
    assert len(agent.events("remote_generated")) >= 3  # the re-posts (config unchanged: no reload)
    agent.stop(signal.SIGKILL)
    wait_until(lambda: mine not in post(server.url, report("b", "b1")), "a expired after the kill")
