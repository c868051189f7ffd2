"""Hook specifications: the five plugin families of Cosmos.

Every family hook takes no arguments and returns a list of
:class:`~cosmos_core.contracts.Provides` records.  The core calls each plugin's
implementation separately (so it knows which plugin provides which name),
builds ``{name: record}``, refuses a name claimed twice, and calls the chosen
record's factory only when configuration selects it.  Import heavy libraries
inside factories, never at module level.

Implement a hook with::

    from cosmos_core import hookimpl

    @hookimpl
    def cosmos_routing_modes():
        return [Provides("header", HeaderMode)]

and register the module under the entry-point group ``cosmos``.
"""

from __future__ import annotations

import pluggy

from cosmos_core.contracts import (
    EmitterFactory,
    EventSourceFactory,
    Provides,
    ReloaderFactory,
    RoutingFactory,
    StoreFactory,
)

PROJECT = "cosmos"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# ================================================================ event sources


@hookspec
def cosmos_event_sources() -> list[Provides[EventSourceFactory]]:
    """Name the event sources this plugin provides.

    Called once, when the plugin registry is first built.  Takes no parameters.

    Returns a list of ``Provides(name, factory)``; ``factory(settings)`` returns
    an :class:`~cosmos_core.contracts.EventSource`.  The name is what
    ``--events NAME`` / ``events = "NAME"`` selects (built in: ``payload``).
    """


# ================================================================= state stores


@hookspec
def cosmos_state_stores() -> list[Provides[StoreFactory]]:
    """Name the state-store URL schemes this plugin provides.

    Called once, when the plugin registry is first built.  Takes no parameters.

    Returns a list of ``Provides(scheme, factory)``; ``factory(url, settings)``
    receives the parsed :class:`~cosmos_core.contracts.StoreURL` and returns a
    :class:`~cosmos_core.contracts.StateStore`.  The scheme is what
    ``--store SCHEME://...`` selects (built in: ``sqlite``).
    """


# ================================================================ routing modes


@hookspec
def cosmos_routing_modes() -> list[Provides[RoutingFactory]]:
    """Name the routing modes this plugin provides.

    Called once, when the plugin registry is first built.  Takes no parameters.

    Returns a list of ``Provides(mode, factory)``; ``factory()`` returns a
    :class:`~cosmos_core.contracts.RoutingMode`.  The mode is what a service's
    ``configMode`` selects, matched case-insensitively (``host`` and ``path``
    come from the ``cosmos-routing-host-path`` plugin).
    """


# ============================================================== config emitters


@hookspec
def cosmos_emitters() -> list[Provides[EmitterFactory]]:
    """Name the config emitters this plugin provides.

    Called once, when the plugin registry is first built.  Takes no parameters.

    Returns a list of ``Provides(name, factory)``; ``factory(settings)`` returns
    an :class:`~cosmos_core.contracts.Emitter`.  The name is what
    ``--emitter NAME`` / ``emitter = "NAME"`` selects (built in: ``haproxy``).
    """


# ==================================================================== reloaders


@hookspec
def cosmos_reloaders() -> list[Provides[ReloaderFactory]]:
    """Name the reloaders this plugin provides.

    Called once, when the plugin registry is first built.  Takes no parameters.

    Returns a list of ``Provides(name, factory)``; ``factory(settings)`` returns
    a :class:`~cosmos_core.contracts.Reloader`.  The name is what
    ``--reloader NAME`` / ``reloader = "NAME"`` selects (built in: ``none``).
    """


FAMILIES: dict[str, str] = {
    "event_sources": "cosmos_event_sources",
    "state_stores": "cosmos_state_stores",
    "routing_modes": "cosmos_routing_modes",
    "emitters": "cosmos_emitters",
    "reloaders": "cosmos_reloaders",
}
"""Family key (as shown by ``cosmos plugins``) -> hook name."""
