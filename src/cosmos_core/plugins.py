"""The plugin manager and the name -> implementation registries.

* :func:`make_manager` builds a pluggy manager with the hook specs, the
  built-in defaults (registered exactly like external plugins) and, unless told
  otherwise, every entry point in the group ``cosmos``.  A plugin that fails to
  import is logged as a warning and recorded in :attr:`Plugins.failed`.
* :class:`Plugins` collects each family into ``{name: Provides}``, refusing a
  name claimed by two plugins, and answers an unknown name with the list of
  installed ones.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Iterable

import pluggy

from cosmos_core import hookspecs
from cosmos_core.contracts import Provides
from cosmos_core.errors import DuplicateNameError, UnknownNameError
from cosmos_core.logs import get_logger

ENTRY_POINT_GROUP = "cosmos"

BUILTINS = (
    "cosmos_core.builtin.sqlite_store",
    "cosmos_core.builtin.haproxy_emitter",
    "cosmos_core.builtin.payload_source",
    "cosmos_core.builtin.reloaders",
    "cosmos_core.builtin.host_reloader",
)

KIND_LABELS = {
    "event_sources": "event source",
    "state_stores": "store scheme",
    "routing_modes": "routing mode",
    "emitters": "emitter",
    "reloaders": "reloader",
}

log = get_logger("cosmos.plugins")


@dataclass
class PluginInfo:
    """One registered plugin: where it came from and what it provides."""

    name: str
    source: str
    provides: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class FailedPlugin:
    name: str
    source: str
    error: str


def make_manager(*, entry_points: bool = True, builtins: bool = True) -> tuple[pluggy.PluginManager, dict[str, str], list[FailedPlugin]]:
    """A manager with specs, built-ins and (optionally) installed entry points.

    Returns the manager, ``{plugin name: source}`` and the plugins that failed.
    """
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    sources: dict[str, str] = {}
    failed: list[FailedPlugin] = []
    if builtins:
        for module_name in BUILTINS:
            pm.register(importlib.import_module(module_name), name=module_name)
            sources[module_name] = "builtin"
    if entry_points:
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            dist = f"{ep.dist.name} {ep.dist.version}" if ep.dist else ep.value
            if pm.get_plugin(ep.name) is not None or pm.is_blocked(ep.name):
                continue
            try:
                pm.register(ep.load(), name=ep.name)
            except Exception as exc:  # noqa: BLE001 - one broken plugin must not stop the CLI
                log.warning("plugin_load_failed", plugin=ep.name, source=dist, error=_describe(exc))
                failed.append(FailedPlugin(ep.name, dist, _describe(exc)))
                continue
            sources[ep.name] = dist
    return pm, sources, failed


class Plugins:
    """The registries built from a plugin manager."""

    def __init__(
        self,
        pm: pluggy.PluginManager,
        sources: dict[str, str] | None = None,
        failed: Iterable[FailedPlugin] = (),
    ) -> None:
        self.pm = pm
        self.sources = dict(sources or {})
        self.failed = list(failed)

    @classmethod
    def discover(cls) -> "Plugins":
        """Built-ins plus every installed entry point."""
        pm, sources, failed = make_manager()
        return cls(pm, sources, failed)

    @classmethod
    def from_plugins(cls, *plugins: Any, builtins: bool = True) -> "Plugins":
        """A fresh manager with the built-ins and exactly ``plugins`` (for tests)."""
        pm, sources, failed = make_manager(entry_points=False, builtins=builtins)
        for plugin in plugins:
            name = pm.register(plugin)
            sources[name] = "test"
        return cls(pm, sources, failed)

    @cached_property
    def _collected(self) -> tuple[dict[str, dict[str, Provides[Any]]], dict[str, dict[str, list[str]]]]:
        registries: dict[str, dict[str, Provides[Any]]] = {family: {} for family in hookspecs.FAMILIES}
        owners: dict[str, dict[str, str]] = {family: {} for family in hookspecs.FAMILIES}
        provided: dict[str, dict[str, list[str]]] = {}
        for family, hook_name in hookspecs.FAMILIES.items():
            hook = getattr(self.pm.hook, hook_name)
            for impl in hook.get_hookimpls():  # registration order
                try:
                    records = list(impl.function() or [])
                    _check_records(records)
                except Exception as exc:  # noqa: BLE001
                    log.warning("plugin_hook_failed", plugin=impl.plugin_name, hook=hook_name, error=_describe(exc))
                    self.failed.append(FailedPlugin(impl.plugin_name, self.sources.get(impl.plugin_name, "?"), _describe(exc)))
                    continue
                for record in records:
                    key = record.name.lower()
                    if key in registries[family]:
                        raise DuplicateNameError(
                            f"{KIND_LABELS[family]} {key!r} is provided by both "
                            f"{owners[family][key]!r} and {impl.plugin_name!r}; uninstall one of them"
                        )
                    registries[family][key] = record
                    owners[family][key] = impl.plugin_name
                    provided.setdefault(impl.plugin_name, {}).setdefault(family, []).append(key)
        return registries, provided

    def registry(self, family: str) -> dict[str, Provides[Any]]:
        """``{name: Provides}`` for one family key of :data:`hookspecs.FAMILIES`."""
        return self._collected[0][family]

    def names(self, family: str) -> list[str]:
        return sorted(self.registry(family))

    def get(self, family: str, name: str, *, field: str | None = None) -> Provides[Any]:
        """The record for ``name``, or :class:`UnknownNameError` listing what is installed."""
        registry = self.registry(family)
        record = registry.get(str(name).lower())
        if record is None:
            raise UnknownNameError(KIND_LABELS[family], str(name), sorted(registry), field)
        return record

    def describe(self) -> list[PluginInfo]:
        """Every registered plugin with the names it provides, built-ins first."""
        provided = self._collected[1]
        infos = [
            PluginInfo(name, self.sources.get(name, "?"), {k: sorted(v) for k, v in provided.get(name, {}).items()})
            for name in self.sources
            if self.pm.get_plugin(name) is not None
        ]
        return sorted(infos, key=lambda info: (info.source != "builtin", info.name))


def _check_records(records: list[Any]) -> None:
    for record in records:
        if not isinstance(record, Provides) or not isinstance(record.name, str) or not record.name:
            raise TypeError(f"hook returned {record!r}, expected Provides(name, factory)")


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
