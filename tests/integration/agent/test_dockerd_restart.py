"""Restarting dockerd under a running agent: reconnect with backoff, full resync.

The daemon is a private one (own socket, data root and bridge, ``--live-restore``)
so that restarting it does not disturb the shared engine other tests use.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable

from tests.integration.agent.conftest import Agent, Daemon, Env, url, wait_routed
from tests.support.images import (
    build_backend_image,
    build_haproxy_image,
    http_get,
    wait_http,
)

NO_MATCH = "no service matches this request"


def test_agent_survives_a_dockerd_restart_and_resyncs_missed_changes(
    second_dockerd: Daemon, make_agent: Callable[..., Agent], env: Env
) -> None:
    client = second_dockerd.client()
    private = Env(client, env.prefix, build_backend_image(client), build_haproxy_image(client))
    proxy = private.haproxy()
    alpha = private.backend("alpha", service="alpha", predicate="alpha.test", port="8080")
    private.backend("beta", service="beta", predicate="beta.test", port="8080")
    agent = make_agent(docker_host=second_dockerd.host)
    wait_routed(url(proxy), "alpha.test")
    wait_routed(url(proxy), "beta.test")
    alpha.reload()
    alpha_pid = alpha.attrs["State"]["Pid"]

    second_dockerd.stop()
    agent.wait_event("docker_unavailable")
    os.kill(alpha_pid, signal.SIGKILL)  # dies while nobody is watching: no event will tell
    second_dockerd.start()
    agent.wait_event("docker_reconnected", timeout=30)

    private.backend("gamma", service="gamma", predicate="gamma.test", port="8080")
    assert wait_routed(url(proxy), "gamma.test") == f"{env.prefix}-gamma\n"
    wait_http(url(proxy), headers={"Host": "alpha.test"}, expect_status=404)
    assert http_get(url(proxy), {"Host": "alpha.test"}).body == NO_MATCH
    assert http_get(url(proxy), {"Host": "beta.test"}).body == f"{env.prefix}-beta\n"
    assert agent.proc is not None and agent.proc.poll() is None
    assert agent.stop() == 0
    client.close()
