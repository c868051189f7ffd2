"""The dynamodb store on moto: requests per event, locking, faults, throttling, table set-up.

Faults are injected with botocore ``before-send`` hooks registered first, so a
faked HTTP response goes through botocore's real retry logic; everything not
faked reaches moto.
"""

from __future__ import annotations

import json
import threading
import types
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from cosmos_storage_dynamodb.store import DynamoDBStore

from cosmos_core import pipeline
from cosmos_core.errors import ConflictError, StoreError
from cosmos_core.model import Container, RunningContainer, Service, Snapshot
from cosmos_core.reconcile import diff
from cosmos_core.testing.store_contract import runtime_for, write


def svc(name: str, *ids: str, port: int | None = 8080) -> Service:
    return Service(name, "host", f"{name}.example.com", None, port, tuple(Container(i, "10.0.0.1") for i in ids))


def count_calls(store: DynamoDBStore) -> Counter[str]:
    """An independent count of API calls made through ``store``'s client."""
    calls: Counter[str] = Counter()
    store.client.meta.events.register(
        "before-call.dynamodb", lambda model, **_: calls.update([model.name])
    )
    return calls


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any):
        yield self.body


def fake_response(request: Any, status: int, body: dict[str, Any]) -> Any:
    from botocore.awsrequest import AWSResponse

    headers = {"content-type": "application/x-amz-json-1.0"}
    return AWSResponse(request.url, status, headers, _Raw(json.dumps(body).encode()))


def inject(store: DynamoDBStore, operation: str, respond: Callable[[Any, int], Any]) -> list[int]:
    """Call ``respond(request, n)`` before each HTTP attempt of ``operation``; None lets it through."""
    seen: list[int] = []

    def hook(request: Any, **_: Any) -> Any:
        seen.append(len(seen) + 1)
        return respond(request, len(seen))

    store.client.meta.events.register_first(f"before-send.dynamodb.{operation}", hook)
    return seen


THROTTLED = {"__type": "com.amazonaws.dynamodb.v20120810#ThrottlingException", "message": "Rate exceeded"}
SERVER_ERROR = {"__type": "com.amazonaws.dynamodb.v20120810#InternalServerError", "message": "boom"}


@pytest.fixture
def no_backoff_sleep(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """botocore's retry sleeps, recorded instead of slept."""
    import botocore.endpoint

    sleeps: list[float] = []
    monkeypatch.setattr(botocore.endpoint, "time", types.SimpleNamespace(sleep=sleeps.append))
    return sleeps


# ---------------------------------------------------------- requests per event


def test_requests_per_event_as_the_readme_states(open_dynamodb) -> None:
    store = open_dynamodb()
    runtime = runtime_for(store)
    calls = count_calls(store)
    running = tuple(RunningContainer(f"s{i:04d}", Container(f"c{i:04d}", "10.0.0.1")) for i in range(1000))
    candidates = tuple(svc(f"s{i:04d}", f"c{i:04d}") for i in range(1000))

    first = pipeline.generate(runtime, Snapshot("ns", running, candidates))
    # 2,000 items: 1 Query (empty), UpdateItem fails on the missing table, CreateTable,
    # DescribeTable (waiter), UpdateItem again, 2000/25 BatchWriteItem.
    assert calls == {"Query": 1, "UpdateItem": 2, "CreateTable": 1, "DescribeTable": 1, "BatchWriteItem": 80}
    assert (first.applied.written, first.applied.requests) == (2001, 84)

    calls.clear()
    same = pipeline.generate(runtime, Snapshot("ns", running, candidates))
    assert calls == {"Query": 1}  # a no-change event: one read, nothing written
    assert (same.applied.written, same.applied.deleted, same.applied.requests) == (0, 0, 0)

    calls.clear()
    added = running + (RunningContainer("s0007", Container("new", "10.0.0.2")),)
    one = pipeline.generate(runtime, Snapshot("ns", added, ()))
    assert calls == {"Query": 1, "UpdateItem": 1, "BatchWriteItem": 1}
    assert (one.applied.written, one.applied.deleted, one.applied.requests) == (2, 0, 2)
    assert store.requests == sum(store.calls.values()) and store.calls["BatchWriteItem"] == 81


# -------------------------------------------------------------------- locking


def test_stale_base_conflicts_before_writing_anything(open_dynamodb) -> None:
    store, other = open_dynamodb(), open_dynamodb()
    write(store, "ns", {"a": svc("a", "1")})
    stale = store.load("ns")
    write(other, "ns", {"a": svc("a", "1", "2")})
    calls = count_calls(store)
    with pytest.raises(ConflictError):
        store.apply("ns", diff(stale.services, {"a": svc("a", "1", "3")}), stale)
    assert calls == {"UpdateItem": 1}
    assert store.load("ns").services == {"a": svc("a", "1", "2")}


def test_eight_runners_from_one_base_conflict_and_all_land(open_dynamodb) -> None:
    """With the same base for all, exactly one wins each round; the rest re-read and retry."""
    barrier = threading.Barrier(8)
    containers = [Container(f"c{i}", f"10.0.1.{i}", 80) for i in range(8)]
    running = tuple(RunningContainer("s", c) for c in containers)
    write(open_dynamodb(), "ns", {"s": svc("s", port=80)})
    stores = [open_dynamodb() for _ in range(8)]

    def run(i: int) -> int:
        store = stores[i]
        real_load = store.load

        def load(table: str):
            state = real_load(table)
            if store.calls["Query"] == 1:
                barrier.wait(timeout=30)
            return state

        store.load = load  # type: ignore[method-assign]
        candidate = Service("s", "host", "s.example.com", None, 80, (containers[i],))
        return pipeline.generate(runtime_for(store), Snapshot("ns", running, (candidate,))).attempts

    threads_result: list[int] = []
    workers = [threading.Thread(target=lambda i=i: threads_result.append(run(i))) for i in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert min(threads_result) == 1 and sum(threads_result) > 8  # conflicts happened
    assert [c.id for c in open_dynamodb().load("ns").services["s"].containers] == [f"c{i}" for i in range(8)]


# ---------------------------------------------------------------- table set-up


def test_missing_table_loads_empty_and_is_created_on_first_write(open_dynamodb) -> None:
    store = open_dynamodb("dynamodb://cosmos-new")
    assert dict(store.load("ns").services) == {} and store.tables() == []
    write(store, "ns", {"a": svc("a", "1")})
    described = store.client.describe_table(TableName="cosmos-new")["Table"]
    assert described["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert [k["AttributeName"] for k in described["KeySchema"]] == ["pk", "sk"]
    assert store.tables() == ["ns"]


def test_a_concurrent_creator_is_tolerated(open_dynamodb) -> None:
    first, second = open_dynamodb("dynamodb://cosmos-race"), open_dynamodb("dynamodb://cosmos-race")
    first._create_table("cosmos-race")
    calls = count_calls(second)
    second._create_table("cosmos-race")  # ResourceInUseException, then the waiter
    assert calls == {"CreateTable": 1, "DescribeTable": 1}


def test_bare_url_uses_the_payload_table_and_lists_only_cosmos_tables(open_dynamodb) -> None:
    store = open_dynamodb("dynamodb://")
    write(store, "astro", {"a": svc("a", "1")})
    store.client.create_table(
        TableName="unrelated", BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
    )
    assert "astro" in store.client.list_tables()["TableNames"]
    assert store.tables() == ["astro"]


# ---------------------------------------------------------- throttling / 5xx


@pytest.mark.parametrize(("status", "body"), [(400, THROTTLED), (500, SERVER_ERROR)])
def test_throttling_and_5xx_are_retried_with_backoff(open_dynamodb, no_backoff_sleep, status, body) -> None:
    store = open_dynamodb()
    write(store, "ns", {"a": svc("a", "1")})
    seen = inject(store, "Query", lambda request, n: fake_response(request, status, body) if n <= 2 else None)
    calls = count_calls(store)
    assert list(store.load("ns").services) == ["a"]
    assert len(seen) == 3 and calls == {"Query": 1}  # one call, three HTTP attempts
    assert len(no_backoff_sleep) == 2 and all(delay >= 0 for delay in no_backoff_sleep)


def test_throttling_that_persists_is_one_store_error(open_dynamodb, no_backoff_sleep) -> None:
    store = open_dynamodb("dynamodb://cosmos-unit?max_attempts=3")
    seen = inject(store, "Query", lambda request, n: fake_response(request, 400, THROTTLED))
    with pytest.raises(StoreError) as info:
        store.load("ns")
    assert len(seen) == 3
    message = str(info.value)
    assert "ThrottlingException" in message and "'cosmos-unit'" in message and "\n" not in message


def test_unprocessed_items_are_written_again(open_dynamodb) -> None:
    sleeps: list[float] = []
    store = open_dynamodb(sleep=sleeps.append)

    def leave_all_unprocessed(request: Any, n: int) -> Any:
        if n > 1:
            return None
        return fake_response(request, 200, {"UnprocessedItems": json.loads(request.body)["RequestItems"]})

    write(store, "ns", {"warm": svc("warm", "w")})
    seen = inject(store, "BatchWriteItem", leave_all_unprocessed)
    result = write(store, "ns", {"warm": svc("warm", "w"), "a": svc("a", "1", "2")})
    assert len(seen) == 3 and len(sleeps) == 1
    # UpdateItem, the service item's batch and the retry of its unprocessed item, the containers' batch
    assert result.requests == 4
    assert store.load("ns").services["a"] == svc("a", "1", "2")


def test_unprocessed_items_that_persist_are_one_store_error(open_dynamodb) -> None:
    store = open_dynamodb(sleep=lambda _: None)
    write(store, "ns", {"warm": svc("warm", "w")})
    inject(store, "BatchWriteItem", lambda request, n: fake_response(
        request, 200, {"UnprocessedItems": json.loads(request.body)["RequestItems"]}
    ))
    with pytest.raises(StoreError, match="unprocessed after 8 BatchWriteItem rounds"):
        write(store, "ns", {"a": svc("a", "1")})


# ------------------------------------------------------ failure mid-way


def test_failure_midway_keeps_every_running_container_and_the_next_run_repairs(
    open_dynamodb, no_backoff_sleep
) -> None:
    store = open_dynamodb("dynamodb://cosmos-unit?max_attempts=1")
    old = [Container(f"old{i}", "10.0.0.1", 80) for i in range(3)]
    new = [Container(f"new{i:02d}", "10.0.0.2", 80) for i in range(40)]
    runtime = runtime_for(store)
    pipeline.generate(runtime, Snapshot("ns", (), (Service("s", "host", "s.example.com", None, 80, tuple(old)),)))

    # old0 stops, 40 new containers start: 2 put batches, then 1 delete batch.
    running = tuple(RunningContainer("s", c) for c in old[1:] + new)
    fail_second_batch = inject(
        store, "BatchWriteItem", lambda request, n: fake_response(request, 500, SERVER_ERROR) if n == 2 else None
    )
    with pytest.raises(StoreError):
        pipeline.generate(runtime, Snapshot("ns", running, ()))
    assert len(fail_second_batch) == 2
    stored = {c.id for c in store.load("ns").services["s"].containers}
    assert {"old1", "old2"} <= stored and "old0" in stored  # nothing running lost; deletes not reached

    repaired = pipeline.generate(runtime, Snapshot("ns", running, ()))
    assert {c.id for c in store.load("ns").services["s"].containers} == {c.id for c in old[1:] + new}
    assert repaired.applied.deleted == 1


# ------------------------------------------------------ connection errors


def test_unreachable_endpoint_is_one_clear_line(aws_env) -> None:
    from cosmos_storage_dynamodb.store import Location

    from cosmos_core.contracts import StoreURL

    url = "dynamodb://cosmos-unit?endpoint=http://127.0.0.1:9&max_attempts=1"
    store = DynamoDBStore(Location.parse(StoreURL.parse(url)))
    with pytest.raises(StoreError) as info:
        store.load("ns")
    message = str(info.value)
    assert "'cosmos-unit'" in message and "http://127.0.0.1:9" in message
    assert "cannot reach the endpoint" in message and "check AWS_ENDPOINT_URL_DYNAMODB" in message


def test_missing_credentials_is_one_clear_line(aws_env, monkeypatch) -> None:
    from cosmos_storage_dynamodb.store import Location

    from cosmos_core.contracts import StoreURL

    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    store = DynamoDBStore(Location.parse(StoreURL.parse("dynamodb://cosmos-unit?endpoint=http://127.0.0.1:9")))
    with pytest.raises(StoreError) as info:
        store.load("ns")
    assert "no AWS credentials" in str(info.value) and "'cosmos-unit'" in str(info.value)


def test_retry_configuration(open_dynamodb) -> None:
    retries = open_dynamodb("dynamodb://cosmos-unit?max_attempts=7").client.meta.config.retries
    assert retries == {"mode": "standard", "total_max_attempts": 7}


# ------------------------------------------------------------ Query fast path


def test_query_fast_path_hands_over_plain_items_and_leaves_the_rest_to_botocore() -> None:
    from cosmos_storage_dynamodb.store import take_plain_items

    plain = {"Items": [{"sk": {"S": "svc#a"}, "port": {"N": "80"}}], "Count": 1, "LastEvaluatedKey": {"pk": {"S": "n"}}}
    response, custom = {"status_code": 200, "body": json.dumps(plain).encode()}, {}
    take_plain_items(response, custom)
    assert custom == {"Items": plain["Items"]}
    assert json.loads(response["body"]) == {"Count": 1, "LastEvaluatedKey": {"pk": {"S": "n"}}}

    for status, body in [(200, {"Items": [{"sk": {"S": "a"}, "blob": {"B": "AAE="}}]}), (400, plain)]:
        raw = json.dumps(body).encode()
        response, custom = {"status_code": status, "body": raw}, {}
        take_plain_items(response, custom)
        assert custom == {} and response["body"] == raw
