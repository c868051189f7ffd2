"""Cosmos: keep HAProxy in step with the containers on a fleet of hosts.

The public surface for plugin authors is re-exported here.
"""

from cosmos_core.contracts import (
    ApplyResult,
    Emitter,
    EventSource,
    Provides,
    ReloadOutcome,
    Reloader,
    Route,
    RoutingMode,
    StateStore,
    StoreURL,
)
from cosmos_core.errors import ConflictError, CosmosError, ReloadError, StoreError, ValidationError
from cosmos_core.hookspecs import hookimpl, hookspec
from cosmos_core.model import Change, Container, Plan, RunningContainer, Service, Snapshot, State

__version__ = "0.1.0"

__all__ = [
    "ApplyResult", "Change", "ConflictError", "Container", "CosmosError", "Emitter", "EventSource",
    "Plan", "Provides", "ReloadError", "ReloadOutcome", "Reloader", "Route", "RoutingMode",
    "RunningContainer", "Service", "Snapshot", "State", "StateStore", "StoreError", "StoreURL",
    "ValidationError", "hookimpl", "hookspec",
]
