"""``cosmos serve`` GET /metrics: Prometheus text, counters that move with real requests, behind the token."""

from __future__ import annotations

from typing import Any

from tests.integration.serve.conftest import Serve
from tests.integration.serve.helpers import post_json, request
from tests.support import prometheus
from tests.support.prometheus import Samples, value

JSON = {"Content-Type": "application/json"}


def scrape(url: str, token: str) -> Samples:
    return prometheus.scrape(url + "/metrics", {"Authorization": f"Bearer {token}"})


def test_metrics_count_passes_failures_store_calls_and_state(serve: Serve, seed: dict[str, Any]) -> None:
    server = serve(COSMOS_API_TOKEN="t0ken")
    assert request(server.url, "GET", "/metrics").status == 401  # the token guards /metrics too
    before = scrape(server.url, "t0ken")
    assert value(before, "cosmos_passes_total") == 0

    assert post_json(server.url, seed, token="t0ken").status == 200
    assert post_json(server.url, {"table": "astro", "candidates": [{"serviceName": "bad name"}]},
                     token="t0ken").status == 400
    assert post_json(server.url, {"table": "astro", "running": [
        {"serviceName": "app1", "id": "a23nj53h3j4", "ip": "192.168.1.9:80"}]}, token="t0ken").status == 200

    after = scrape(server.url, "t0ken")
    assert value(after, "cosmos_passes_total") == 3
    assert value(after, "cosmos_pass_failures_total", kind="invalid_input") == 1
    assert value(after, "cosmos_pass_failures_total", kind="store") == 0
    assert value(after, "cosmos_reconcile_duration_seconds_count") == 2
    assert value(after, "cosmos_store_requests_total", operation="load") >= 2
    assert value(after, "cosmos_store_requests_total", operation="apply") >= 2
    assert value(after, "cosmos_store_errors_total", operation="apply") == 0
    # The second request keeps only app1 with its one running container.
    assert value(after, "cosmos_services", table="astro") == 1
    assert value(after, "cosmos_containers", table="astro") == 1
