"""Issue 11 end to end: arrival patterns the old storm rule handled badly.

No durations are asserted here (those are benchmarks: ``benchmarks/agent_arrivals.py``);
what is asserted is that every container of each pattern becomes routable through the
real HAProxy, that the agent never fails a pass, and that a churning neighbour neither
hides a new service nor leaves a removed one routed.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable

from tests.integration.agent.conftest import Agent, Env, url, wait_routed
from tests.support.images import http_get

MakeAgent = Callable[..., Agent]


def wait_unrouted(address: str, host: str, timeout: float) -> None:
    """Poll until HAProxy stops answering 200 for ``host`` (its fallback answers instead)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if http_get(address, {"Host": host}, timeout=2).status != 200:
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"{host}: still routed {timeout}s after its last container left")


def test_containers_started_a_random_0_1_to_1_s_apart_all_become_routable(env: Env, make_agent: MakeAgent) -> None:
    proxy = env.haproxy()
    agent = make_agent()
    agent.wait_event("agent_started")
    pace = random.Random(11)
    names = [f"arr{index}" for index in range(6)]
    for name in names:
        env.backend(name, service=name, predicate=f"{name}.test", port="8080")
        time.sleep(pace.uniform(0.1, 1.0))
    for name in names:
        assert wait_routed(url(proxy), f"{name}.test", timeout=30) == f"{env.prefix}-{name}\n"
    assert agent.events("pass_failed") == []


def test_new_services_become_routable_while_other_services_churn(env: Env, make_agent: MakeAgent) -> None:
    proxy = env.haproxy()
    agent = make_agent()
    agent.wait_event("agent_started")
    stop = threading.Event()
    churned: list[int] = []
    errors: list[BaseException] = []

    def churn(service: str) -> None:
        try:
            while not stop.is_set():  # started and removed every 0.6 s, as in the issue
                container = env.backend(f"{service}-{len(churned)}", service=service, predicate=f"{service}.test", port="8080")
                stop.wait(0.6)
                container.remove(force=True)
                churned.append(1)
        except BaseException as error:  # noqa: BLE001 - reported by the main thread
            errors.append(error)

    threads = [threading.Thread(target=churn, args=(f"churn{index}",), daemon=True) for index in range(3)]
    for thread in threads:
        thread.start()
    try:
        for index in range(3):
            name = f"fresh{index}"
            env.backend(name, service=name, predicate=f"{name}.test", port="8080")
            assert wait_routed(url(proxy), f"{name}.test", timeout=30) == f"{env.prefix}-{name}\n"
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    assert errors == []
    assert len(churned) >= 6  # the neighbours really churned while the new services arrived
    for index in range(3):  # the last churned container of each neighbour is gone from the config too
        wait_unrouted(url(proxy), f"churn{index}.test", timeout=30)
    for index in range(3):
        assert wait_routed(url(proxy), f"fresh{index}.test", timeout=10) == f"{env.prefix}-fresh{index}\n"
    assert agent.events("pass_failed") == []
