"""The ACME storage contract (account + certificates + per-name lease) on every backend:
a directory, SQLite, DynamoDB on moto and on a real dynalite server."""

from __future__ import annotations

import time
import uuid

import pytest

from cosmos_acme.storage import DirStorage, DynamoDBStorage, SQLiteStorage, open_storage
from cosmos_core.errors import ValidationError


class StorageContract:
    @pytest.fixture
    def storage(self):  # pragma: no cover - overridden
        raise NotImplementedError

    def test_put_get_keys(self, storage) -> None:
        assert storage.get("account") is None
        storage.put("account", b"\x00acct")
        storage.put("cert/b.test", b"B")
        storage.put("cert/a.test", b"A")
        storage.put("cert/a.test", b"A2")
        assert storage.get("account") == b"\x00acct"
        assert storage.get("cert/a.test") == b"A2"
        assert storage.items("cert/") == {"cert/a.test": b"A2", "cert/b.test": b"B"}
        assert list(storage.items("cert/")) == ["cert/a.test", "cert/b.test"]
        assert storage.items("nothing/") == {}

    def test_one_lease_holder_per_name_until_release_or_expiry(self, storage) -> None:
        assert storage.acquire("a.test", "agent-1", 60)
        assert not storage.acquire("a.test", "agent-2", 60)
        assert storage.acquire("a.test", "agent-1", 60)  # the holder may extend it
        assert storage.acquire("b.test", "agent-2", 60)  # per name
        storage.release("a.test", "agent-2")  # not the holder: no effect
        assert not storage.acquire("a.test", "agent-2", 60)
        storage.release("a.test", "agent-1")
        assert storage.acquire("a.test", "agent-2", 0.2)
        time.sleep(0.3)
        assert storage.acquire("a.test", "agent-1", 60)  # expired: taken over

    def test_bad_keys_are_refused(self, storage) -> None:
        for key in ("", "../x", "/abs", "a b"):
            with pytest.raises(ValueError):
                storage.put(key, b"x")


class TestDir(StorageContract):
    @pytest.fixture
    def storage(self, tmp_path):
        return DirStorage(tmp_path / "acme")

    def test_files_are_private(self, storage) -> None:
        storage.put("cert/a.test", b"key material")
        assert (storage.root / "cert" / "a.test").stat().st_mode & 0o777 == 0o600


class TestSQLite(StorageContract):
    @pytest.fixture
    def storage(self, tmp_path):
        store = SQLiteStorage(str(tmp_path / "s.db"))
        yield store
        store.close()


def dynamo(url: str) -> DynamoDBStorage:
    from cosmos_storage_dynamodb.store import DynamoDBStore, Location

    from cosmos_core.contracts import StoreURL

    store = DynamoDBStore(Location.parse(StoreURL.parse(url)))
    return DynamoDBStorage(store, "default")


class TestDynamoDBOnMoto(StorageContract):
    @pytest.fixture
    def storage(self, moto_env):
        return dynamo("dynamodb://cosmos-acme-contract")


@pytest.mark.integration
class TestDynamoDBOnDynalite(StorageContract):
    @pytest.fixture
    def storage(self, dynalite_env):
        return dynamo(f"dynamodb://acme-{uuid.uuid4().hex[:8]}")

    def test_acme_items_are_not_a_namespace(self, storage) -> None:
        storage.put("cert/a.test", b"A")
        assert storage.store.tables() == []


def test_open_storage_picks_the_backend(tmp_path) -> None:
    assert isinstance(open_storage(f"dir://{tmp_path}/x", "sqlite:///unused", "default"), DirStorage)
    sqlite = open_storage("store", f"sqlite://{tmp_path}/s.db", "default")
    assert isinstance(sqlite, SQLiteStorage) and sqlite.path == f"{tmp_path}/s.db"
    assert (tmp_path / "s.db").stat().st_mode & 0o777 == 0o600
    with pytest.raises(ValidationError, match="acme_storage"):
        open_storage("s3://bucket", f"sqlite://{tmp_path}/s.db", "default")
