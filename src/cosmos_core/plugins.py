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
from typing import TYPE_CHECKING, Any, Iterable

import pluggy

from cosmos_core import hookspecs
from cosmos_core.contracts import Provides, Setting
from cosmos_core.errors import DuplicateNameError, UnknownNameError
from cosmos_core.logs import get_logger

if TYPE_CHECKING:
    from cosmos_core.settings import Declared

ENTRY_POINT_GROUP = "cosmos"

BUILTINS = (
    "cosmos_core.builtin.sqlite_store",
    "cosmos_core.builtin.haproxy_emitter",
    "cosmos_core.builtin.payload_source",
    "cosmos_core.builtin.reloaders",
    "cosmos_core.builtin.host_reloader",
    "cosmos_core.passes",
)

KIND_LABELS = {
    "event_sources": "event source",
    "state_stores": "store scheme",
    "routing_modes": "routing mode",
    "emitters": "emitter",
    "reloaders": "reloader",
    "passes": "pass strategy",
    "certificate_resolvers": "certificate resolver",
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
            meta = ep.dist.metadata if ep.dist else None  # parsed once (``dist.name`` and ``.version`` parse it each)
            dist = f"{meta['Name']} {meta['Version']}" if meta is not None else ep.value
            if pm.get_plugin(ep.name) is not None or pm.is_blocked(ep.name):
                continue
            try:
                register(pm, ep.load(), ep.name)
            except Exception as exc:  # noqa: BLE001 - one broken plugin must not stop the CLI
                log.warning("plugin_load_failed", plugin=ep.name, source=dist, error=_describe(exc))
                failed.append(FailedPlugin(ep.name, dist, _describe(exc)))
                continue
            sources[ep.name] = dist
    return pm, sources, failed


class UnknownHookError(Exception):
    """A plugin implements a hook no spec declares (a misspelled ``@hookimpl``)."""


def register(pm: pluggy.PluginManager, plugin: Any, name: str | None = None) -> str:
    """Register ``plugin`` and check its hooks against the specs (``pm.check_pending()``).

    A hook without a spec unregisters the plugin again and raises
    :class:`UnknownHookError` naming the plugin and the hook.
    """
    registered = pm.register(plugin, name=name)
    assert registered is not None  # pluggy returns None only for blocked names, skipped by callers
    try:
        pm.check_pending()
    except pluggy.PluginValidationError:
        hooks = sorted(caller.name for caller in pm.get_hookcallers(plugin) or [] if caller.spec is None)
        pm.unregister(plugin)
        known = ", ".join(sorted(hookspecs.HOOKS))
        raise UnknownHookError(f"plugin {registered!r} implements unknown hook {', '.join(map(repr, hooks))} "
                               f"(misspelled? the hooks are {known})") from None
    return registered


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
            try:
                name = register(pm, plugin)
            except UnknownHookError as exc:
                failed.append(FailedPlugin(_name_of(plugin), "test", _describe(exc)))
                continue
            sources[name] = "test"
        return cls(pm, sources, failed)

    @cached_property
    def _collected(self) -> tuple[dict[str, dict[str, Provides[Any]]], dict[str, dict[str, list[str]]],
                                  dict[str, dict[str, str]]]:
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
        return registries, provided, owners

    def owner(self, family: str, name: str) -> str:
        """The plugin that provides ``name`` in ``family`` (``"?"`` if none does)."""
        return self._collected[2][family].get(str(name).lower(), "?")

    @cached_property
    def settings(self) -> "Declared":
        """Every plugin's declared settings (hook ``cosmos_settings``), checked for clashes.

        A plugin whose hook raises or returns something other than
        :class:`~cosmos_core.contracts.Setting` records is recorded as failed.
        A name declared by two plugins with a different type, default or env
        var, or an env var / table key claimed twice, is a
        :class:`~cosmos_core.errors.DuplicateNameError` naming the key.
        """
        from cosmos_core.settings import Declared

        declared = Declared()
        for impl in self.pm.hook.cosmos_settings.get_hookimpls():
            try:
                records = list(impl.function() or [])
                for record in records:
                    if not isinstance(record, Setting):
                        raise TypeError(f"cosmos_settings() returned {record!r}, expected Setting(name, type, ...)")
                    declared.check(record)
            except Exception as exc:  # noqa: BLE001
                log.warning("plugin_hook_failed", plugin=impl.plugin_name, hook="cosmos_settings", error=_describe(exc))
                self.failed.append(FailedPlugin(impl.plugin_name, self.sources.get(impl.plugin_name, "?"), _describe(exc)))
                continue
            for record in records:
                declared.add(record, impl.plugin_name, self._section(record, impl.plugin_name))
        return declared

    def _section(self, record: Setting, plugin_name: str) -> str:
        return record.section or plugin_name

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


def _name_of(plugin: Any) -> str:
    return getattr(plugin, "__name__", None) or type(plugin).__name__


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
