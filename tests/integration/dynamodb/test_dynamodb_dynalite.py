"""The dynamodb store against a real DynamoDB-protocol server (dynalite), through real processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from cosmos_storage_dynamodb.store import DynamoDBStore, Location

from cosmos_core.contracts import StoreURL
from cosmos_core.model import Container, Service
from cosmos_core.testing.store_contract import write
from tests.support.dynalite import Dynalite

COSMOS = str(Path(sys.executable).with_name("cosmos"))
SEED = Path(__file__).parents[3] / "examples" / "seed-payload.json"
RUNNERS = 8
STARTUP_S = 3.0


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def process_env(dynalite: Dynalite) -> dict[str, str]:
    """This process's environment pointed at dynalite, JSON logs, no stray COSMOS_/AWS_ settings."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("COSMOS_", "AWS_"))}
    return keep | dynalite.env | {"COSMOS_LOG_FORMAT": "json", "AWS_EC2_METADATA_DISABLED": "true"}


def cosmos(env: dict[str, str], *args: str, payload: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [COSMOS, *args], input=payload, capture_output=True, text=True, env=env, timeout=120, check=False
    )


def log_events(stderr: str, event: str) -> list[dict[str, Any]]:
    records = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    return [r for r in records if r.get("event") == event]


def payload(table: str, mine: int) -> str:
    """Runner ``mine`` adds its own container; the running list holds every runner's container."""
    running = [{"serviceName": "shared", "id": f"c{i}", "ip": f"10.9.0.{i + 1}:8080"} for i in range(RUNNERS)]
    candidate = {
        "serviceName": "shared", "configMode": "host", "predicate": "shared.example.com",
        "containers": [{"id": f"c{mine}", "ip": f"10.9.0.{mine + 1}:8080"}],
    }
    return json.dumps({"tableName": table, "runningServices": running, "candidateServices": [candidate]})


@pytest.mark.parametrize("bare", [False, True], ids=["dynamodb-TABLE", "dynamodb-bare"])
def test_parallel_generate_processes_all_land_on_one_table(dynalite: Dynalite, bare: bool) -> None:
    """>= 8 processes at once on a table that does not exist yet: concurrent creators and writers."""
    env = process_env(dynalite) | {"COSMOS_LOG_LEVEL": "debug"}
    namespace = unique("ns")
    store = "dynamodb://" if bare else f"dynamodb://{unique('cosmos-par')}"
    processes = [
        subprocess.Popen(
            [COSMOS, "generate", "--store", store, "-"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, env=env,
        )
        for _ in range(RUNNERS)
    ]
    time.sleep(STARTUP_S)  # let every process import and block on stdin, so their loads overlap
    for i, process in enumerate(processes):
        process.stdin.write(payload(namespace, i))
    for process in processes:
        process.stdin.close()
    outputs = [(p.stdout.read(), p.stderr.read()) for p in processes]
    for process in processes:
        process.wait(timeout=120)
    for process, (_, stderr) in zip(processes, outputs):
        assert process.returncode == 0, stderr
    for i, (stdout, _) in enumerate(outputs):
        assert f"10.9.0.{i + 1}:8080" in stdout  # each runner's config serves what it added

    status = cosmos(env | {"COSMOS_LOG_LEVEL": "error"}, "status", "--store", store, "--table", namespace, "--json")
    assert status.returncode == 0, status.stderr
    (shared,) = json.loads(status.stdout)["tables"][namespace]
    assert [c["id"] for c in shared["containers"]] == [f"c{i}" for i in range(RUNNERS)]
    attempts = [log_events(stderr, "reconciled")[0]["attempts"] for _, stderr in outputs]
    print("attempts per runner:", attempts)  # > 1 where a runner lost the lock, re-read and retried
    creators = [len(log_events(stderr, "table_created")) for _, stderr in outputs]
    waiters = [len(log_events(stderr, "table_being_created_elsewhere")) for _, stderr in outputs]
    assert sum(creators) == 1, creators  # exactly one process created the table
    print("table created by 1 runner; runners that found it being created:", sum(waiters))


def test_status_works_like_sqlite(dynalite: Dynalite, tmp_path: Path) -> None:
    env = process_env(dynalite) | {"COSMOS_LOG_LEVEL": "error"}
    table = unique("cosmos-status")
    sqlite = f"sqlite:///{tmp_path / 'state.db'}"
    for store in (f"dynamodb://{table}", sqlite):
        assert cosmos(env, "generate", "--store", store, str(SEED)).returncode == 0
    on_dynamodb = cosmos(env, "status", "--store", f"dynamodb://{table}")
    on_sqlite = cosmos(env, "status", "--store", sqlite)
    assert on_dynamodb.returncode == on_sqlite.returncode == 0
    assert on_dynamodb.stdout.splitlines()[0] == f"store: dynamodb://{table}"
    assert on_dynamodb.stdout.splitlines()[1:] == on_sqlite.stdout.splitlines()[1:]
    assert "table astro: 2 service(s)" in on_dynamodb.stdout


def test_requests_per_cli_event(dynalite: Dynalite) -> None:
    """What one ``cosmos generate`` process asks of DynamoDB, from the store's own call counter."""
    env = process_env(dynalite) | {"COSMOS_LOG_LEVEL": "debug"}
    store = f"dynamodb://{unique('cosmos-req')}"
    seed = SEED.read_text()

    def calls(text: str) -> dict[str, int]:
        result = cosmos(env, "generate", "--store", store, "-", payload=text)
        assert result.returncode == 0, result.stderr
        return log_events(result.stderr, "dynamodb_requests")[0]["calls"]

    first = calls(seed)
    # 2 service items, then 3 container items: one BatchWriteItem per phase
    assert first == {"BatchWriteItem": 2, "CreateTable": 1, "DescribeTable": 1, "Query": 1, "UpdateItem": 2}
    second = calls(seed)  # the seed's running list adds jk3243j54jl to app1: one item plus the lock
    assert second == {"BatchWriteItem": 1, "Query": 1, "UpdateItem": 1}
    assert calls(seed) == {"Query": 1}  # no change: one read, no write


def test_query_follows_1_mb_pages(dynalite_env: dict[str, str]) -> None:
    store = DynamoDBStore(Location.parse(StoreURL.parse(f"dynamodb://{unique('cosmos-pages')}")))
    services = {
        f"s{s:04d}": Service(f"s{s:04d}", "host", f"s{s}.example.com", None, 80, tuple(
            Container(f"{s:04d}-{c}-" + "x" * 110, "10.0.0.1") for c in range(6)
        ))
        for s in range(1200)
    }
    write(store, "big", services)
    store.calls.clear()
    assert store.load("big").services == services
    assert store.calls["Query"] >= 2
    store.close()


def test_orphan_container_items_are_skipped_not_fatal(dynalite_env: dict[str, str]) -> None:
    """A container item without its service item (concurrent delete + add) never breaks a load."""
    from cosmos_storage_dynamodb import layout

    name = unique("cosmos-orphan")
    store = DynamoDBStore(Location.parse(StoreURL.parse(f"dynamodb://{name}")))
    write(store, "ns", {"a": Service("a", "host", "a.example.com", None, 80, (Container("1", "10.0.0.1"),))})
    orphan = layout.container_item("ns", "ghost", Container("9", "10.0.0.9", 80), 1)
    store.client.put_item(TableName=name, Item=orphan)
    state = store.load("ns")
    assert list(state.services) == ["a"] and [c.id for c in state.services["a"].containers] == ["1"]
    store.close()
