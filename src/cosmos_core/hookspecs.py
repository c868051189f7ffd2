"""Hook specifications: the six plugin families of Cosmos, and plugin settings.

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
    CertificateResolverFactory,
    EmitterFactory,
    EventSourceFactory,
    PassFactory,
    Provides,
    ReloaderFactory,
    RoutingFactory,
    Setting,
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


# =============================================================== pass strategies


@hookspec
def cosmos_passes() -> list[Provides[PassFactory]]:
    """Name the pass strategies this plugin provides.

    Called once, when the plugin registry is first built.  Takes no parameters.

    Returns a list of ``Provides(name, factory)``; ``factory(runtime)`` receives
    the :class:`~cosmos_core.runtime.Runtime` and returns a
    :class:`~cosmos_core.passes.Pass`.  The ``emitter`` setting selects a pass
    strategy when it names one instead of an emitter (built in: ``local``;
    ``remote`` comes with ``cosmos-emit-remote``).
    """


# ================================================================ plugin settings


@hookspec
def cosmos_settings() -> list[Setting]:
    """Declare the settings this plugin reads.

    Called once, when settings are resolved.  Takes no parameters.

    Returns a list of :class:`~cosmos_core.contracts.Setting` records (name,
    type, default, help, env var, ``[plugins.SECTION]`` table).  The core
    resolves each: flag > ``COSMOS_<NAME>`` env var > ``[plugins.SECTION]`` key >
    top-level ``cosmos.toml`` key > default, and the plugin reads the value
    with ``settings.option(SETTING)``.  A name declared twice with a different
    type, default or env var is an error naming the key.
    """


# ========================================================= certificate resolvers


@hookspec
def cosmos_certificate_resolvers() -> list[Provides[CertificateResolverFactory]]:
    """Name the certificate resolvers this plugin provides (HTTPS, issue 12).

    Called once, when the plugin registry is first built.  Takes no parameters.

    Returns a list of ``Provides(name, factory)``; ``factory(settings)`` returns
    a :class:`~cosmos_core.contracts.CertificateResolver`.  ``acme`` (from the
    ``cosmos-acme`` plugin) is used when ``acme_directory`` is set.
    """


FAMILIES: dict[str, str] = {
    "event_sources": "cosmos_event_sources",
    "state_stores": "cosmos_state_stores",
    "routing_modes": "cosmos_routing_modes",
    "emitters": "cosmos_emitters",
    "reloaders": "cosmos_reloaders",
    "passes": "cosmos_passes",
    "certificate_resolvers": "cosmos_certificate_resolvers",
}
"""Family key (as shown by ``cosmos plugins``) -> hook name."""

HOOKS: frozenset[str] = frozenset({*FAMILIES.values(), "cosmos_settings"})
"""Every hook name a plugin may implement."""
