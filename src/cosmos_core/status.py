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


def haproxy_report(runtime: Runtime) -> dict[str, Any] | None:
    """The live HAProxy processes, from the master CLI's ``show proc`` through the reloader; ``None`` when no
    master CLI is configured (``master_socket``).

    ``{"reloader": name, "master_socket": address, "workers": n, "current": n, "old": n, "pids": [...]}``
    (``workers``: live worker processes, the current one plus old ones still finishing connections after a
    reload), or with ``"workers": None`` and ``"error"`` when HAProxy cannot be asked.
    """
    from cosmos_core.errors import CosmosError
    from cosmos_core.haproxy.runtime_api import worker_report

    address = runtime.settings.options.get("master_socket")
    if not address:
        return None
    name = runtime.settings.reloader or ("host" if str(address).startswith("/") else "docker-exec")
    report: dict[str, Any] = {"reloader": name, "master_socket": address}
    try:
        reloader = runtime.plugins.get("reloaders", name, field="reloader").factory(runtime.settings)
        processes = getattr(reloader, "processes", None)
        if processes is None:
            raise CosmosError(f"reloader {name!r} cannot list HAProxy's processes")
        return report | worker_report(processes())
    except CosmosError as exc:
        return report | {"workers": None, "error": str(exc)}
