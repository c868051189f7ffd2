"""Cosmos's own Prometheus metrics: one registry, a tiny API, no cost when off.

Call :func:`enable` once (``cosmos watch --metrics-port``, ``cosmos serve``);
until then every recording function below is a no-op and ``prometheus_client``
is never imported, so the CLI start-up path stays light.  Anyone may call the
recording functions unconditionally::

    from cosmos_core import metrics

    metrics.runtime_api_updates(3)     # the rollout helper: 3 runtime-API commands applied
    metrics.set_live_hosts(5)          # the fleet helper: hosts alive in the store

Metrics (Prometheus conventions: ``cosmos_`` prefix, seconds, ``_total`` counters):

=======================================  =========  ===================================================
name                                     type       meaning
=======================================  =========  ===================================================
``cosmos_passes_total``                  counter    passes run (one snapshot/request through the pipeline)
``cosmos_pass_failures_total{kind}``     counter    failed passes: ``invalid_input``, ``store``, ``reload``,
                                                    ``refused_config``, ``remote``, ``other``
``cosmos_reloads_total{result}``         counter    ``reloaded`` or ``unchanged`` (nothing to do)
``cosmos_runtime_api_updates_total``     counter    changes applied through HAProxy's runtime API
``cosmos_reconcile_duration_seconds``    histogram  load + reconcile + render + store write of one pass
``cosmos_reload_duration_seconds``       histogram  the reloader's part of one pass
``cosmos_event_to_routable_seconds``     histogram  first Docker event of a burst -> HAProxy reloaded
``cosmos_store_requests_total{operation}``  counter store calls (``load``, ``apply``, ``ping``, ``tables``)
``cosmos_store_errors_total{operation}`` counter    store calls that raised (conflicts excluded)
``cosmos_store_conflicts_total``         counter    optimistic-locking conflicts (retried)
``cosmos_services{table}``               gauge      services after the last pass
``cosmos_containers{table}``             gauge      containers (servers) after the last pass
``cosmos_live_hosts``                    gauge      live hosts (fleet mode)
=======================================  =========  ===================================================
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

_lock = threading.Lock()
_m: Any = None  # the _Metrics holder once enabled

STORE_OPERATIONS = ("load", "apply", "ping", "tables")
FAILURE_KINDS = ("invalid_input", "store", "reload", "refused_config", "remote", "other")
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _Metrics:
    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = registry = CollectorRegistry(auto_describe=True)
        self.passes = Counter("cosmos_passes", "Passes run (snapshot or request through the pipeline).",
                              registry=registry)
        self.failures = Counter("cosmos_pass_failures", "Failed passes, by kind.", ["kind"], registry=registry)
        self.reloads = Counter("cosmos_reloads", "Reloader outcomes of successful passes.", ["result"],
                               registry=registry)
        self.runtime_api = Counter("cosmos_runtime_api_updates", "Changes applied through HAProxy's runtime API.",
                                   registry=registry)
        fast = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
        self.reconcile = Histogram("cosmos_reconcile_duration_seconds",
                                   "Load, reconcile, render and store write of one pass.", buckets=fast,
                                   registry=registry)
        self.reload = Histogram("cosmos_reload_duration_seconds", "The reloader's part of one pass.", buckets=fast,
                                registry=registry)
        self.event_to_routable = Histogram(
            "cosmos_event_to_routable_seconds", "From the first Docker event of a burst to HAProxy reloaded.",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120), registry=registry)
        self.store_requests = Counter("cosmos_store_requests", "State store calls.", ["operation"], registry=registry)
        self.store_errors = Counter("cosmos_store_errors", "State store calls that failed.", ["operation"],
                                    registry=registry)
        self.store_conflicts = Counter("cosmos_store_conflicts", "Optimistic-locking conflicts (retried).",
                                       registry=registry)
        self.services = Gauge("cosmos_services", "Services after the last pass.", ["table"], registry=registry)
        self.containers = Gauge("cosmos_containers", "Containers (servers) after the last pass.", ["table"],
                                registry=registry)
        self.live_hosts = Gauge("cosmos_live_hosts", "Live hosts in the store (fleet mode).", registry=registry)
        for kind in FAILURE_KINDS:  # every series exists from the start, at 0
            self.failures.labels(kind)
        for result in ("reloaded", "unchanged"):
            self.reloads.labels(result)
        for operation in STORE_OPERATIONS:
            self.store_requests.labels(operation)
            self.store_errors.labels(operation)


def enable() -> None:
    """Create the registry and the metrics (imports ``prometheus_client``); idempotent."""
    global _m
    with _lock:
        if _m is None:
            _m = _Metrics()


def enabled() -> bool:
    return _m is not None


def disable() -> None:
    """Drop the registry (tests)."""
    global _m
    with _lock:
        _m = None


def render() -> bytes:
    """The Prometheus text exposition of every metric (empty when off)."""
    if _m is None:
        return b""
    from prometheus_client import generate_latest

    return generate_latest(_m.registry)


# ----------------------------------------------------------------- recording


def failure_kind(exc: BaseException) -> str:
    """The ``kind`` label of a failed pass."""
    from cosmos_core.errors import CosmosError, ReloadError, StoreError

    if isinstance(exc, ReloadError):
        return "refused_config" if exc.invalid else "reload"
    if isinstance(exc, CosmosError) and exc.exit_code == 2:
        return "invalid_input"
    if isinstance(exc, StoreError):
        return "store"
    if isinstance(exc, CosmosError):
        return "remote" if "remote" in type(exc).__module__ or "Remote" in type(exc).__name__ else "other"
    return "other"


def pass_failed(exc: BaseException) -> None:
    if _m is not None:
        _m.passes.inc()
        _m.failures.labels(failure_kind(exc)).inc()


def pass_succeeded(table: str, services: Iterable[Any], reconcile_s: float, reload_s: float | None = None,
                   reloaded: bool | None = None, event_at: float | None = None, local: bool = True) -> None:
    """Record one successful pass.

    ``services``: the desired :class:`~cosmos_core.model.Service` list (for the
    gauges; skipped when ``local`` is false: a remote Cosmos holds the state);
    ``reload_s``/``reloaded``: the reloader's time and whether it reloaded
    (``None``: no reloader, as in ``cosmos serve``); ``event_at``: Unix time of
    the first event the pass answers (observed as event-to-routable).
    """
    if _m is None:
        return
    import time

    _m.passes.inc()
    _m.reconcile.observe(reconcile_s)
    if reload_s is not None:
        _m.reload.observe(reload_s)
    if reloaded is not None:
        _m.reloads.labels("reloaded" if reloaded else "unchanged").inc()
    if event_at is not None:
        _m.event_to_routable.observe(max(0.0, time.time() - event_at))
    if local:
        services = list(services)
        _m.services.labels(table).set(len(services))
        _m.containers.labels(table).set(sum(len(s.containers) for s in services))


def runtime_api_updates(count: int = 1) -> None:
    """Count ``count`` changes applied through HAProxy's runtime API (for the rollout reloader)."""
    if _m is not None and count:
        _m.runtime_api.inc(count)


def set_live_hosts(count: int) -> None:
    """Set the number of live hosts (for fleet mode)."""
    if _m is not None:
        _m.live_hosts.set(count)


# --------------------------------------------------------------------- store


class _CountedStore:
    """A state store whose calls are counted; everything else passes through."""

    def __init__(self, store: Any) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._store, name)
        if name not in STORE_OPERATIONS or not callable(attribute):
            return attribute

        from cosmos_core.errors import ConflictError

        def counted(*args: Any, **kwargs: Any) -> Any:
            metrics = _m
            if metrics is not None:
                metrics.store_requests.labels(name).inc()
            try:
                return attribute(*args, **kwargs)
            except ConflictError:
                if metrics is not None:
                    metrics.store_conflicts.inc()
                raise
            except Exception:
                if metrics is not None:
                    metrics.store_errors.labels(name).inc()
                raise

        setattr(self, name, counted)  # found directly from now on, without __getattr__
        return counted


def instrument_store(store: Any) -> Any:
    """``store`` with its calls counted when metrics are on; ``store`` itself otherwise."""
    return _CountedStore(store) if _m is not None else store


# -------------------------------------------------------------------- server


def serve(host: str, port: int, healthy: Callable[[], bool] | None = None) -> Any:
    """Serve ``GET /metrics`` and ``GET /healthz`` on a daemon thread; return the server (``.shutdown()``).

    ``/healthz`` is 200 while ``healthy()`` is true, else 503.  Port 0 picks a
    free port (``server.server_address[1]``).  Raises ``OSError`` when the port
    cannot be bound.
    """
    import http.server

    enable()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._send(200, render(), CONTENT_TYPE)
            elif path == "/healthz":
                ok = healthy is None or healthy()
                self._send(200 if ok else 503, b"ok\n" if ok else b"failing\n", "text/plain")
            else:
                self._send(404, b"not found: try /metrics or /healthz\n", "text/plain")

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            return None

    server = http.server.ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="cosmos-metrics", daemon=True).start()
    return server
