"""``cosmos fleet status`` and ``cosmos fleet forget``: inspect and repair the hosts of a fleet."""

import json
from typing import Annotated, Any, Optional

import typer

from cosmos_core.cli import common

app = typer.Typer(cls=common.CosmosGroup, help="Inspect and repair the hosts of a fleet (several cosmos watch agents on one store).",
                  no_args_is_help=True)

TableOpt = Annotated[Optional[str], typer.Option("--table", help="Table (namespace). (default: default)",
                                                 show_default=False)]


@app.command("status", cls=common.CosmosCommand)
def status(
    ctx: typer.Context,
    store: common.StoreOpt = None,
    table: TableOpt = None,
    sample: Annotated[
        Optional[float],
        typer.Option("--observe", "--sample", help="Seconds to watch the heartbeat counters and judge liveness "
                     "on this command's own clock (a lease or more: silent hosts are dead). (default: no "
                     "verdict, one read)", show_default=False),
    ] = None,
    heartbeat: Annotated[Optional[float], typer.Option("--heartbeat", help="The agents' heartbeat, seconds. (default: 5)",
                                                       show_default=False)] = None,
    lease: Annotated[Optional[float], typer.Option("--lease", help="The agents' lease, seconds. (default: 3 x heartbeat)",
                                                   show_default=False)] = None,
    as_json: common.JsonOpt = False,
) -> None:
    """Hosts, heartbeat counter, containers per host, and the fleet generation, from one read.

    Shown as information: each host's last heartbeat time as its own clock wrote it (clocks
    may differ, so no verdict comes of it).  With --observe SECONDS liveness is judged as an
    agent does, on this command's own clock: a host is alive if its counter advances while
    the command watches.
    """
    settings = common.settings(ctx, store=store, table=table, heartbeat=heartbeat, lease=lease)
    with common.errors(settings.debug):
        import time

        from cosmos_core.errors import ValidationError
        from cosmos_core.fleet import checked_timing, report
        from cosmos_core.runtime import Runtime

        _, the_lease = checked_timing(settings.heartbeat, settings.lease)  # as cosmos watch checks them
        span = 0.0 if sample is None else sample
        if not 0 <= span < float("inf"):
            raise ValidationError("observe", sample, "must be a finite number of seconds, zero or more")
        runtime = Runtime(settings, create_store=False)
        try:
            fleet_store = _fleet_store(runtime)
            first = fleet_store.fleet(settings.table)
            started = last_at = time.monotonic()
            last, seen, advanced = first, {h: r.beats for h, r in first.hosts.items()}, {}
            while last_at - started < span:
                time.sleep(min(0.25, span - (last_at - started)))
                last, last_at = fleet_store.fleet(settings.table), time.monotonic()
                for host, record in last.hosts.items():
                    if seen.get(host) != record.beats:
                        seen[host], advanced[host] = record.beats, last_at
            services = runtime.store.load(settings.table).services
        finally:
            runtime.close()
        lines = report(first, last, sample, the_lease, {h: last_at - t for h, t in advanced.items()}, services)
        now = time.time()
    data: dict[str, Any] = {
        "store": runtime.store_url.safe, "table": settings.table, "generation": last.generation,
        "heartbeat_s": settings.heartbeat, "lease_s": the_lease, "sampled_s": span, "judged": sample is not None,
        "hosts": [{"host": h.host_id, "beats": h.beats, "address": h.address, "containers": h.containers,
                   "state": h.state, "age_s": None if h.age is None else round(h.age, 2),
                   "heartbeat_at": _utc(h.at), "heartbeat_wall_age_s": None if h.at is None else round(now - h.at, 1)}
                  for h in lines],
    }
    if as_json:
        common.write_stdout(json.dumps(data, indent=2, sort_keys=True) + "\n")
        return
    observed = f"observed: {span:g} s" if sample is not None else "not observed (--observe SECONDS judges liveness)"
    out = [f"store: {data['store']}  table: {settings.table}  generation: {last.generation}  "
           f"lease: {the_lease:g} s  {observed}"]
    if not lines:
        out.append("(no hosts)")
    for h, row in zip(lines, data["hosts"], strict=True):
        age = "-" if h.age is None else f"{h.age:.1f}s"
        written = "-" if h.at is None else f"{row['heartbeat_at']} ({row['heartbeat_wall_age_s']:g}s ago by its clock)"
        out.append(f"  {h.host_id}  {h.state}  beats={h.beats if h.beats is not None else '-'}  age={age}  "
                   f"address={h.address or '-'}  containers={h.containers}  last_heartbeat={written}")
    common.write_stdout("\n".join(out) + "\n")


@app.command("forget", cls=common.CosmosCommand)
def forget(
    ctx: typer.Context,
    host: Annotated[str, typer.Argument(help="The host id to remove: its record and every container it reported.")],
    store: common.StoreOpt = None,
    table: TableOpt = None,
) -> None:
    """Remove a decommissioned host now: its host record and its containers (a live agent re-registers)."""
    settings = common.settings(ctx, store=store, table=table)
    with common.errors(settings.debug):
        from cosmos_core.errors import ConflictError, StoreError, ValidationError
        from cosmos_core.fleet import without_host
        from cosmos_core.model import check_host_id
        from cosmos_core.reconcile import diff
        from cosmos_core.runtime import Runtime

        check_host_id(host, "host")
        runtime = Runtime(settings, create_store=False)
        try:
            forgot = _fleet_store(runtime).forget_host(settings.table, host)
            for _ in range(10):
                state = runtime.store.load(settings.table)
                plan = diff(state.services, without_host(state.services, host))
                try:
                    runtime.store.apply(settings.table, plan, state)
                    break
                except ConflictError:
                    continue
            else:
                raise StoreError(f"table {settings.table!r}: gave up after 10 conflicting concurrent updates")
        finally:
            runtime.close()
        removed = plan.summary()["containers_removed"]
        if not forgot and not removed:
            raise ValidationError("host", host, f"is not known in table {settings.table!r}")
    common.write_stdout(f"forgot host {host}: record {'removed' if forgot else 'absent'}, "
                        f"{removed} container(s) removed\n")


def _utc(at: float | None) -> str | None:
    """Unix seconds as ``2026-11-30T07:40:00Z`` (``None`` stays ``None``)."""
    import datetime

    if at is None:
        return None
    return datetime.datetime.fromtimestamp(at, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _fleet_store(runtime: Any) -> Any:
    from cosmos_core.errors import StoreError
    from cosmos_core.fleet import FleetStore

    store = runtime.store
    if not isinstance(store, FleetStore):
        raise StoreError(f"store {runtime.store_url.safe}: keeps no host records (fleet mode unsupported)")
    return store
