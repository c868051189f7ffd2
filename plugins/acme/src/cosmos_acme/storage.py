"""Where the ACME account and certificates live, and the per-name issuing lease.

:class:`CertStorage` is a small key-value interface (``account``,
``cert/<name>``) plus a lease per name taken with a conditional write, so one
agent at a time issues for a name and every agent sharing the storage serves
what it issued.  Values hold private keys: implementations never log them and
write files with mode 0600.

* :class:`DirStorage` - a local directory (``acme_storage = "dir:///path"``).
* :class:`SQLiteStorage` - tables beside the services in the SQLite store file.
* DynamoDB - items beside the services in the store's table
  (``cosmos_acme.storage_dynamodb``).
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path
from typing import Protocol

from cosmos_core.certs import write_bytes
from cosmos_core.errors import StoreError


class CertStorage(Protocol):
    def get(self, key: str) -> bytes | None:
        """The value of ``key`` or None."""

    def put(self, key: str, value: bytes) -> None:
        """Write ``key`` (the last writer wins; values are whole documents)."""

    def items(self, prefix: str) -> dict[str, bytes]:
        """Every key starting with ``prefix`` and its value, in one read where the backend allows."""

    def acquire(self, name: str, owner: str, ttl: float) -> bool:
        """Take the lease on ``name`` for ``ttl`` seconds if it is free, expired or already ``owner``'s."""

    def release(self, name: str, owner: str) -> None:
        """Give the lease back (only if ``owner`` holds it)."""


def _check_key(key: str) -> str:
    if not key or ".." in key or key.startswith("/") or any(c.isspace() for c in key):
        raise ValueError(f"bad storage key {key!r}")
    return key


class DirStorage:
    """Files under ``root`` (mode 0600, directory 0700); leases are lock files holding owner + expiry."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        return self.root / _check_key(key)

    def get(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            return None

    def put(self, key: str, value: bytes) -> None:
        write_bytes(self._path(key), value, 0o600)

    def items(self, prefix: str) -> dict[str, bytes]:
        if not self.root.exists():
            return {}
        found = {p.relative_to(self.root).as_posix(): p for p in self.root.rglob("*")
                 if p.is_file() and not p.name.startswith(".")}
        return {k: found[k].read_bytes() for k in sorted(found)
                if k.startswith(prefix) and not k.startswith("leases/")}

    def acquire(self, name: str, owner: str, ttl: float) -> bool:
        lock = self._path(f"leases/{name}")
        lock.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        now = time.time()
        record = json.dumps({"owner": owner, "expires": now + ttl}).encode()
        try:
            fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            try:
                held = json.loads(lock.read_bytes() or b"{}")
            except (OSError, ValueError):
                held = {}
            if held.get("owner") != owner and held.get("expires", 0) > now:
                return False
            self.put(f"leases/{name}", record)  # expired or ours: take it over
            return True
        with os.fdopen(fd, "wb") as handle:
            handle.write(record)
        return True

    def release(self, name: str, owner: str) -> None:
        lock = self._path(f"leases/{name}")
        try:
            if json.loads(lock.read_bytes()).get("owner") == owner:
                lock.unlink()
        except (OSError, ValueError):
            pass


SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS acme_blobs (key TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS acme_leases (name TEXT PRIMARY KEY, owner TEXT NOT NULL, expires REAL NOT NULL) WITHOUT ROWID;
"""


class SQLiteStorage:
    """Two tables in the SQLite store file; the lease is one conditional upsert."""

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            self.conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.executescript(SQLITE_SCHEMA)
        except sqlite3.Error as exc:
            raise StoreError(f"ACME storage sqlite://{path}: cannot open ({exc})") from None
        if path != ":memory:":
            os.chmod(path, 0o600)

    def get(self, key: str) -> bytes | None:
        row = self.conn.execute("SELECT value FROM acme_blobs WHERE key = ?", (_check_key(key),)).fetchone()
        return bytes(row[0]) if row else None

    def put(self, key: str, value: bytes) -> None:
        self.conn.execute("INSERT INTO acme_blobs (key, value) VALUES (?, ?) "
                          "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (_check_key(key), value))

    def items(self, prefix: str) -> dict[str, bytes]:
        rows = self.conn.execute("SELECT key, value FROM acme_blobs WHERE substr(key, 1, ?) = ? ORDER BY key",
                                 (len(prefix), prefix))
        return {key: bytes(value) for key, value in rows}

    def acquire(self, name: str, owner: str, ttl: float) -> bool:
        now = time.time()
        cur = self.conn.execute(
            "INSERT INTO acme_leases (name, owner, expires) VALUES (?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expires = excluded.expires "
            "WHERE acme_leases.expires < ? OR acme_leases.owner = excluded.owner",
            (name, owner, now + ttl, now),
        )
        return cur.rowcount == 1

    def release(self, name: str, owner: str) -> None:
        self.conn.execute("DELETE FROM acme_leases WHERE name = ? AND owner = ?", (name, owner))

    def close(self) -> None:
        self.conn.close()


ACME_PARTITION = "acme#"  # no namespace contains '#': never listed as a table, never loaded as services


class DynamoDBStorage:
    """Items in the DynamoDB store's table: ``pk = "acme#"``, ``sk = blob#<key>`` / ``lease#<name>``.

    The lease is one ``PutItem`` with a condition (free, expired or ours), so
    two agents never issue the same name at once.  ``store`` is the
    :class:`cosmos_storage_dynamodb.store.DynamoDBStore` (its client, retries
    and table); ``namespace`` picks the physical table in per-namespace mode.
    """

    def __init__(self, store, namespace: str) -> None:  # type: ignore[no-untyped-def]
        self.store = store
        self.table = store.location.physical(namespace)
        store._create_table(self.table)  # idempotent; creates the table like the first apply would

    @property
    def client(self):  # type: ignore[no-untyped-def]
        return self.store.client

    def _key(self, sk: str) -> dict:
        return {"pk": {"S": ACME_PARTITION}, "sk": {"S": sk}}

    def get(self, key: str) -> bytes | None:
        item = self.client.get_item(TableName=self.table, Key=self._key("blob#" + _check_key(key)),
                                    ConsistentRead=True).get("Item")
        return bytes(item["value"]["B"]) if item else None

    def put(self, key: str, value: bytes) -> None:
        self.client.put_item(TableName=self.table, Item={**self._key("blob#" + _check_key(key)), "value": {"B": value}})

    def items(self, prefix: str) -> dict[str, bytes]:
        found: dict[str, bytes] = {}
        kwargs = {"TableName": self.table, "KeyConditionExpression": "pk = :p AND begins_with(sk, :s)",
                  "ExpressionAttributeValues": {":p": {"S": ACME_PARTITION}, ":s": {"S": "blob#" + prefix}},
                  "ConsistentRead": True}
        while True:
            page = self.client.query(**kwargs)
            found.update((item["sk"]["S"][5:], bytes(item["value"]["B"])) for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return dict(sorted(found.items()))
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def acquire(self, name: str, owner: str, ttl: float) -> bool:
        now = time.time()
        try:
            self.client.put_item(
                TableName=self.table,
                Item={**self._key("lease#" + name), "owner": {"S": owner}, "expires": {"N": repr(now + ttl)}},
                ConditionExpression="attribute_not_exists(pk) OR expires < :now OR #o = :me",
                ExpressionAttributeNames={"#o": "owner"},
                ExpressionAttributeValues={":now": {"N": repr(now)}, ":me": {"S": owner}},
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def release(self, name: str, owner: str) -> None:
        try:
            self.client.delete_item(TableName=self.table, Key=self._key("lease#" + name),
                                    ConditionExpression="#o = :me", ExpressionAttributeNames={"#o": "owner"},
                                    ExpressionAttributeValues={":me": {"S": owner}})
        except self.client.exceptions.ConditionalCheckFailedException:
            pass


def open_storage(setting: str, store_url: str, namespace: str, store=None) -> CertStorage:  # type: ignore[no-untyped-def]
    """The storage ``acme_storage`` names: ``store`` (beside the services) or ``dir:///path``.

    ``store``: the runtime's state store (needed for DynamoDB).  Raises
    ValidationError naming ``acme_storage`` for anything else.
    """
    from cosmos_core.contracts import StoreURL
    from cosmos_core.errors import ValidationError

    if setting.startswith("dir://"):
        return DirStorage(setting[len("dir://"):])
    if setting != "store":
        raise ValidationError("acme_storage", setting, "must be store or dir:///path")
    url = StoreURL.parse(store_url)
    if url.scheme == "sqlite":
        path = getattr(store, "path", None) or url.location or default_sqlite_path()
        return SQLiteStorage(path)
    if url.scheme == "dynamodb" and store is not None:
        return DynamoDBStorage(store, namespace)
    raise ValidationError("acme_storage", setting, f"the {url.scheme} store cannot hold certificates; use dir:///path")


def default_sqlite_path() -> str:
    from cosmos_core.settings import default_store_url

    return default_store_url()[len("sqlite://"):]
