"""Issue 11 end to end: churn through the runtime API with no reload, rollouts with no failed request.

HAProxy reloads are counted by its worker generations: the master logs
"Loading success" once at start and once per reload.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Callable

import pytest

from tests.integration.agent.conftest import Agent, Env, url, wait_routed
from tests.support.images import http_get

MakeAgent = Callable[..., Agent]


def generations(proxy) -> int:
    return proxy.logs().decode(errors="replace").count("Loading success")


def served(address: str, host: str, times: int = 12) -> set[str]:
    """Bodies of ``times`` requests (a failed one counts as "error")."""
    bodies = set()
    for _ in range(times):
        try:
            bodies.add(http_get(address, {"Host": host}, timeout=10).body)
        except OSError as exc:
            bodies.add(f"error {exc}")
    return bodies


def wait_served(address: str, host: str, expect: set[str], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while (seen := served(address, host)) != expect:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{host}: served {seen}, expected {expect}")
        time.sleep(0.05)


def test_churn_of_existing_services_needs_no_reload_and_a_new_service_does(env: Env, make_agent: MakeAgent) -> None:
    proxy = env.haproxy()
    first = env.backend("web0", service="web", predicate="web.test", port="8080")
    agent = make_agent()
    wait_routed(url(proxy), "web.test", expect=f"{env.prefix}-web0\n", timeout=60)
    agent.wait_event("reload")
    time.sleep(0.5)
    before = generations(proxy)

    old = first
    for index in range(1, 5):  # replace the one container four times: add, then remove
        new = env.backend(f"web{index}", service="web", predicate="web.test", port="8080")
        wait_served(url(proxy), "web.test", {f"{env.prefix}-web{index - 1}\n", f"{env.prefix}-web{index}\n"})
        old.remove(force=True)
        wait_served(url(proxy), "web.test", {f"{env.prefix}-web{index}\n"})
        old = new

    assert generations(proxy) == before  # no HAProxy reload for any of it
    assert len(agent.events("runtime_applied")) >= 8
    assert agent.events("pass_failed") == []

    env.backend("shop", service="shop", predicate="shop.test", port="8080")  # structural: a new backend
    assert wait_routed(url(proxy), "shop.test") == f"{env.prefix}-shop\n"
    assert generations(proxy) == before + 1
    wait_served(url(proxy), "web.test", {f"{env.prefix}-web4\n"})  # the reload kept the runtime's truth


def parse_wrk(text: str) -> dict[str, int]:
    """Requests, socket errors and non-2xx/3xx responses from wrk's report."""
    requests = re.search(r"(\d+) requests in", text)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    return {
        "requests": int(requests.group(1)) if requests else 0,
        "socket_errors": sum(map(int, errors.groups())) if errors else 0,
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
    }


def start_wrk(address: str, host: str, close: bool) -> subprocess.Popen[str]:
    wrk = shutil.which("wrk")
    if wrk is None:
        pytest.fail("wrk is not installed (scripts/install-test-deps.sh installs it)")
    headers = ["-H", f"Host: {host}"] + (["-H", "Connection: close"] if close else [])
    return subprocess.Popen([wrk, "-t1", "-c4", "-d300s", "--timeout", "10s", *headers, address],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def stop_wrk(proc: subprocess.Popen[str]) -> dict[str, int]:
    import signal

    proc.send_signal(signal.SIGINT)  # wrk stops and prints its report
    out, _ = proc.communicate(timeout=30)
    counts = parse_wrk(out)
    assert counts["requests"] > 0, out
    return counts


@pytest.mark.parametrize("how", ["stop", "kill"])
def test_rolling_replacement_under_load_fails_no_request(env: Env, make_agent: MakeAgent, how: str) -> None:
    """Three containers replaced one at a time (start new, wait until routed, stop an old one),
    ten full rollouts with `docker stop` (three with `docker kill`), under keep-alive and
    non-keep-alive load at once: 0 failed and 0 non-2xx requests."""
    proxy = env.haproxy()
    live = [env.backend(f"r0-{i}", service="roll", predicate="roll.test", port="8080") for i in range(3)]
    agent = make_agent()
    address = url(proxy)
    wait_served(address, "roll.test", {f"{env.prefix}-r0-{i}\n" for i in range(3)}, timeout=60)
    loads = [start_wrk(address, "roll.test", close=False), start_wrk(address, "roll.test", close=True)]
    rollouts = 10 if how == "stop" else 3
    from concurrent.futures import ThreadPoolExecutor

    stopping = ThreadPoolExecutor(4)  # `docker stop` waits up to 2 s: let the script go on meanwhile

    def retire(old) -> None:
        old.stop(timeout=2)  # SIGTERM (the agent drains it at once), SIGKILL 2 s later
        old.remove(force=True)

    try:
        time.sleep(1.0)
        for rollout in range(1, rollouts + 1):
            for slot in range(3):
                new = env.backend(f"r{rollout}-{slot}", service="roll", predicate="roll.test", port="8080")
                wait_routed(address, "roll.test", expect=f"{env.prefix}-r{rollout}-{slot}\n", timeout=30)
                old = live[slot]
                if how == "stop":
                    stopping.submit(retire, old)
                else:
                    old.kill()
                    old.remove(force=True)
                live[slot] = new
        stopping.shutdown(wait=True)
    finally:
        results = [stop_wrk(load) for load in loads]
        print(f"rollouts={rollouts} how={how} keep-alive={results[0]} close={results[1]}")
    # docker stop: none may fail.  docker kill (no grace): only requests already in flight on the
    # killed container may (at most one per wrk connection per kill); retry-on saves most of them.
    allowed = 0 if how == "stop" else rollouts * 3 * 4
    for counts in results:
        assert counts["socket_errors"] + counts["non_2xx"] <= allowed, counts
    assert agent.events("pass_failed") == []
