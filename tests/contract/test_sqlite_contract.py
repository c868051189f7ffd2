"""The store contract against the embedded SQLite store."""

from __future__ import annotations

from pathlib import Path

import pytest

from cosmos_core.builtin.sqlite_store import SQLiteStore
from cosmos_core.testing.store_contract import StoreContract


class TestSQLiteStoreContract(StoreContract):
    @pytest.fixture
    def make_store(self, tmp_path: Path):
        return lambda: SQLiteStore(str(tmp_path / "state.db"))
