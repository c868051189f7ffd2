"""Wiring: settings + plugin registries -> the chosen implementations (built lazily)."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from cosmos_core.contracts import Emitter, EventSource, Reloader, RoutingMode, StateStore, StoreURL
from cosmos_core.plugins import Plugins
from cosmos_core.settings import Settings


class Runtime:
    """Builds each configured implementation once, on first use."""

    def __init__(self, settings: Settings, plugins: Plugins | None = None) -> None:
        self.settings = settings
        self.plugins = plugins if plugins is not None else Plugins.discover()
        self._routing: dict[str, RoutingMode] = {}

    @cached_property
    def store_url(self) -> StoreURL:
        return StoreURL.parse(self.settings.store)

    @cached_property
    def store(self) -> StateStore:
        url = self.store_url
        return self.plugins.get("state_stores", url.scheme, field="store").factory(url, self.settings)

    @cached_property
    def emitter(self) -> Emitter:
        return self._build("emitters", self.settings.emitter, "emitter")

    @cached_property
    def reloader(self) -> Reloader:
        return self._build("reloaders", self.settings.reloader, "reloader")

    def event_source(self, name: str | None = None) -> EventSource:
        return self._build("event_sources", name or self.settings.events, "events")

    def routing(self, mode: str, field: str = "configMode") -> RoutingMode:
        """The routing mode named ``mode`` (one instance per mode)."""
        if mode not in self._routing:
            self._routing[mode] = self.plugins.get("routing_modes", mode, field=field).factory()
        return self._routing[mode]

    def _build(self, family: str, name: str, field: str) -> Any:
        return self.plugins.get(family, name, field=field).factory(self.settings)

    def close(self) -> None:
        if "store" in self.__dict__:
            self.store.close()
