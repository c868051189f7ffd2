"""One pass: snapshot -> validate -> reconcile -> render -> store -> config.

Nothing else knows the order of the steps.  The config is rendered before the
store is written, so a state that cannot be rendered is never stored; a store
conflict (another runner wrote first) reloads and reconciles again.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, replace
from typing import Callable, Iterable, Mapping

from cosmos_core.contracts import ApplyResult, RemoteEmitter, Route, RoutingMode
from cosmos_core.errors import ConflictError, StoreError, ValidationError
from cosmos_core.logs import get_logger
from cosmos_core.model import Plan, Service, Snapshot
from cosmos_core.reconcile import diff, reconcile
from cosmos_core.runtime import Runtime

MAX_ATTEMPTS = 10
log = get_logger("cosmos.pipeline")

RoutingLookup = Callable[[str, str], RoutingMode]


@dataclass(frozen=True)
class Result:
    """The outcome of one pass."""

    table: str
    config: str
    services: tuple[Service, ...]
    plan: Plan
    applied: ApplyResult
    attempts: int


def validate_routing(snapshot: Snapshot, routing: RoutingLookup) -> Snapshot:
    """Check each candidate's mode is installed and normalise its predicate."""
    candidates = []
    for index, service in enumerate(snapshot.candidates):
        path = f"{snapshot.candidates_key}[{index}]"
        mode = routing(service.mode, f"{path}.configMode")
        try:
            predicate = mode.normalize(service.predicate)
        except ValueError as exc:
            raise ValidationError(f"{path}.predicate", service.predicate, str(exc)) from None
        candidates.append(service if predicate == service.predicate else service.derive(predicate=predicate))
    return replace(snapshot, candidates=tuple(candidates))


def build_routes(services: Iterable[Service], routing: RoutingLookup) -> list[Route]:
    """Routes in match order: by mode precedence, then most specific predicate first."""
    keyed = []
    for service in services:
        mode = routing(service.mode, f"store: {service.name}.mode")
        try:
            valid = mode.normalize(service.predicate) == service.predicate
        except ValueError:
            valid = False
        if not valid:  # written by another tool or version: never render it
            raise StoreError(f"stored service {service.name!r} has a predicate its {service.mode!r} mode refuses: "
                             f"{service.predicate!r}; fix or delete it in the store")
        route = Route(service.name, service.name, tuple(mode.criteria(service.predicate)))
        keyed.append(((mode.precedence, mode.sort_key(service.predicate), service.name), route))
    return [route for _, route in sorted(keyed, key=lambda pair: pair[0])]


def render(runtime: Runtime, services: Mapping[str, Service]) -> str:
    ordered = [services[name] for name in sorted(services)]
    return runtime.emitter.render(ordered, build_routes(ordered, runtime.routing))


def generate(runtime: Runtime, snapshot: Snapshot) -> Result:
    """Reconcile ``snapshot`` with the store, write the difference, return the config."""
    started = time.perf_counter()
    table = snapshot.table or runtime.settings.table
    emitter = runtime.emitter
    if isinstance(emitter, RemoteEmitter):
        return generate_remote(emitter, snapshot, table)
    snapshot = validate_routing(snapshot, runtime.routing)
    store = runtime.store
    for attempt in range(1, MAX_ATTEMPTS + 1):
        t0 = time.perf_counter()
        state = store.load(table)
        t1 = time.perf_counter()
        desired = reconcile(state.services, snapshot)
        plan = diff(state.services, desired)
        config = render(runtime, desired)
        t2 = time.perf_counter()
        try:
            applied = store.apply(table, plan, state)
        except ConflictError as exc:
            log.info("store_conflict", table=table, attempt=attempt, detail=str(exc))
            time.sleep(random.uniform(0, 0.01 * 2**attempt))
            continue
        t3 = time.perf_counter()
        result = Result(table, config, tuple(desired.values()), plan, applied, attempt)
        log.info(
            "reconciled",
            table=table,
            services=len(desired),
            **plan.summary(),
            items_written=applied.written,
            items_deleted=applied.deleted,
            attempts=attempt,
            load_ms=round((t1 - t0) * 1000, 1),
            render_ms=round((t2 - t1) * 1000, 1),
            apply_ms=round((t3 - t2) * 1000, 1),
            ms=round((t3 - started) * 1000, 1),
        )
        return result
    raise StoreError(f"table {table!r}: gave up after {MAX_ATTEMPTS} conflicting concurrent updates")


def generate_remote(emitter: RemoteEmitter, snapshot: Snapshot, table: str) -> Result:
    """The pass done by a remote Cosmos: it validates, stores and renders.

    The result carries the remote's config only: ``services`` and ``plan``
    are empty because the state lives on the remote.
    """
    started = time.perf_counter()
    config = emitter.remote_config(snapshot, table)
    total = time.perf_counter() - started
    log.info("remote_generated", table=table, ms=round(total * 1000, 1))
    return Result(table, config, (), Plan(), ApplyResult(), 1)


def config_for(runtime: Runtime, snapshot: Snapshot) -> str:
    """The config an agent should load for ``snapshot`` (what ``cosmos watch`` calls)."""
    return generate(runtime, snapshot).config
