"""The ``dynamodb`` state store: the I/O around :mod:`cosmos_storage_dynamodb.layout`.

``dynamodb://TABLE`` keeps every namespace (the payload's table) as one
partition of the DynamoDB table ``TABLE``; bare ``dynamodb://`` uses the
namespace itself as the DynamoDB table name, as the original did.

One apply is: a conditional ``UpdateItem`` on the namespace's revision item
(the optimistic lock: it fails with ``ConditionalCheckFailedException`` when
another runner applied since our load, and the pipeline re-reads and retries),
then ``BatchWriteItem`` calls (25 items each, ``UnprocessedItems`` retried with
backoff) for the changed items only.  A fleet plan (only containers some fleet
host reported) takes no lock: see :meth:`DynamoDBStore._apply_fleet` and
:mod:`cosmos_storage_dynamodb.layout`.  boto3 is imported inside functions.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cosmos_core.backoff import Backoff
from cosmos_core.contracts import ApplyResult, StoreURL
from cosmos_core.errors import ConflictError, CosmosError, StoreError, ValidationError
from cosmos_core.fleet import FleetView
from cosmos_core.logs import get_logger
from cosmos_core.model import Plan, Service, State
from cosmos_storage_dynamodb import layout

if TYPE_CHECKING:
    from botocore.client import BaseClient

log = get_logger("cosmos.store.dynamodb")

BATCH_SIZE = 25
#: BatchWriteItem calls in flight at once within one write phase.
WRITE_THREADS = 4
#: BatchWriteItem rounds for UnprocessedItems before giving up.
UNPROCESSED_ROUNDS = 8
#: Delay before re-sending unprocessed items: 0.1 s doubling to 2 s, in [d/2, d].
UNPROCESSED_BACKOFF = Backoff(0.1, 2.0, jitter="equal")
#: botocore's own retries (standard mode: throttling, 5xx, connection errors).
DEFAULT_MAX_ATTEMPTS = 5
WAIT_DELAY_S = 1
WAIT_MAX_ATTEMPTS = 120
OPTIONS = ("region", "endpoint", "max_attempts")
_TABLE_NAME = re.compile(r"[A-Za-z0-9_.-]{3,255}")
_CREDENTIAL_CODES = {
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "AccessDeniedException",
    "ExpiredTokenException",
    "MissingAuthenticationTokenException",
}


@dataclass(frozen=True)
class Location:
    """Where a store URL points: a fixed table (or per-namespace tables) and client options."""

    table: str | None
    region: str | None = None
    endpoint: str | None = None
    max_attempts: int = DEFAULT_MAX_ATTEMPTS

    @classmethod
    def parse(cls, url: StoreURL) -> Location:
        """``dynamodb://[TABLE][?region=R&endpoint=URL&max_attempts=N]``; bad input names the field."""
        unknown = sorted(set(url.options) - set(OPTIONS))
        if unknown:
            raise ValidationError("store", url.safe, f"unknown option {unknown[0]!r}; known: {', '.join(OPTIONS)}")
        table = url.location or None
        if table is not None and not _TABLE_NAME.fullmatch(table):
            raise ValidationError(
                "store", url.safe, "DynamoDB table name must be 3-255 characters of letters, digits, '_', '.', '-'"
            )
        attempts = url.options.get("max_attempts", str(DEFAULT_MAX_ATTEMPTS))
        if not (attempts.isascii() and attempts.isdigit() and 1 <= int(attempts) <= 20):
            raise ValidationError("store", url.safe, "max_attempts must be a whole number from 1 to 20")
        endpoint = url.options.get("endpoint") or None
        if endpoint is not None and not endpoint.startswith(("http://", "https://")):
            raise ValidationError("store", url.safe, "endpoint must start with http:// or https://")
        return cls(table, url.options.get("region") or None, endpoint, int(attempts))

    def physical(self, namespace: str) -> str:
        """The DynamoDB table that holds ``namespace`` (bare URL: a name DynamoDB accepts)."""
        if self.table is not None:
            return self.table
        if not _TABLE_NAME.fullmatch(namespace):
            raise ValidationError(
                "tableName", namespace, "must be 3-255 characters to name a DynamoDB table (store dynamodb://)"
            )
        return namespace


class DynamoDBStore:
    """A :class:`~cosmos_core.contracts.StateStore` on DynamoDB (see the module docstring)."""

    def __init__(
        self,
        location: Location,
        *,
        client: BaseClient | None = None,
        sleep: Callable[[float], None] = time.sleep,
        owner: str = layout.SHARED_OWNER,
    ) -> None:
        self.location = location
        self.owner = owner
        self._sleep = sleep
        self._ready: set[str] = set()
        #: API calls made so far, by operation name (retried attempts not included).
        self.calls: Counter[str] = Counter()
        #: HTTP attempts sent so far (calls plus botocore's retries).
        self.attempts = 0
        #: Applies refused because another writer moved the namespace first (each one a pipeline retry).
        self.conflicts = 0
        self._count_lock = threading.Lock()
        self._client = self._instrument(client) if client is not None else None

    # ------------------------------------------------------------ the client

    @property
    def client(self) -> BaseClient:
        if self._client is None:
            self._client = self._connect()
        return self._client

    def _connect(self) -> BaseClient:
        import boto3
        from botocore.config import Config
        from botocore.exceptions import BotoCoreError

        config = Config(
            retries={"mode": "standard", "total_max_attempts": self.location.max_attempts},
            connect_timeout=5,
            read_timeout=20,
            max_pool_connections=WRITE_THREADS + 2,
            # Our requests are built from validated model values; botocore's own walk
            # over every attribute would cost ~40% of a large write.
            parameter_validation=False,
            user_agent_extra="cosmos-storage-dynamodb",
        )
        try:
            client = boto3.session.Session().client(
                "dynamodb", region_name=self.location.region, endpoint_url=self.location.endpoint, config=config
            )
        except BotoCoreError as exc:
            raise StoreError(self._describe(self.location.table or "(payload table)", exc)) from None
        return self._instrument(client)

    def _instrument(self, client: BaseClient) -> BaseClient:
        """Count API calls and HTTP attempts through botocore's event hooks."""

        def on_call(model: Any, **_: Any) -> None:
            with self._count_lock:
                self.calls[model.name] += 1

        def on_send(**_: Any) -> None:
            with self._count_lock:
                self.attempts += 1

        client.meta.events.register("before-call.dynamodb", on_call)
        client.meta.events.register("before-send.dynamodb", on_send)
        client.meta.events.register("before-parse.dynamodb.Query", take_plain_items)
        return client

    @property
    def requests(self) -> int:
        """DynamoDB API calls made by this handle so far."""
        return sum(self.calls.values())

    @property
    def endpoint(self) -> str:
        if self._client is not None:
            return str(self._client.meta.endpoint_url)
        return self.location.endpoint or "(AWS default for the region)"

    # ------------------------------------------------------------- protocol

    def load(self, table: str) -> State:
        """Every item of the namespace (paginated, strongly consistent); a missing table is empty."""
        physical = self.location.physical(table)
        with self._errors(physical):
            items = self._query(physical, table)
        try:
            decoded = layout.decode(items, self.owner)
        except ValidationError as exc:
            raise StoreError(f"store dynamodb table {physical!r}, namespace {table!r}: invalid {exc}") from None
        if decoded.skipped:
            log.warning("items_skipped", table=physical, namespace=table, items=list(decoded.skipped[:10]),
                        count=len(decoded.skipped))
        return State(decoded.services, token=decoded.revision)

    def apply(self, table: str, plan: Plan, base: State) -> ApplyResult:
        """Lock (conditional revision bump), then batch-write only the changed items."""
        if not plan:
            return ApplyResult()
        physical = self.location.physical(table)
        if layout.is_fleet_plan(plan):
            return self._apply_fleet(physical, table, plan)
        revision = int(base.token or 0) + 1
        ops = layout.write_ops(table, plan, revision, self.owner)
        before = self.requests
        with self._errors(physical):
            self._lock(physical, table, int(base.token or 0), revision)
            for phase, put in ops.phases():
                self._write(physical, phase, put)
            if layout.touches_fleet(plan):
                self._settle(physical, table, revision)
        result = ApplyResult(
            written=len(ops.puts) + 1,
            deleted=len(ops.container_deletes) + len(ops.service_deletes),
            requests=self.requests - before,
        )
        log.debug("dynamodb_apply", table=physical, namespace=table, revision=revision,
                  written=result.written, deleted=result.deleted, requests=result.requests)
        return result

    # ---------------------------------------------------------------- fleet

    def _apply_fleet(self, physical: str, table: str, plan: Plan) -> ApplyResult:
        """A fleet plan without the namespace lock (see :mod:`cosmos_storage_dynamodb.layout`).

        The revision moves by an unconditional ``ADD`` (the fleet generation observers poll),
        so hosts starting together never refuse each other.  Raises :class:`ConflictError`
        (after writing the rest and settling) when a service the plan deletes gained a
        container meanwhile: the pipeline re-reads and plans again.
        """
        before = self.requests
        with self._errors(physical):
            revision = self._advance(physical, table)
            ops = layout.fleet_ops(table, plan, revision, self.owner)
            for service in ops.settings:
                self.client.update_item(TableName=physical, **layout.service_update(table, service, revision, False))
            if ops.container_puts:
                self._write(physical, ops.container_puts, True)
            for service in ops.joined:
                self._join(physical, table, service, revision)
            if ops.container_deletes:
                self._write(physical, ops.container_deletes, False)
            deleted, kept = 0, []
            for name, deleting in ops.vacated:
                if self._vacate(physical, table, name):
                    deleted += 1
                elif deleting:
                    kept.append(name)
            self._settle(physical, table, revision)
        if kept:
            self.conflicts += 1
            raise ConflictError(f"namespace {table!r} in table {physical!r}: service(s) {', '.join(kept)} "
                                "gained a container while this plan deleted them")
        result = ApplyResult(written=ops.written + 1, deleted=len(ops.container_deletes) + deleted,
                             requests=self.requests - before)
        log.debug("dynamodb_apply", table=physical, namespace=table, revision=revision, fleet=True,
                  written=result.written, deleted=result.deleted, requests=result.requests)
        return result

    def _advance(self, physical: str, namespace: str) -> int:
        """``ADD rev 1`` on the revision item (creating the table if missing); the new revision."""
        request = {
            "TableName": physical,
            "Key": layout.revision_key(namespace, self.owner),
            "UpdateExpression": "ADD #rev :one",
            "ExpressionAttributeNames": {"#rev": "rev"},
            "ExpressionAttributeValues": {":one": {"N": "1"}},
            "ReturnValues": "UPDATED_NEW",
        }
        try:
            response = self.client.update_item(**request)
        except self.client.exceptions.ResourceNotFoundException:
            self._create_table(physical)
            response = self.client.update_item(**request)
        return int(response["Attributes"]["rev"]["N"])

    def _join(self, physical: str, namespace: str, service: Service, revision: int) -> None:
        """After a container add: ``ver`` + 1 on the service item, or the item put back if it is gone."""
        try:
            self.client.update_item(
                TableName=physical,
                Key=layout.service_key(namespace, service.name),
                UpdateExpression="ADD #ver :one",
                ConditionExpression="attribute_exists(#mode)",
                ExpressionAttributeNames={"#ver": layout.VERSION, "#mode": "mode"},
                ExpressionAttributeValues={":one": {"N": "1"}},
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            log.info("service_restored", table=physical, namespace=namespace, service=service.name)
            self.client.update_item(TableName=physical, **layout.service_update(namespace, service, revision, True))

    def _vacate(self, physical: str, namespace: str, name: str) -> bool:
        """Delete service ``name``'s item if no servable container item of it is left.

        Reads ``ver``, then the service's container items (both strongly consistent), then
        deletes on the condition that ``ver`` is unchanged.  ``True``: deleted or already gone;
        ``False``: kept (a container is stored, or an add bumped ``ver`` meanwhile).
        """
        key = layout.service_key(namespace, name)
        got = self.client.get_item(TableName=physical, Key=key, ConsistentRead=True,
                                   ProjectionExpression="#ver, #port", ExpressionAttributeNames={
                                       "#ver": layout.VERSION, "#port": "port"})
        item = got.get("Item")
        if item is None:
            return True
        prefix = layout.container_key(namespace, name, "")[layout.SK]["S"]
        kwargs: dict[str, Any] = {
            "TableName": physical, "ConsistentRead": True, "ProjectionExpression": "sk, #port",
            "KeyConditionExpression": "pk = :ns AND begins_with(sk, :ctr)",
            "ExpressionAttributeNames": {"#port": "port"},
            "ExpressionAttributeValues": {":ns": {"S": namespace}, ":ctr": {"S": prefix}},
        }
        while True:
            page = self.client.query(**kwargs)
            # a port-less container of a port-less service is never served (layout.decode skips it)
            if any("port" in c or "port" in item for c in page.get("Items", [])):
                return False
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        version = item.get(layout.VERSION)
        condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(#ver)",
                                     "ExpressionAttributeNames": {"#ver": layout.VERSION}}
        if version is not None:
            condition["ConditionExpression"] = "#ver = :ver"
            condition["ExpressionAttributeValues"] = {":ver": version}
        try:
            self.client.delete_item(TableName=physical, Key=key, **condition)
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def heartbeat(self, table: str, host_id: str, address: str | None, at: float | None = None) -> FleetView:
        """One ``UpdateItem`` on the revision item: ``ADD hb#<host> 1``, ``SET at#<host>`` (``at``, default
        ``time.time()``) and the address; ``rev`` untouched.

        ``ReturnValues=ALL_NEW`` hands back the whole item, so the heartbeat is also a fleet read.
        """
        physical = self.location.physical(table)
        names = {"#b": layout.HEARTBEAT_PREFIX + host_id, "#a": layout.ADDRESS_PREFIX + host_id,
                 "#t": layout.BEAT_TIME_PREFIX + host_id}
        stamp = {"N": repr(round(time.time() if at is None else at, 3))}
        request: dict[str, Any] = {
            "TableName": physical,
            "Key": layout.revision_key(table, self.owner),
            "UpdateExpression": "ADD #b :one SET #t = :at" + (", #a = :address" if address else " REMOVE #a"),
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": {":one": {"N": "1"}, ":at": stamp,
                                          **({":address": {"S": address}} if address else {})},
            "ReturnValues": "ALL_NEW",
        }
        with self._errors(physical):
            try:
                response = self.client.update_item(**request)
            except self.client.exceptions.ResourceNotFoundException:
                self._create_table(physical)
                response = self.client.update_item(**request)
        return layout.decode_fleet(response.get("Attributes"))

    def fleet(self, table: str) -> FleetView:
        """One strongly consistent ``GetItem`` of the revision item; a missing table is an empty fleet."""
        physical = self.location.physical(table)
        with self._errors(physical):
            try:
                response = self.client.get_item(
                    TableName=physical, Key=layout.revision_key(table, self.owner), ConsistentRead=True
                )
            except self.client.exceptions.ResourceNotFoundException:
                return FleetView(0)
        return layout.decode_fleet(response.get("Item"))

    def forget_host(self, table: str, host_id: str) -> bool:
        """``REMOVE`` the host's attributes from the revision item (``rev`` untouched)."""
        physical = self.location.physical(table)
        with self._errors(physical):
            try:
                response = self.client.update_item(
                    TableName=physical,
                    Key=layout.revision_key(table, self.owner),
                    UpdateExpression="REMOVE #b, #a, #t",
                    ExpressionAttributeNames={"#b": layout.HEARTBEAT_PREFIX + host_id,
                                              "#a": layout.ADDRESS_PREFIX + host_id,
                                              "#t": layout.BEAT_TIME_PREFIX + host_id},
                    ConditionExpression="attribute_exists(#b)",
                )
            except (self.client.exceptions.ConditionalCheckFailedException,
                    self.client.exceptions.ResourceNotFoundException):
                return False
        return response is not None

    def tables(self) -> list[str]:
        """Namespaces holding at least one service (a Scan of TABLE, or a look at each table when bare)."""
        if self.location.table is not None:
            with self._errors(self.location.table):
                return sorted(self._scan_namespaces(self.location.table))
        with self._errors("(every table)"):
            return [name for name in self._list_tables() if self._holds_services(name)]

    def ping(self) -> None:
        with self._errors(self.location.table or "(payload table)"):
            self.client.list_tables(Limit=1)

    def close(self) -> None:
        if self.calls:
            log.debug("dynamodb_requests", calls=dict(sorted(self.calls.items())), total=self.requests,
                      attempts=self.attempts)
        if self._client is not None:
            self._client.close()
            self._client = None

    # -------------------------------------------------------------- reading

    def _query(self, physical: str, namespace: str) -> list[layout.Item]:
        """All items of ``namespace``, following 1 MB pages."""
        items: list[layout.Item] = []
        names = {f"#a{i}": name for i, name in enumerate(layout.LOAD_ATTRIBUTES)}
        kwargs: dict[str, Any] = {
            "TableName": physical,
            "KeyConditionExpression": "pk = :ns",
            "ExpressionAttributeValues": {":ns": {"S": namespace}},
            "ProjectionExpression": ", ".join(names),
            "ExpressionAttributeNames": names,
            "ConsistentRead": True,
        }
        while True:
            try:
                page = self.client.query(**kwargs)
            except self.client.exceptions.ResourceNotFoundException:
                return []
            items.extend(page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _scan_namespaces(self, physical: str) -> set[str]:
        names: set[str] = set()
        kwargs: dict[str, Any] = {
            "TableName": physical,
            "ProjectionExpression": "pk",
            "FilterExpression": "begins_with(sk, :svc)",
            "ExpressionAttributeValues": {":svc": {"S": layout.SERVICE_PREFIX}},
        }
        while True:
            try:
                page = self.client.scan(**kwargs)
            except self.client.exceptions.ResourceNotFoundException:
                return names
            names.update(layout.namespace_of(item) for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return names
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _list_tables(self) -> list[str]:
        names: list[str] = []
        for page in self.client.get_paginator("list_tables").paginate():
            names.extend(page.get("TableNames", []))
        return sorted(names)

    def _holds_services(self, physical: str) -> bool:
        """Whether the DynamoDB table ``physical`` is a bare-mode Cosmos table with a service."""
        from botocore.exceptions import ClientError

        try:
            page = self.client.query(
                TableName=physical,
                KeyConditionExpression="pk = :ns AND begins_with(sk, :svc)",
                ExpressionAttributeValues={":ns": {"S": physical}, ":svc": {"S": layout.SERVICE_PREFIX}},
                Limit=1,
            )
        except ClientError:  # another key schema, or gone meanwhile: not ours
            return False
        return bool(page.get("Items"))

    # -------------------------------------------------------------- writing

    def _lock(self, physical: str, namespace: str, expected: int, revision: int) -> None:
        """Bump the revision item from ``expected`` (ConflictError if another runner moved it)."""
        condition = "attribute_not_exists(#rev)" if expected == 0 else "#rev = :expected"
        values = {":revision": {"N": str(revision)}}
        if expected:
            values[":expected"] = {"N": str(expected)}
        request = {
            "TableName": physical,
            "Key": layout.revision_key(namespace, self.owner),
            "UpdateExpression": "SET #rev = :revision",
            "ConditionExpression": condition,
            "ExpressionAttributeNames": {"#rev": "rev"},
            "ExpressionAttributeValues": values,
        }
        exceptions = self.client.exceptions
        for _ in range(2):
            try:
                self.client.update_item(**request)
                return
            except exceptions.ConditionalCheckFailedException:
                self.conflicts += 1
                raise ConflictError(f"namespace {namespace!r} in table {physical!r} changed since it was read") from None
            except exceptions.ResourceNotFoundException:
                if expected:
                    raise ConflictError(f"table {physical!r} disappeared since it was read") from None
                self._create_table(physical)
        raise StoreError(f"store dynamodb table {physical!r}: still missing after creating it")

    def _settle(self, physical: str, namespace: str, revision: int) -> None:
        """Mark ``revision`` as fully written (``settled``, never moved backwards).

        Fleet agents poll the revision item; the lock moves ``rev`` before the items land,
        so an agent woken by it may read a half-written plan.  This second change wakes
        them again once everything is written.
        """
        try:
            self.client.update_item(
                TableName=physical,
                Key=layout.revision_key(namespace, self.owner),
                UpdateExpression="SET #s = :rev",
                ConditionExpression="attribute_not_exists(#s) OR #s < :rev",
                ExpressionAttributeNames={"#s": layout.SETTLED},
                ExpressionAttributeValues={":rev": {"N": str(revision)}},
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            pass  # a later plan settled first

    def _write(self, physical: str, items: list[layout.Item], put: bool) -> None:
        """BatchWriteItem ``items``, 25 a call, up to WRITE_THREADS calls at once; returns when all landed."""
        chunks = [
            [{"PutRequest": {"Item": i}} if put else {"DeleteRequest": {"Key": _key(i)}} for i in items[at : at + BATCH_SIZE]]
            for at in range(0, len(items), BATCH_SIZE)
        ]
        if len(chunks) <= 1:
            for chunk in chunks:
                self._write_chunk(physical, chunk)
            return

        with ThreadPoolExecutor(min(WRITE_THREADS, len(chunks)), thread_name_prefix="cosmos-dynamodb") as pool:
            for future in [pool.submit(self._write_chunk, physical, chunk) for chunk in chunks]:
                future.result()

    def _write_chunk(self, physical: str, pending: list[dict[str, Any]]) -> None:
        """One BatchWriteItem, then its UnprocessedItems again with backoff (bounded)."""
        for attempt in range(1, UNPROCESSED_ROUNDS + 1):
            response = self.client.batch_write_item(RequestItems={physical: pending})
            pending = response.get("UnprocessedItems", {}).get(physical, [])
            if not pending:
                return
            log.info("unprocessed_items", table=physical, count=len(pending), attempt=attempt)
            self._sleep(UNPROCESSED_BACKOFF.delay(attempt))
        raise StoreError(
            f"store dynamodb table {physical!r}: {len(pending)} item(s) still unprocessed after "
            f"{UNPROCESSED_ROUNDS} BatchWriteItem rounds (throttled); the next run repairs the state"
        )

    def _create_table(self, physical: str) -> None:
        """Create ``physical`` (on-demand) and wait until ACTIVE; tolerate a concurrent creator."""
        if physical in self._ready:
            return
        try:
            self.client.create_table(
                TableName=physical,
                AttributeDefinitions=[
                    {"AttributeName": layout.PK, "AttributeType": "S"},
                    {"AttributeName": layout.SK, "AttributeType": "S"},
                ],
                KeySchema=[
                    {"AttributeName": layout.PK, "KeyType": "HASH"},
                    {"AttributeName": layout.SK, "KeyType": "RANGE"},
                ],
                BillingMode="PAY_PER_REQUEST",
            )
            log.info("table_created", table=physical)
        except self.client.exceptions.ResourceInUseException:
            log.info("table_being_created_elsewhere", table=physical)
        self.client.get_waiter("table_exists").wait(
            TableName=physical, WaiterConfig={"Delay": WAIT_DELAY_S, "MaxAttempts": WAIT_MAX_ATTEMPTS}
        )
        self._ready.add(physical)

    # --------------------------------------------------------------- errors

    @contextmanager
    def _errors(self, physical: str) -> Iterator[None]:
        """botocore exceptions -> one-line StoreErrors naming table, endpoint and what to check."""
        try:
            yield
        except CosmosError:
            raise
        except Exception as exc:
            from botocore.exceptions import BotoCoreError, ClientError

            if isinstance(exc, (BotoCoreError, ClientError)):
                raise StoreError(self._describe(physical, exc)) from None
            raise

    def _describe(self, physical: str, exc: Exception) -> str:
        from botocore.exceptions import (
            ClientError,
            NoCredentialsError,
            NoRegionError,
            PartialCredentialsError,
            WaiterError,
        )
        from botocore.exceptions import (
            ConnectionError as BotoConnectionError,
        )

        where = f"store dynamodb table {physical!r} at {self.endpoint}"
        if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
            return f"{where}: no AWS credentials; set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE"
        if isinstance(exc, NoRegionError):
            return f"{where}: no AWS region; set AWS_DEFAULT_REGION or add ?region=REGION to the store URL"
        if isinstance(exc, BotoConnectionError):
            return (
                f"{where}: cannot reach the endpoint ({type(exc).__name__}); check AWS_ENDPOINT_URL_DYNAMODB "
                "or ?endpoint=, the region and the network"
            )
        if isinstance(exc, WaiterError):
            return f"{where}: table did not become ACTIVE ({exc}); check the table in the console"
        if isinstance(exc, ClientError):
            error = exc.response.get("Error", {})
            code, message = error.get("Code", "?"), error.get("Message", "")
            if code in _CREDENTIAL_CODES:
                return f"{where}: credentials refused ({code}: {message}); check the AWS credentials and permissions"
            return f"{where}: {code}: {message}"
        return f"{where}: {type(exc).__name__}: {exc}"


def take_plain_items(response_dict: dict[str, Any], customized_response_dict: dict[str, Any], **_: Any) -> None:
    """``before-parse`` hook for Query: hand over ``Items`` decoded by ``json`` alone.

    botocore's generic parser walks every attribute value and costs about 30 us
    per item.  For ``S`` and ``N`` values the low-level client returns exactly
    what the JSON holds, so a successful response whose items hold only those
    is decoded with :func:`json.loads` and botocore parses the rest (counts,
    ``LastEvaluatedKey``).  Anything else is left to botocore untouched.
    """
    if response_dict.get("status_code") != 200:
        return
    try:
        data = json.loads(response_dict["body"])
    except (KeyError, TypeError, ValueError):
        return
    items = data.pop("Items", None) if isinstance(data, dict) else None
    if not isinstance(items, list) or not all(_plain(item) for item in items):
        return
    customized_response_dict["Items"] = items
    response_dict["body"] = json.dumps(data).encode()


def _plain(item: Any) -> bool:
    return isinstance(item, dict) and all(
        isinstance(value, dict) and len(value) == 1 and ("S" in value or "N" in value) for value in item.values()
    )


def _key(item: layout.Item) -> layout.Item:
    return {layout.PK: item[layout.PK], layout.SK: item[layout.SK]}
