"""No lost updates: 8 hosts report concurrently for a minute; the table ends as the union of their last truths."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

from tests.integration.agent.conftest import ROOT
from tests.support.dynalite import Dynalite

HOSTS = 8
#: Seconds of churn (the issue asks for a minute; COSMOS_FLEET_CHURN_S shortens local runs).
SECONDS = float(os.environ.get("COSMOS_FLEET_CHURN_S", "60"))


def test_concurrent_hosts_lose_no_update(dynalite: Dynalite, tmp_path: Path) -> None:
    table = f"churn-{uuid.uuid4().hex[:8]}"
    store = f"dynamodb://{table}?endpoint={dynalite.endpoint}"
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("COSMOS_", "AWS_"))}
    environ |= dynalite.env | {"PYTHONPATH": str(ROOT), "COSMOS_LOG_LEVEL": "warning"}
    procs = [
        subprocess.Popen([sys.executable, "-m", "tests.integration.fleet.churn_worker", f"h{i}", str(SECONDS),
                          str(tmp_path / f"h{i}.json"), store], env=environ, cwd=ROOT,
                         stdout=subprocess.DEVNULL, stderr=(tmp_path / f"h{i}.log").open("wb"))
        for i in range(HOSTS)
    ]
    for proc in procs:
        assert proc.wait(SECONDS + 300) == 0, (tmp_path / "h0.log").read_text()[-3000:]
    results = [json.loads((tmp_path / f"h{i}.json").read_text()) for i in range(HOSTS)]
    assert all(r["passes"] >= 2 for r in results), results

    expected_containers = {}
    for i, result in enumerate(results):
        for item in result["last"]["running"]:
            key = f"ctr#{item['serviceName']}#{item['id']}"
            expected_containers[key] = {"host": item["ip"], "port": "8080", "host_id": f"h{i}"}
    expected_services = {f"svc#{k.split('#')[1]}" for k in expected_containers}

    client = dynalite.client()
    items, kwargs = [], {"TableName": table, "KeyConditionExpression": "pk = :p",
                         "ExpressionAttributeValues": {":p": {"S": "fleet"}}, "ConsistentRead": True}
    while True:
        page = client.query(**kwargs)
        items += page["Items"]
        if "LastEvaluatedKey" not in page:
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    stored_containers = {
        i["sk"]["S"]: {"host": i["host"]["S"], "port": i["port"]["N"], "host_id": i["host_id"]["S"]}
        for i in items if i["sk"]["S"].startswith("ctr#")
    }
    stored_services = {i["sk"]["S"] for i in items if i["sk"]["S"].startswith("svc#")}
    for key, expected in expected_containers.items():  # item by item, for a readable failure
        assert stored_containers.get(key) == expected, key
    assert set(stored_containers) == set(expected_containers)
    assert stored_services == expected_services
