"""Sticky sessions across a reload, real dockerd and HAProxy: the cookie a runtime-added server gave (a container
that joined through the runtime API, in a spare slot) still reaches that container after a reload, as does the
cookie of a server the config named from the start."""

from __future__ import annotations

import time
from collections.abc import Callable

from tests.integration.agent.conftest import Agent, Env, url, wait_routed
from tests.support.images import http_get

MakeAgent = Callable[..., Agent]
HOST = {"Host": "app.test"}


def cookie_of(address: str, body: str, timeout: float = 20.0) -> str:
    """The sticky cookie a response from the container answering ``body`` sets (``SRV=<server>~<app value>``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = http_get(address, HOST)
        if response.status == 200 and response.body == body:
            return response.headers["Set-Cookie"].split(";")[0]
        time.sleep(0.02)
    raise TimeoutError(f"{body!r} never answered")


def pinned(address: str, cookie: str, times: int = 20) -> set[str]:
    return {http_get(address, {**HOST, "Cookie": cookie}).body for _ in range(times)}


def test_a_cookie_keeps_meaning_the_same_container_after_a_reload(env: Env, make_agent: MakeAgent) -> None:
    proxy = env.haproxy()
    env.backend("app0", service="app", predicate="app.test", port="8080", cookie="SRV")
    agent = make_agent()
    sticky = url(proxy, "/cgi-bin/sticky")
    wait_routed(sticky, "app.test", expect=f"{env.prefix}-app0\n", timeout=60)

    env.backend("app1", service="app", predicate="app.test", port="8080", cookie="SRV")  # joins at run time
    agent.wait_event("runtime_applied")
    configured = cookie_of(sticky, f"{env.prefix}-app0\n")
    added = cookie_of(sticky, f"{env.prefix}-app1\n")
    assert configured != added and added.endswith(f"~{env.prefix}-app1-sess")
    assert pinned(sticky, added) == {f"{env.prefix}-app1\n"}
    assert pinned(sticky, configured) == {f"{env.prefix}-app0\n"}

    reloads = len(agent.events("reload"))
    env.backend("shop", service="shop", predicate="shop.test", port="8080")  # a new service: a reload
    agent.wait_event("reload", reloads + 1)
    wait_routed(url(proxy), "shop.test", expect=f"{env.prefix}-shop\n")

    assert pinned(sticky, added) == {f"{env.prefix}-app1\n"}  # the runtime-added server's cookie survived the reload
    assert pinned(sticky, configured) == {f"{env.prefix}-app0\n"}
    assert cookie_of(sticky, f"{env.prefix}-app1\n") == added  # and new sessions get the same value
    assert agent.events("pass_failed") == []
