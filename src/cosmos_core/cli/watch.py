"""``cosmos watch``: the host agent (event source -> reconcile -> store -> emitter -> reloader)."""

from __future__ import annotations

from typing import Annotated

import typer

from cosmos_core.cli import common


def watch(
    ctx: typer.Context,
    store: common.StoreOpt = None,
    events: Annotated[
        str | None, typer.Option("--events", help="Event source. (default: docker)", show_default=False)
    ] = None,
    reloader: Annotated[
        str | None,
        typer.Option("--reloader", help="Reloader: docker-exec, host or none. (default: docker-exec)", show_default=False),
    ] = None,
    haproxy_container: Annotated[
        str | None,
        typer.Option("--haproxy-container", help="Name of the HAProxy container. (default: haproxy)", show_default=False),
    ] = None,
    haproxy_config: Annotated[
        str | None,
        typer.Option(
            "--haproxy-config",
            help="Config path HAProxy reads. (default: /usr/local/etc/haproxy/haproxy.cfg)",
            show_default=False,
        ),
    ] = None,
    reload_command: Annotated[
        str | None,
        typer.Option(
            "--reload-command",
            help="Reload command (docker-exec: run with sh -c in the container, default SIGUSR2 to PID 1; host: required "
            "unless plugins.host.master_socket is set).",
            show_default=False,
        ),
    ] = None,
    emitter: Annotated[
        str | None,
        typer.Option("--emitter", help="Config emitter: haproxy, or remote to ask a cosmos serve. (default: haproxy)",
                     show_default=False),
    ] = None,
    table: Annotated[
        str | None, typer.Option("--table", help="Table (namespace) in the store. (default: default)", show_default=False)
    ] = None,
    name_filter: Annotated[
        str | None,
        typer.Option("--name-filter", help="Only containers whose name contains this keyword.", show_default=False),
    ] = None,
    debounce_quiet: Annotated[
        float | None,
        typer.Option("--debounce-quiet", help="Seconds without events that end a burst. (default: 0.1)", show_default=False),
    ] = None,
    debounce_max_wait: Annotated[
        float | None,
        typer.Option("--debounce-max-wait", help="Longest wait within a burst, in seconds. (default: 1.0)", show_default=False),
    ] = None,
    once: Annotated[bool, typer.Option("--once", help="Sync, reload and exit (exit 1 if that failed).")] = False,
) -> None:
    """Keep HAProxy in step with this host's labelled containers until SIGTERM/SIGINT."""
    settings = common.settings(
        ctx,
        store=store,
        events=events,
        reloader=reloader,
        haproxy_container=haproxy_container,
        haproxy_config=haproxy_config,
        reload_command=reload_command,
        emitter=emitter,
        table=table,
        name_filter=name_filter,
        debounce_quiet=debounce_quiet,
        debounce_max_wait=debounce_max_wait,
    )
    with common.errors(settings.debug):
        from cosmos_core.agent import Agent, install_signal_handlers
        from cosmos_core.contracts import RemoteEmitter
        from cosmos_core.runtime import Runtime

        runtime = Runtime(settings)
        try:
            if not isinstance(runtime.emitter, RemoteEmitter):
                runtime.store.ping()  # fail fast; a remote Cosmos holds the state itself
            agent = Agent(runtime, runtime.event_source(), runtime.reloader)
            install_signal_handlers(agent)
            stats = agent.run(once=once)
        finally:
            runtime.close()
    if once and stats.failures:
        typer.echo(f"cosmos: error: {stats.last_error}", err=True)
        raise typer.Exit(1)
