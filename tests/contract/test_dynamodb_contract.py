"""The store contract against the ``dynamodb`` store: on moto, and on a real dynalite server.

Both forms of the URL are covered: ``dynamodb://TABLE`` (namespaces share one
table) and bare ``dynamodb://`` (one DynamoDB table per namespace).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from cosmos_storage_dynamodb.store import DynamoDBStore, Location

from cosmos_core.contracts import StoreURL
from cosmos_core.testing.store_contract import StoreContract

SHARED = "dynamodb://cosmos-contract"
BARE = "dynamodb://"


def factory(url: str):
    location = Location.parse(StoreURL.parse(url))
    return lambda: DynamoDBStore(location)


class DynamoDBContract(StoreContract):
    """The contract, with :meth:`interleaved` at the store's real request boundaries."""

    @contextmanager
    def interleaved(self, store: Any, point: str, action: Callable[[], None]) -> Iterator[Any]:
        """``claimed``: after the apply's first ``UpdateItem`` (the revision); ``deleting``: before the
        request that deletes a service item (a ``DeleteItem``, or a ``BatchWriteItem`` carrying one)."""
        fired = []
        armed = []

        def run(**_: Any) -> None:
            if not fired:
                fired.append(point)
                action()

        def deletes_a_service(params: dict[str, Any]) -> bool:
            keys = [params.get("Key", {})] + [r["DeleteRequest"]["Key"] for rs in params.get("RequestItems", {}).values()
                                              for r in rs if "DeleteRequest" in r]
            return any(k.get("sk", {}).get("S", "").startswith("svc#") for k in keys)

        def on_update(**kwargs: Any) -> None:
            if armed:
                run()

        def before(params: dict[str, Any], **_: Any) -> None:
            armed.append(True)  # the apply has begun (loads send no write)
            if point == "deleting" and deletes_a_service(params):
                run()

        events = store.client.meta.events
        hooks = [("before-parameter-build.dynamodb.UpdateItem", before),
                 ("before-parameter-build.dynamodb.DeleteItem", before),
                 ("before-parameter-build.dynamodb.BatchWriteItem", before)]
        if point == "claimed":
            hooks.append(("after-call.dynamodb.UpdateItem", on_update))
        for name, hook in hooks:
            events.register(name, hook)
        try:
            yield store
        finally:
            for name, hook in hooks:
                events.unregister(name, hook)
        assert fired, f"the apply never reached {point!r}"


class TestDynamoDBOnMoto(DynamoDBContract):
    @pytest.fixture
    def make_store(self, moto_env):
        return factory(SHARED)


class TestBareDynamoDBOnMoto(DynamoDBContract):

    @pytest.fixture
    def make_store(self, moto_env):
        return factory(BARE)


@pytest.mark.integration
class TestDynamoDBOnDynalite(DynamoDBContract):
    @pytest.fixture
    def make_store(self, dynalite_env):
        return factory(SHARED)


@pytest.mark.integration
class TestBareDynamoDBOnDynalite(DynamoDBContract):
    @pytest.fixture
    def make_store(self, dynalite_env):
        return factory(BARE)
