"""Wiring: settings + plugin registries -> the chosen implementations (built lazily)."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from cosmos_core import metrics
from cosmos_core.bundle import Bundle
from cosmos_core.contracts import Emitter, EventSource, ReloadOutcome, Reloader, RoutingMode, StateStore, StoreURL
from cosmos_core.errors import PluginError, ReloadError
from cosmos_core.plugins import Plugins
from cosmos_core.settings import Settings

if TYPE_CHECKING:
    from cosmos_core.passes import Pass
    from cosmos_core.fleet import Liveness


class Runtime:
    """Builds each configured implementation once, on first use."""

    def __init__(self, settings: Settings, plugins: Plugins | None = None, *, create_store: bool = True) -> None:
        """``create_store=False`` (commands that only read): a store that would create its storage on
        first use (it has a ``create`` attribute, as the SQLite store) is told not to."""
        self.settings = settings
        self.create_store = create_store
        self.plugins = plugins if plugins is not None else Plugins.discover()
        self._routing: dict[str, RoutingMode] = {}
        #: Fleet mode: which hosts are alive (rendering leaves the others out); ``None`` renders everything.
        self.liveness: Liveness | None = None

    @cached_property
    def store_url(self) -> StoreURL:
        return StoreURL.parse(self.settings.store)

    @cached_property
    def store(self) -> StateStore:
        url = self.store_url
        store = self.plugins.get("state_stores", url.scheme, field="store").factory(url, self.settings)
        if not self.create_store and hasattr(store, "create"):
            store.create = False
        return metrics.instrument_store(store)  # ops: counted when metrics are on

    @cached_property
    def emitter(self) -> Emitter:
        return self._build("emitters", self.settings.emitter, "emitter")

    @cached_property
    def reloader(self) -> Reloader:
        """The configured reloader; one written for ``reload(config: str)`` is adapted."""
        built = self._build("reloaders", self.settings.reloader, "reloader")
        if callable(getattr(built, "apply", None)):
            return built
        if callable(getattr(built, "reload", None)):
            from cosmos_core.passes import LocalPass

            if isinstance(self.strategy, LocalPass) and hasattr(self.emitter, "use_maps"):  # one file: ACLs, no maps
                self.emitter.use_maps = False
            return TextReloader(built)
        raise PluginError(f"reloader {self.settings.reloader!r} ({self.plugins.owner('reloaders', self.settings.reloader)}): "
                          f"factory returned {type(built).__name__}, which has no apply(bundle, previous)")

    @cached_property
    def strategy(self) -> "Pass":
        """The pass strategy: the one ``emitter`` names if it names one, else a local pass.

        A strategy that does not implement :class:`~cosmos_core.passes.Pass` is a
        :class:`PluginError` naming it.
        """
        name = str(self.settings.emitter).lower()
        record = self.plugins.registry("passes").get(name) or self.plugins.get("passes", "local")
        strategy = record.factory(self)
        if not callable(getattr(strategy, "run", None)) or not callable(getattr(strategy, "check", None)):
            raise PluginError(f"pass strategy {record.name!r} ({self.plugins.owner('passes', record.name)}): "
                              f"factory returned {type(strategy).__name__}, which has no run()/check()")
        return strategy

    @cached_property
    def certificate_resolver(self) -> Any:
        """The ``acme`` resolver when ``acme_directory`` is set, else None (https, issue 12)."""
        if not self.settings.options.get("acme_directory"):  # the cosmos-acme plugin's setting
            return None
        return self._build("certificate_resolvers", "acme", "acme_directory")

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
        if self.__dict__.get("certificate_resolver") is not None:
            self.certificate_resolver.close()
        if "store" in self.__dict__:
            self.store.close()


class TextReloader:
    """Adapts a reloader written before bundles (``reload(config: str)``) to ``apply``.

    It can install the main file only: a bundle with auxiliary files is refused.
    """

    def __init__(self, legacy: Any) -> None:
        self.legacy = legacy

    def apply(self, bundle: Bundle, previous: Bundle | None) -> ReloadOutcome:
        if bundle.aux:
            raise ReloadError(f"{type(self.legacy).__name__} takes a config text only; this bundle also has "
                              f"{', '.join(bundle.aux)}", invalid=True)
        outcome = self.legacy.reload(bundle.config)
        if not isinstance(outcome, ReloadOutcome):
            raise PluginError(f"reloader {type(self.legacy).__name__}: reload() returned "
                              f"{type(outcome).__name__}, expected ReloadOutcome")
        return outcome
