"""Metrics end to end: `cosmos watch --metrics-port` and HAProxy's own exporter (`--stats-bind`), real Docker.

Both endpoints are scraped with a real HTTP client and parsed with
prometheus_client's parser; the counters must move with real container events.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from tests.integration.agent.conftest import Agent, Env, url, wait_routed
from tests.support.images import container_ip, http_get, wait_http
from tests.support.prometheus import scrape, value

MakeAgent = Callable[..., Agent]


def test_agent_metrics_move_with_events_and_haproxy_exports_service_and_container_names(
    env: Env, make_agent: MakeAgent
) -> None:
    proxy = env.haproxy()
    agent = make_agent("--metrics-port", "0", "--stats-bind", ":8404")
    port = agent.wait_event("metrics_listening")[0]["port"]
    agent_metrics = f"http://127.0.0.1:{port}/metrics"
    agent.wait_event("reload")  # the start-up sync
    before = scrape(agent_metrics)
    assert value(before, "cosmos_passes_total") >= 1
    assert http_get(f"http://127.0.0.1:{port}/healthz").status == 200

    web = env.backend("web", service="web", predicate="web.test", port="8080")
    wait_routed(url(proxy), "web.test")
    agent.wait_event("reload", count=2)
    after = scrape(agent_metrics)
    assert value(after, "cosmos_passes_total") > value(before, "cosmos_passes_total")
    assert value(after, "cosmos_reloads_total", result="reloaded") >= 2
    assert value(after, "cosmos_event_to_routable_seconds_count") > value(before, "cosmos_event_to_routable_seconds_count")
    assert value(after, "cosmos_reconcile_duration_seconds_count") >= 2
    assert value(after, "cosmos_reload_duration_seconds_count") >= 2
    assert value(after, "cosmos_store_requests_total", operation="apply") >= 2
    assert value(after, "cosmos_store_requests_total", operation="ping") == 1
    assert value(after, "cosmos_store_errors_total", operation="load") == 0
    assert value(after, "cosmos_services", table="default") == 1
    assert value(after, "cosmos_containers", table="default") == 1
    assert value(after, "cosmos_pass_failures_total", kind="reload") == 0

    # HAProxy's own exporter, on the stats frontend inside the HAProxy container.
    for _ in range(3):
        assert http_get(url(proxy), {"Host": "web.test"}).status == 200
    exported = scrape(f"http://{container_ip(proxy)}:8404/metrics")
    short_id = web.id[:12]
    assert value(exported, "haproxy_server_status", proxy="be_web", server=short_id, state="UP") == 1
    assert value(exported, "haproxy_backend_http_responses_total", proxy="be_web", code="2xx") >= 3

    # A second container of the same service takes a spare slot through the runtime API: no reload.
    web2 = env.backend("web2", service="web", predicate="web.test", port="8080")
    agent.wait_event("runtime_applied")
    assert value(scrape(agent_metrics), "cosmos_runtime_api_updates_total") >= 2  # addr + state ready

    web2.stop(timeout=1)
    web.stop(timeout=1)
    wait_http(url(proxy), headers={"Host": "web.test"}, expect_status=404)
    deadline = time.monotonic() + 15  # the pass is recorded just after HAProxy reloads
    while value(stopped := scrape(agent_metrics), "cosmos_services", table="default") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert value(stopped, "cosmos_containers", table="default") == 0
    assert value(stopped, "cosmos_services", table="default") == 0
    assert value(stopped, "cosmos_event_to_routable_seconds_count") > value(after, "cosmos_event_to_routable_seconds_count")
    assert agent.stop() == 0


def test_a_stopped_services_grace_answers_503_then_the_agent_drops_it(env: Env, make_agent: MakeAgent) -> None:
    proxy = env.haproxy()
    agent = make_agent()
    web = env.backend("web", service="web", predicate="web.test", port="8080", grace="6", weight="50")
    wait_routed(url(proxy), "web.test")
    web.stop(timeout=1)
    # A request sent before the reload may wait up to 2 s on the stopped container's address: 6 s of grace
    # leave room to see the 503.
    down = wait_http(url(proxy), headers={"Host": "web.test"}, expect_status=503)
    assert "web is down" in down.body
    agent.wait_event("grace_pass", timeout=15)  # no Docker event marks the end of the grace
    gone = wait_http(url(proxy), headers={"Host": "web.test"}, expect_status=404)
    assert "no service matches" in gone.body
    assert agent.stop() == 0
