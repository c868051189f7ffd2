"""The status report shared by ``cosmos status`` and ``GET /status``."""

from __future__ import annotations

from typing import Any

from cosmos_core.runtime import Runtime


def collect(runtime: Runtime, table: str | None = None) -> dict[str, Any]:
    """``{"store": url, "tables": {name: [service dicts]}}`` for one or every table."""
    from pathlib import Path

    from cosmos_core import quarantine

    store = runtime.store
    names = [table] if table else store.tables()
    path = runtime.settings.quarantine_file
    out = quarantine.listed(Path(path) if path else quarantine.default_path(), runtime.store_url.safe, names)
    report: dict[str, Any] = {
        "store": runtime.store_url.safe,
        "tables": {name: [s.to_dict() for s in store.load(name).services.values()] for name in names},
    }
    for name, services in report["tables"].items():
        for service in services:  # kept out of the config by the agent: HAProxy refused it
            if service["name"] in out.get(name, {}):
                service["quarantined"] = out[name][service["name"]]
    return report
