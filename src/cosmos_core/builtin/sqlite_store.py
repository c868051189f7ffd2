"""The embedded state store: ``sqlite:///PATH`` (``sqlite://`` alone uses the default path).

Layout: one row per service and one per container, keyed by table (namespace).
A per-table revision counter gives optimistic locking: ``load`` returns it as
the state's token and ``apply`` writes only if it has not moved, inside one
``BEGIN IMMEDIATE`` transaction, so a half-written plan is never visible.

Fleet mode (several agents on one machine): containers keep the host that
reported them (``host_id``), and a ``hosts`` table holds each host's heartbeat
counter and advertised address; the revision is the fleet generation
(:class:`cosmos_core.fleet.FleetStore`).  Files from before fleet mode gain the
``host_id`` column when first opened.

Commands that only read (``cosmos status``, ``certs``, ``fleet status|forget``)
open the store with ``create = False``: a file that does not exist is never
created (a mistyped path would otherwise leave an empty database behind and
report "no services").  A missing file at the default path reads as an empty
store (nothing stored yet); any other missing file is a :class:`MissingStore`
error naming the path (exit 2).  They never write to an existing file either: no
schema is created and no column added in it (an empty file reads as an empty store,
an older file as if migrated).  A path that is a directory or a file that is not a
SQLite database is :class:`BadStorePath` (exit 2) for every command.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import time
from contextlib import contextmanager
from typing import TYPE_CHECKING, Iterator

from cosmos_core import options as opts
from cosmos_core.contracts import ApplyResult, Provides, StoreURL
from cosmos_core.errors import ConflictError, StoreError, ValidationError
from cosmos_core.hookspecs import hookimpl
from cosmos_core.model import Change, Container, Plan, Service, State
from cosmos_core.settings import Settings, default_store_url

if TYPE_CHECKING:  # cosmos_core.fleet only for the fleet methods (start-up time)
    from cosmos_core.fleet import FleetView

SCHEMA = """
CREATE TABLE IF NOT EXISTS services (
    tbl TEXT NOT NULL, name TEXT NOT NULL, mode TEXT NOT NULL, predicate TEXT NOT NULL,
    cookie TEXT, port INTEGER, options TEXT, PRIMARY KEY (tbl, name)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS containers (
    tbl TEXT NOT NULL, service TEXT NOT NULL, id TEXT NOT NULL, host TEXT NOT NULL,
    port INTEGER, options TEXT, host_id TEXT, PRIMARY KEY (tbl, service, id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS revisions (
    tbl TEXT PRIMARY KEY, revision INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS hosts (
    tbl TEXT NOT NULL, host TEXT NOT NULL, beats INTEGER NOT NULL, address TEXT, at REAL,
    PRIMARY KEY (tbl, host)) WITHOUT ROWID;
"""


class MissingStore(StoreError):
    """A command that only reads was pointed at a SQLite file that does not exist (bad input: exit 2)."""

    exit_code = 2

    def __init__(self, path: str) -> None:
        super().__init__(f"store sqlite://{path}: no such SQLite file; this command only reads the store and "
                         "never creates it (check the path; cosmos generate or watch create it)")


class BadStorePath(StoreError):
    """The SQLite path names something that is not a SQLite database (a directory, another file): exit 2."""

    exit_code = 2

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"store sqlite://{path}: {reason}; check the path (nothing was stored or written)")


class SQLiteStore:
    """A :class:`~cosmos_core.contracts.StateStore` in one SQLite file (WAL mode).

    ``create`` (default ``True``): create the file (and its directory) when missing, on the first write
    (:meth:`apply`, even of an empty plan, or a heartbeat): until then a missing file reads as empty, so a
    command that fails before storing leaves no file behind.
    With ``create = False`` a missing file raises :class:`MissingStore` on first use,
    except at the default path, where it reads as an empty store; no file is made.
    """

    create: bool = True

    def __init__(self, path: str) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None
        #: The file did not exist when first read: reads come from an empty in-memory store and the file
        #: (and its directory) is made on the first write, so a command that fails first creates nothing.
        self._deferred = False

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = self._connect()
        return self._conn

    def _refresh(self) -> None:
        """Deferred reads switch to the file once another process has made it (called between transactions)."""
        if self._deferred and os.path.exists(self.path):
            self._writable()

    def _writable(self) -> sqlite3.Connection:
        """The connection for a write: the file itself, made now if reads so far were deferred."""
        if self._conn is None and self.create:
            self._conn = self._connect(materialise=True)
        if self._deferred:
            # The in-memory connection is dropped, not closed: a reader in another thread may still hold it.
            self._conn = self._connect(materialise=True)
            self._deferred = False
        return self.conn

    def _creatable(self, target: str) -> None:
        """Raise unless the missing file ``target`` (and its directories) could be made."""
        parent = os.path.dirname(os.path.abspath(target))
        while not os.path.lexists(parent):
            parent = os.path.dirname(parent)
        if not os.path.isdir(parent):
            raise StoreError(f"store sqlite://{self.path}: cannot open ({parent} is not a directory); "
                             "check the path and its permissions")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise StoreError(f"store sqlite://{self.path}: cannot open ({parent}: permission denied); "
                             "check the path and its permissions")

    def _connect(self, materialise: bool = False) -> sqlite3.Connection:
        target = self.path
        if not self.create and target != ":memory:" and not os.path.exists(target):
            if os.path.abspath(target) != os.path.abspath(default_store_url()[len("sqlite://"):]):
                raise MissingStore(self.path)
            target = ":memory:"  # nothing stored yet at the default path: an empty store, no file made
        if self.create and not materialise and target != ":memory:" and not os.path.exists(target):
            self._creatable(target)  # a path that can never be made fails now, not at the first write
            self._deferred = True
            target = ":memory:"
        if target != ":memory:" and os.path.isdir(target):
            raise BadStorePath(self.path, "is a directory, not a SQLite file")
        try:
            if target != ":memory:" and self.create:
                os.makedirs(os.path.dirname(os.path.abspath(target)), exist_ok=True)
            conn = sqlite3.connect(target, timeout=30, isolation_level=None, check_same_thread=False)
            if self.create or target == ":memory:":
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.executescript(SCHEMA)
                _migrate(conn)
            else:
                _read_only_view(conn)
        except (sqlite3.Error, OSError) as exc:
            if self._disk_full(exc):
                raise self._full_error(exc) from None
            if isinstance(exc, sqlite3.DatabaseError) and "not a database" in str(exc):
                raise BadStorePath(self.path, "is not a SQLite database") from None
            raise StoreError(f"store sqlite://{self.path}: cannot open ({exc}); check the path and its permissions") from None
        return conn

    def load(self, table: str) -> State:
        with self._reading() as conn:
            revision = self._revision(table)
            rows = conn.execute(
                "SELECT name, mode, predicate, cookie, port, options FROM services WHERE tbl = ? ORDER BY name",
                (table,),
            ).fetchall()
            members: dict[str, list[Container]] = {}
            for service, cid, host, port, options, host_id in conn.execute(
                "SELECT service, id, host, port, options, host_id FROM containers WHERE tbl = ? ORDER BY service, id",
                (table,),
            ):
                members.setdefault(service, []).append(self._container(table, cid, host, port, options, host_id))
        try:
            services = {
                name: Service(name, mode, predicate, cookie, port, tuple(members.get(name, ())),
                              opts.decode(options, opts.SERVICE_OPTIONS, f"service {name}"))
                for name, mode, predicate, cookie, port, options in rows
            }
        except ValidationError as exc:
            raise StoreError(f"store sqlite://{self.path}: table {table!r} holds an invalid row ({exc})") from None
        return State(services, token=revision)

    def _container(self, table: str, cid: str, host: str, port: int | None, options: str | None,
                   host_id: str | None) -> Container:
        try:
            return Container(cid, host, port, opts.decode(options, opts.CONTAINER_OPTIONS, f"container {cid}"),
                             host_id=host_id)
        except ValidationError as exc:
            raise StoreError(f"store sqlite://{self.path}: table {table!r} holds an invalid row ({exc})") from None

    def apply(self, table: str, plan: Plan, base: State) -> ApplyResult:
        conn = self._writable()  # a pass that got this far makes the file, even with nothing to write
        if not plan:
            return ApplyResult()
        written = deleted = 0
        with self._errors():
            conn.execute("BEGIN IMMEDIATE")
            try:
                if self._revision(table) != base.token:
                    raise ConflictError(f"table {table!r} changed since it was read")
                for change in plan.changes:
                    w, d = self._apply_change(table, change)
                    written, deleted = written + w, deleted + d
                conn.execute(
                    "INSERT INTO revisions (tbl, revision) VALUES (?, 1) "
                    "ON CONFLICT (tbl) DO UPDATE SET revision = revision + 1",
                    (table,),
                )
            except BaseException:
                self._rollback()
                raise
            try:
                conn.execute("COMMIT")
            except BaseException:
                self._rollback()
                raise
        return ApplyResult(written=written, deleted=deleted, requests=1)

    def _apply_change(self, table: str, change: Change) -> tuple[int, int]:
        conn = self.conn
        if change.after is None:
            conn.execute("DELETE FROM containers WHERE tbl = ? AND service = ?", (table, change.name))
            conn.execute("DELETE FROM services WHERE tbl = ? AND name = ?", (table, change.name))
            return 0, 1 + len(change.before.containers)
        written = 0
        if change.settings_changed:
            after = change.after
            conn.execute(
                "INSERT OR REPLACE INTO services (tbl, name, mode, predicate, cookie, port, options) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (table, after.name, after.mode, after.predicate, after.cookie, after.port, opts.encode(after.options)),
            )
            written += 1
        conn.executemany(
            "DELETE FROM containers WHERE tbl = ? AND service = ? AND id = ?",
            [(table, change.name, c.id) for c in change.removed],
        )
        conn.executemany(
            "INSERT OR REPLACE INTO containers (tbl, service, id, host, port, options, host_id) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(table, change.name, c.id, c.host, c.port, opts.encode(c.options), c.host_id) for c in change.added],
        )
        return written + len(change.added), len(change.removed)

    def _revision(self, table: str) -> int:
        row = self.conn.execute("SELECT revision FROM revisions WHERE tbl = ?", (table,)).fetchone()
        return row[0] if row else 0

    # ------------------------------------------------------------- fleet

    def heartbeat(self, table: str, host_id: str, address: str | None, at: float | None = None) -> FleetView:
        """Count one heartbeat of ``host_id`` at ``at`` (default ``time.time()``; the revision is left
        alone); the fleet after it."""
        with self._errors():
            self._writable().execute(
                "INSERT INTO hosts (tbl, host, beats, address, at) VALUES (?, ?, 1, ?, ?) "
                "ON CONFLICT (tbl, host) DO UPDATE SET beats = beats + 1, address = excluded.address, at = excluded.at",
                (table, host_id, address, time.time() if at is None else at),
            )
        return self.fleet(table)

    def fleet(self, table: str) -> FleetView:
        with self._reading() as conn:
            revision = self._revision(table)
            rows = conn.execute("SELECT host, beats, address, at FROM hosts WHERE tbl = ? ORDER BY host",
                                (table,)).fetchall()
        from cosmos_core.fleet import FleetView, HostRecord

        hosts = {host: HostRecord(host, beats, address, at) for host, beats, address, at in rows}
        return FleetView(revision, hosts, settled=revision)  # a plan is one transaction: settled at once

    def forget_host(self, table: str, host_id: str) -> bool:
        with self._errors():
            cursor = self._writable().execute("DELETE FROM hosts WHERE tbl = ? AND host = ?", (table, host_id))
            return cursor.rowcount > 0

    def tables(self) -> list[str]:
        with self._errors():
            self._refresh()
            return [row[0] for row in self.conn.execute("SELECT DISTINCT tbl FROM services ORDER BY tbl")]

    def ping(self) -> None:
        with self._errors():
            self.conn.execute("SELECT 1").fetchone()

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _rollback(self) -> None:
        """Roll back the open transaction, if SQLite has not already done so.

        SQLite rolls back by itself after some errors (a full disk, I/O
        errors); a second rollback would fail and hide the first error, which
        is the one worth reporting.
        """
        if self._conn is not None and self._conn.in_transaction:
            try:
                self._conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass

    def _disk_full(self, exc: BaseException) -> bool:
        """True when ``exc`` comes from a full file system (or a full quota).

        SQLite reports a full disk as ``SQLITE_FULL``, but as a plain
        ``SQLITE_IOERR`` when it cannot even create its WAL files; the free
        space of the store's file system tells those apart.
        """
        if isinstance(exc, OSError):
            return exc.errno in (errno.ENOSPC, errno.EDQUOT)
        code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
        if code == sqlite3.SQLITE_FULL:
            return True
        if code != sqlite3.SQLITE_IOERR or self.path == ":memory:":
            return False
        try:
            stat = os.statvfs(os.path.dirname(os.path.abspath(self.path)))
        except OSError:
            return False
        return stat.f_bavail * stat.f_frsize < 64 * 1024 or (stat.f_files > 0 and stat.f_favail == 0)

    def _full_error(self, exc: BaseException) -> StoreError:
        return StoreError(f"store sqlite://{self.path}: the disk is full ({exc}); nothing was written")

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        """One read transaction (a consistent view), errors as StoreErrors."""
        with self._errors():
            self._refresh()
            conn = self.conn
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                conn.execute("COMMIT")

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Turn sqlite3 errors into one-line StoreErrors (a full disk says so)."""
        try:
            yield
        except sqlite3.Error as exc:
            if self._disk_full(exc):
                raise self._full_error(exc) from None
            raise StoreError(f"store sqlite://{self.path}: {exc}") from None


def _migrate(conn: sqlite3.Connection) -> None:
    """Add the ``options`` columns to a database written before they existed."""
    for table in ("services", "containers"):
        columns = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        if "options" not in columns:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN options TEXT")
    for table, column, kind in (("containers", "host_id", "TEXT"), ("hosts", "at", "REAL")):
        columns = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        if column not in columns:  # a file from before fleet mode / heartbeat times
            try:
                conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
            except sqlite3.OperationalError as exc:  # another handle migrated it meanwhile
                if "duplicate column" not in str(exc):
                    raise


def _read_only_view(conn: sqlite3.Connection) -> None:
    """Make a store file read as the current schema without writing to it (commands that only read).

    A table the file lacks (an empty file, an older store) becomes an empty ``TEMP`` table and a table
    missing columns a ``TEMP`` view adding them as NULL: temporary objects shadow the file's own for
    unqualified names and live outside the file.  Raises ``sqlite3.DatabaseError`` for a file that is
    not a SQLite database.
    """
    want = sqlite3.connect(":memory:")
    try:
        want.executescript(SCHEMA)
        _migrate(want)
        tables = [row[0] for row in want.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        expected = {t: [row[1] for row in want.execute(f"PRAGMA table_info({t})")] for t in tables}
        ddl = {t: want.execute("SELECT sql FROM sqlite_master WHERE name = ?", (t,)).fetchone()[0] for t in tables}
    finally:
        want.close()
    for table, columns in expected.items():
        have = {row[1] for row in conn.execute(f"PRAGMA main.table_info({table})")}
        if not have:
            conn.execute(ddl[table].replace("CREATE TABLE", "CREATE TEMP TABLE", 1))
        elif set(columns) - have:
            select = ", ".join(c if c in have else f"NULL AS {c}" for c in columns)
            conn.execute(f"CREATE TEMP VIEW {table} AS SELECT {select} FROM main.{table}")


def open_store(url: StoreURL, settings: Settings) -> SQLiteStore:
    """``sqlite:///abs/path``, ``sqlite://relative/path``, ``sqlite://:memory:`` or ``sqlite://``."""
    path = url.location or default_store_url()[len("sqlite://"):]
    return SQLiteStore(path)


@hookimpl
def cosmos_state_stores() -> list[Provides]:
    return [Provides("sqlite", open_store, "embedded SQLite file (default)")]

