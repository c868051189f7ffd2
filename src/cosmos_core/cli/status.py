"""``cosmos status``: what the store holds."""

import json
from typing import Annotated, Optional

import typer

from cosmos_core.cli import common


def status(
    ctx: typer.Context,
    store: common.StoreOpt = None,
    table: Annotated[
        Optional[str], typer.Option("--table", help="Only this table (default: every table in the store).")
    ] = None,
    as_json: common.JsonOpt = False,
) -> None:
    """Show the stored services: mode, predicate, cookie and containers.

    With a master CLI configured (``master_socket``: the host reloader's socket path, or docker-exec's
    ``ipv4@127.0.0.1:PORT`` inside the HAProxy container), also the number of live HAProxy worker
    processes (current and old ones still finishing connections), from ``show proc``.
    """
    settings = common.settings(ctx, store=store)
    with common.errors(settings.debug):
        from cosmos_core.runtime import Runtime
        from cosmos_core.status import collect, haproxy_report
        from cosmos_core.validate import check_name

        if table is not None:  # a name no store can hold is bad input, as in generate and fleet status
            check_name(table, "table")

        runtime = Runtime(settings, create_store=False)
        try:
            report = collect(runtime, table)
            haproxy = haproxy_report(runtime)  # issue 11: live worker processes (master CLI show proc)
            if haproxy is not None:
                report["haproxy"] = haproxy
        finally:
            runtime.close()
    if as_json:
        common.write_stdout(json.dumps(report, indent=2, sort_keys=True) + "\n")
        return
    lines = [f"store: {report['store']}"]
    if "haproxy" in report:
        haproxy = report["haproxy"]
        if haproxy["workers"] is None:
            lines.append(f"haproxy: live workers unknown ({haproxy['error']})")
        else:
            lines.append(f"haproxy: {haproxy['workers']} live worker process(es) "
                         f"({haproxy['current']} current, {haproxy['old']} old)")
    if not report["tables"]:
        lines.append("(no services stored)")
    for name, services in report["tables"].items():
        lines.append(f"table {name}: {len(services)} service(s)")
        for service in services:
            cookie = service["cookie"] or "-"
            lines.append(f"  {service['name']}  {service['mode']} {service['predicate']}  cookie={cookie}")
            if "quarantined" in service:
                lines.append(f"    NOT ROUTED (HAProxy refused it; kept out until it changes): {service['quarantined']}")
            for container in service["containers"]:
                host = f"  host={container['host']}" if "host" in container else ""
                lines.append(f"    {container['id']}  {container['address']}{host}")
    common.write_stdout("\n".join(lines) + "\n")
