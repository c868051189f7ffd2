"""Fixtures for the dynamodb store's unit tests: moto's in-process DynamoDB."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from cosmos_core.contracts import StoreURL

AWS_VARIABLES = (
    "AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_REGION",
)


def set_aws_test_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """Dummy credentials, no endpoint override, no config files, no instance metadata lookups."""
    for name in AWS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """See :func:`set_aws_test_env`."""
    set_aws_test_env(monkeypatch, tmp_path)


@pytest.fixture
def moto_env(aws_env: None) -> Iterator[None]:
    """moto's in-process DynamoDB for the duration of the test."""
    from moto import mock_aws

    with mock_aws():
        yield


@pytest.fixture
def open_dynamodb(moto_env: None) -> Callable[..., Any]:
    """``open_dynamodb(url="dynamodb://cosmos-unit", **kwargs)``: a store on moto."""
    from cosmos_storage_dynamodb.store import DynamoDBStore, Location

    opened: list[DynamoDBStore] = []

    def open_(url: str = "dynamodb://cosmos-unit", **kwargs: Any) -> DynamoDBStore:
        store = DynamoDBStore(Location.parse(StoreURL.parse(url)), **kwargs)
        opened.append(store)
        return store

    yield open_
    for store in opened:
        store.close()
