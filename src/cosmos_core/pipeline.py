"""One local pass: snapshot -> validate -> reconcile -> render -> store -> bundle.

Nothing else knows the order of the steps.  The bundle is rendered before the
store is written, so a state that cannot be rendered is never stored; a store
conflict (another runner wrote first) reloads and reconciles again.  Every
line a routing mode contributes is checked here
(:func:`cosmos_core.validate.check_config_line`), and so is the emitter's
return type.  :mod:`cosmos_core.passes` chooses between this local pass and a
remote one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Callable, Iterable, Mapping

from cosmos_core.backoff import Backoff
from cosmos_core.bundle import Bundle
from cosmos_core.contracts import ApplyResult, Route, RoutingMode
from cosmos_core.errors import ConflictError, PluginError, StoreError, ValidationError
from cosmos_core.haproxy_names import acl_name, backend_name
from cosmos_core.logs import get_logger
from cosmos_core.model import Plan, Service, Snapshot
from cosmos_core.reconcile import diff
from cosmos_core.route_claims import assign, claims, criteria_of, refused, settle, sort_key_of
from cosmos_core.runtime import Runtime
from cosmos_core.validate import check_config_line, check_routed_predicate

MAX_ATTEMPTS = 10
#: Store-conflict retries: 20 ms doubling, full jitter (racing writers spread out).
CONFLICT_BACKOFF = Backoff(0.01, 5.0, jitter="full")
log = get_logger("cosmos.pipeline")

RoutingLookup = Callable[[str, str], RoutingMode]


@dataclass(frozen=True)
class Result:
    """The outcome of one pass: the table, the bundle to install and what changed.

    ``services`` and ``plan`` are empty for a remote pass (the state lives there).
    """

    table: str
    bundle: Bundle
    services: tuple[Service, ...]
    plan: Plan
    applied: ApplyResult
    attempts: int

    @property
    def config(self) -> str:
        """The main config file of :attr:`bundle`, as text."""
        return self.bundle.config


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
        check_routed_predicate(predicate, f"{path}.predicate")
        candidates.append(service if predicate == service.predicate else service.derive(predicate=predicate))
    return replace(snapshot, candidates=tuple(candidates))


def build_routes(services: Iterable[Service], routing: RoutingLookup) -> list[Route]:
    """Routes in match order: by mode precedence, then most specific predicate first.

    Of stored services claiming one route, the first by name keeps it; the others
    get no route and a warning (new claimants never get this far: see ``settle``).
    """
    services = list(services)
    shadowed = refused(assign({}, (), {s.name: s for s in services}, routing)[1])
    for conflict in shadowed.values():
        log.warning("route_conflict", service=conflict.claimant, holder=conflict.holder, route=conflict.claim.route)
    keyed = []
    for service in services:
        if service.name in shadowed:
            continue
        mode = routing(service.mode, f"store: {service.name}.mode")
        try:
            valid = check_routed_predicate(mode.normalize(service.predicate)) == service.predicate
        except ValueError:
            valid = False
        if not valid:  # written by another tool or version: never render it
            raise StoreError(f"stored service {service.name!r} has a predicate its {service.mode!r} mode refuses: "
                             f"{service.predicate!r}; fix or delete it in the store")
        route = Route(backend_name(service.name), acl_name(service.name), checked_criteria(mode, service),
                      tuple((c.table, c.key) for c in claims(service, routing) if not c.table.startswith("acl:")))
        keyed.append(((mode.precedence, sort_key_of(service, mode), service.name), route))
    return [route for _, route in sorted(keyed, key=lambda pair: pair[0])]


def checked_criteria(mode: RoutingMode, service: Service) -> tuple[str, ...]:
    """``mode.criteria(predicate)``, each line checked; a refusal names the mode's plugin and method.

    Raises :class:`~cosmos_core.errors.PluginError` (exit 2) if the mode returns
    something other than a non-empty list of strings, or a line that
    :func:`~cosmos_core.validate.check_config_line` refuses.
    """
    where = f"routing mode {service.mode!r} ({plugin_of(mode)}): criteria({service.predicate!r})"
    lines = criteria_of(service, mode)
    if isinstance(lines, str) or not isinstance(lines, (list, tuple)) or not lines:
        raise PluginError(f"{where} returned {_short(lines)}, expected a non-empty list of strings")
    for line in lines:
        try:
            check_config_line(line, "criteria")
        except ValidationError as exc:
            raise PluginError(f"{where} returned a line the core refuses: {exc.reason} (got {_short(line)})") from None
    return tuple(lines)


def render(runtime: Runtime, services: Mapping[str, Service]) -> Bundle:
    """The emitter's bundle for ``services`` (sorted by name) and their routes.

    An emitter that returns text gets it wrapped as ``haproxy.cfg``; any other
    type is a :class:`~cosmos_core.errors.PluginError` naming the emitter.
    """
    liveness = getattr(runtime, "liveness", None)
    if liveness is not None:  # fleet mode: dead hosts' containers leave the config
        from cosmos_core.fleet import live_services

        services = live_services(services, liveness.dead())
    ordered = [services[name] for name in sorted(services)]
    emitter = runtime.emitter
    rendered = emitter.render(ordered, build_routes(ordered, runtime.routing))
    if isinstance(rendered, Bundle):
        return rendered
    if isinstance(rendered, str):
        return Bundle.of(rendered)
    raise PluginError(f"emitter {runtime.settings.emitter!r} ({plugin_of(emitter)}): render() returned "
                      f"{_short(rendered)}, expected a Bundle")


def generate(runtime: Runtime, snapshot: Snapshot, skip_conflicts: bool = False,
             verify: Callable[[Bundle], None] | None = None) -> Result:
    """Reconcile ``snapshot`` with the store, write the difference, return the bundle.

    Raises :class:`ValidationError` for bad input (nothing stored),
    :class:`StoreError` when the store fails or keeps conflicting.  A candidate
    claiming a route another service keeps is refused (ValidationError), or with
    ``skip_conflicts`` (the agent) left out with a warning.  ``verify`` (e.g.
    ``haproxy -c``) sees the rendered bundle before anything is stored; whatever
    it raises ends the pass with nothing stored.
    """
    started = time.perf_counter()
    table = snapshot.table or runtime.settings.table
    snapshot = validate_routing(snapshot, runtime.routing)
    if snapshot.at is None:  # the clock is read here, at the edge; reconcile stays pure
        snapshot = replace(snapshot, at=time.time())
    runtime.emitter  # noqa: B018 - bad emitter settings (binds, certificates) fail before the store is opened
    store = runtime.store
    for attempt in range(1, MAX_ATTEMPTS + 1):
        t0 = time.perf_counter()
        state = store.load(table)
        t1 = time.perf_counter()
        _, desired, skipped = settle(state.services, snapshot, runtime.routing, skip_conflicts)
        for conflict in skipped:
            log.warning("service_skipped", service=conflict.claimant, holder=conflict.holder,
                        route=conflict.claim.route, reason=conflict.message)
        plan = diff(state.services, desired)
        bundle = render(runtime, desired)
        if verify is not None:
            verify(bundle)
        t2 = time.perf_counter()
        try:
            applied = store.apply(table, plan, state)
        except ConflictError as exc:
            log.info("store_conflict", table=table, attempt=attempt, detail=str(exc))
            time.sleep(CONFLICT_BACKOFF.delay(attempt + 1))
            continue
        t3 = time.perf_counter()
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
        return Result(table, bundle, tuple(desired.values()), plan, applied, attempt)
    raise StoreError(f"table {table!r}: gave up after {MAX_ATTEMPTS} conflicting concurrent updates")


def plugin_of(implementation: object) -> str:
    """The distribution module an implementation comes from, for error messages."""
    module = type(implementation).__module__
    return module.split(".")[0] if not module.startswith("cosmos_core.") else module


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
