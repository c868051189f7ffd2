"""``cosmos serve`` on the DynamoDB store (dynalite): two servers, one table, no lost update.

Inside one server the per-table lock serialises requests; across servers only
the store's optimistic locking (a conditional write on the table's revision
item) stands between concurrent passes.  Eight simultaneous POSTs, split over
two servers, each add a container to one service: all eight must land.
"""

from __future__ import annotations

import uuid
from typing import Any

from tests.integration.serve.conftest import Serve
from tests.integration.serve.helpers import Answer, post_together, request


def test_two_servers_on_one_dynamodb_table_lose_no_update(serve: Serve, dynalite_env: dict[str, str]) -> None:
    table = f"cosmos-serve-{uuid.uuid4().hex[:8]}"
    store = f"dynamodb://{table}"
    servers = [serve(store=store, **dynalite_env), serve(store=store, **dynalite_env)]
    for server in servers:
        assert request(server.url, "GET", "/healthz").status == 200

    ids = [f"d{i}" for i in range(8)]
    running = [{"serviceName": "web", "id": cid, "ip": f"10.2.0.{i + 1}:8080"} for i, cid in enumerate(ids)]
    def payload(i: int) -> dict[str, Any]:
        return {
            "tableName": "shared",
            "runningServices": running,
            "candidateServices": [{"serviceName": "web", "configMode": "host", "predicate": "web.example.com",
                                   "containers": [running[i]]}],
        }

    answers = post_together([(servers[i % 2].url, payload(i)) for i in range(len(ids))], timeout=60)

    assert all(isinstance(a, Answer) and a.status == 200 for a in answers), answers
    for server in servers:  # both servers see the same state
        status = request(server.url, "GET", "/status").json()
        assert status["store"] == store
        web = status["tables"]["shared"]
        assert [s["name"] for s in web] == ["web"]
        assert sorted(c["id"] for c in web[0]["containers"]) == ids
    passes = [e for s in servers for e in s.log_events() if e.get("event") == "reconciled"]
    assert len(passes) == 8
