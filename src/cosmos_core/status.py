"""The status report shared by ``cosmos status`` and ``GET /status``."""

from __future__ import annotations

from typing import Any

from cosmos_core.runtime import Runtime


def collect(runtime: Runtime, table: str | None = None) -> dict[str, Any]:
    """``{"store": url, "tables": {name: [service dicts]}}`` for one or every table."""
    store = runtime.store
    names = [table] if table else store.tables()
    return {
        "store": runtime.store_url.safe,
        "tables": {name: [s.to_dict() for s in store.load(name).services.values()] for name in names},
    }
