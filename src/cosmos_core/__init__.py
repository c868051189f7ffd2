"""Cosmos: keep HAProxy in step with the containers on a fleet of hosts.

The public surface for plugin authors is re-exported here.
"""

from cosmos_core.bundle import Bundle
from cosmos_core.contracts import (
    ApplyResult,
    ChecksPredicates,
    Emitter,
    EventSource,
    Provides,
    ReloadOutcome,
    Reloader,
    Route,
    RoutingMode,
    Setting,
    StateStore,
    StoreURL,
)
from cosmos_core.errors import ConflictError, CosmosError, PluginError, ReloadError, StoreError, ValidationError
from cosmos_core.hookspecs import hookimpl, hookspec
from cosmos_core.model import Change, Container, Plan, RunningContainer, Service, Snapshot, State

__version__ = "0.1.0"

__all__ = [
    "ApplyResult", "Bundle", "Change", "ChecksPredicates", "ConflictError", "Container", "CosmosError", "Emitter", "EventSource",
    "Plan", "PluginError", "Provides", "ReloadError", "ReloadOutcome", "Reloader", "Route", "RoutingMode",
    "RunningContainer", "Service", "Setting", "Snapshot", "State", "StateStore", "StoreError", "StoreURL",
    "ValidationError", "hookimpl", "hookspec",
]
