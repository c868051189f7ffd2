"""Run a payload through the pipeline with your plugin, in your plugin's own tests.

    from cosmos_core.testing.pipeline import run_payload
    import my_plugin

    result = run_payload({"candidates": [...]}, my_plugin, options={"my_setting": "x"})
    assert "acl web hdr(x-tenant) -m str acme" in result.config

No entry points are loaded (your plugin need not be installed): the built-ins
plus exactly ``plugins`` are registered, as :meth:`Plugins.from_plugins` does.
Plugin settings are resolved from ``options`` as if they came from cosmos.toml,
so their types are checked and their declared defaults apply.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cosmos_core import payload as payload_module
from cosmos_core.pipeline import Result
from cosmos_core.plugins import Plugins
from cosmos_core.runtime import Runtime
from cosmos_core.settings import Settings


def runtime_for(*plugins: Any, store: str = "sqlite://:memory:", options: Mapping[str, Any] | None = None,
                **core: Any) -> Runtime:
    """A :class:`Runtime` with the built-ins and ``plugins``; ``core`` are :class:`Settings` fields.

    Raises :class:`~cosmos_core.errors.ValidationError` for an option that no
    registered plugin declares or a value of the wrong type.
    """
    from cosmos_core.settings import coerce
    from cosmos_core.errors import ValidationError

    found = Plugins.from_plugins(*plugins)
    declared = found.settings
    resolved: dict[str, Any] = {name: record.default for name, record in declared.by_name.items()}
    for name, value in (options or {}).items():
        record = declared.by_name.get(name)
        if record is None:
            raise ValidationError(f"options: {name}", value, "is declared by no registered plugin")
        resolved[name] = coerce(record.type, record.default is None, value, f"options: {name}")
    return Runtime(Settings(store=store, options=resolved, **core), found)


def run_payload(data: Mapping[str, Any] | str | bytes, *plugins: Any, store: str = "sqlite://:memory:",
                options: Mapping[str, Any] | None = None, **core: Any) -> Result:
    """One local pass for ``data`` (a payload dict, or JSON text) with the built-ins and ``plugins``.

    Returns the :class:`~cosmos_core.pipeline.Result` (``.bundle``, ``.config``,
    ``.services``, ``.plan``).  Raises what ``cosmos generate`` would: a
    :class:`~cosmos_core.errors.ValidationError` for bad input, a
    :class:`~cosmos_core.errors.PluginError` when a plugin breaks its contract.
    """
    snapshot = payload_module.parse(dict(data)) if isinstance(data, Mapping) else payload_module.loads(data)
    runtime = runtime_for(*plugins, store=store, options=options, **core)
    try:
        return runtime.strategy.run(snapshot)
    finally:
        runtime.close()
