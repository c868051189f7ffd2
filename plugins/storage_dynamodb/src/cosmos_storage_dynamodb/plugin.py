"""Registers the ``dynamodb`` store scheme; boto3 is imported only when it is chosen."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cosmos_core import Provides, StoreURL, hookimpl

if TYPE_CHECKING:
    from cosmos_core.settings import Settings
    from cosmos_storage_dynamodb.store import DynamoDBStore


def open_store(url: StoreURL, settings: Settings) -> DynamoDBStore:
    """``dynamodb://`` (table = the payload's table) or ``dynamodb://TABLE`` (namespaces inside TABLE)."""
    from cosmos_storage_dynamodb.store import DynamoDBStore, Location

    return DynamoDBStore(Location.parse(url))


@hookimpl
def cosmos_state_stores() -> list[Provides]:
    return [Provides("dynamodb", open_store, "Amazon DynamoDB table (shared by several runners)")]
