"""The store contract against the ``dynamodb`` store: on moto, and on a real dynalite server.

Both forms of the URL are covered: ``dynamodb://TABLE`` (namespaces share one
table) and bare ``dynamodb://`` (one DynamoDB table per namespace).
"""

from __future__ import annotations

import pytest
from cosmos_storage_dynamodb.store import DynamoDBStore, Location

from cosmos_core.contracts import StoreURL
from cosmos_core.testing.store_contract import StoreContract

SHARED = "dynamodb://cosmos-contract"
BARE = "dynamodb://"


def factory(url: str):
    location = Location.parse(StoreURL.parse(url))
    return lambda: DynamoDBStore(location)


class TestDynamoDBOnMoto(StoreContract):
    @pytest.fixture
    def make_store(self, moto_env):
        return factory(SHARED)


class TestBareDynamoDBOnMoto(StoreContract):

    @pytest.fixture
    def make_store(self, moto_env):
        return factory(BARE)


@pytest.mark.integration
class TestDynamoDBOnDynalite(StoreContract):
    @pytest.fixture
    def make_store(self, dynalite_env):
        return factory(SHARED)


@pytest.mark.integration
class TestBareDynamoDBOnDynalite(StoreContract):
    @pytest.fixture
    def make_store(self, dynalite_env):
        return factory(BARE)
