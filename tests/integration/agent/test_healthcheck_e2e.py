"""``cosmos.healthcheck=/path`` (+ ``cosmos.healthcheck-interval``) end to end, real dockerd and HAProxy:
a container whose /path fails is sent no traffic until it answers there, whether it joins an existing
service (runtime API, no reload: not a single request) or comes with a new service (a reload: none once
its first check ran)."""

from __future__ import annotations

import time
from collections.abc import Callable

from tests.integration.agent.conftest import Agent, Env, url, wait_routed
from tests.support.images import http_get

MakeAgent = Callable[..., Agent]
CHECK = {"healthcheck": "/ready", "healthcheck-interval": "0.2"}


def bodies(address: str, host: str, seconds: float) -> list[str]:
    """Every answer to requests sent for ``seconds`` (status and body)."""
    seen, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            response = http_get(address, {"Host": host}, timeout=5)
            seen.append(f"{response.status} {response.body}")
        except OSError as exc:
            seen.append(f"error {exc}")
        time.sleep(0.01)
    return seen


def ready(container) -> None:  # type: ignore[no-untyped-def]
    assert container.exec_run(["sh", "-c", "echo ok > /www/ready"]).exit_code == 0


def until_served(address: str, host: str, body: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while f"200 {body}" not in bodies(address, host, 0.3):
        assert time.monotonic() < deadline, f"{host}: {body!r} never served"


def test_a_container_failing_its_healthcheck_gets_no_traffic_until_it_answers(env: Env, make_agent: MakeAgent) -> None:
    proxy = env.haproxy()
    first = env.backend("web1", service="web", predicate="web.test", port="8080", **CHECK)
    ready(first)
    agent = make_agent()
    wait_routed(url(proxy), "web.test", expect=f"{env.prefix}-web1\n", timeout=60)

    late = env.backend("web2", service="web", predicate="web.test", port="8080", **CHECK)  # joins: runtime API
    agent.wait_event("runtime_applied")
    seen = bodies(url(proxy), "web.test", 3.0)  # 15 check intervals
    assert set(seen) == {f"200 {env.prefix}-web1\n"}, sorted(set(seen))
    ready(late)
    until_served(url(proxy), "web.test", f"{env.prefix}-web2\n")

    # A new service whose only container does not answer its check yet: the reload routes nothing to it
    # once its first check ran (HAProxy 2.6 starts a configured server up until then: at most one
    # interval, 0.2 s here, after the new worker starts; README: known limits).
    reloads = len(agent.events("reload"))
    shop = env.backend("shop1", service="shop", predicate="shop.test", port="8080", **CHECK)
    agent.wait_event("reload", reloads + 1)
    time.sleep(0.6)
    seen = bodies(url(proxy), "shop.test", 3.0)
    assert not any(s.startswith("200") for s in seen), sorted(set(seen))
    assert all(s.startswith("503") for s in seen), sorted(set(seen))  # no server up: HAProxy answers 503
    ready(shop)
    until_served(url(proxy), "shop.test", f"{env.prefix}-shop1\n")
    assert agent.events("pass_failed") == []
