"""``cosmos watch``: the host agent (event source -> reconcile -> store -> emitter -> reloader)."""

from typing import TYPE_CHECKING, Annotated

import typer

from cosmos_core.cli import common

if TYPE_CHECKING:
    from cosmos_core.plugins import Plugins


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
    payload: Annotated[
        str | None,
        typer.Option("--payload", help="With --events payload: the request file, '-' for stdin (as cosmos generate).",
                     show_default=False),
    ] = None,
    debounce_interval: Annotated[
        float | None,
        typer.Option("--debounce-interval", help="Least time between two passes, in seconds; a change after a "
                     "longer idle spell is acted on at once. (default: 0.25)", show_default=False),
    ] = None,
    hard_stop_after: Annotated[
        int | None,
        typer.Option("--hard-stop-after", help="Seconds after a reload before old HAProxy workers are stopped "
                     "(0: never). (default: 60)", show_default=False),
    ] = None,
    certs_dir: common.CertsDirOpt = None,
    https_bind: common.HttpsBindOpt = None,
    acme_directory: common.AcmeDirectoryOpt = None,
    acme_email: common.AcmeEmailOpt = None,
    acme_ca_bundle: common.AcmeCABundleOpt = None,
    host_id: Annotated[
        str | None,
        typer.Option("--host-id", help="Fleet host id: this host owns the containers it reports. (default: host name)",
                     show_default=False),
    ] = None,
    heartbeat: Annotated[
        float | None, typer.Option("--heartbeat", help="Seconds between host heartbeats. (default: 5)", show_default=False)
    ] = None,
    lease: Annotated[
        float | None,
        typer.Option("--lease", help="Seconds without a heartbeat after which a host is dead. (default: 3 x heartbeat)",
                     show_default=False),
    ] = None,
    advertise_address: Annotated[
        str | None,
        typer.Option("--advertise-address", help="Address other hosts reach this host at; containers are then routed "
                     "at it plus their published port (label cosmos.address=network overrides).", show_default=False),
    ] = None,
    once: Annotated[bool, typer.Option("--once", help="Sync, reload and exit (exit 2 if refused, 1 if it failed).")] = False,
    stats_bind: common.StatsBindOpt = None,
    metrics_port: Annotated[
        int | None,
        typer.Option("--metrics-port", help="Serve Cosmos's own Prometheus /metrics and /healthz on this port "
                     "(metrics_host, default 0.0.0.0). (default: off)", show_default=False),
    ] = None,
) -> None:
    """Keep HAProxy in step with this host's labelled containers until SIGTERM/SIGINT."""
    settings, plugins = common.settings_and_plugins(
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
        payload=payload,
        debounce_interval=debounce_interval,
        hard_stop_after=hard_stop_after,
        certs_dir=certs_dir, https_bind=https_bind,
        acme_directory=acme_directory, acme_email=acme_email, acme_ca_bundle=acme_ca_bundle,
        host_id=host_id,
        heartbeat=heartbeat,
        lease=lease,
        advertise_address=advertise_address,
        stats_bind=stats_bind,
        metrics_port=metrics_port,
    )
    with common.errors(settings.debug):
        from dataclasses import replace

        from cosmos_core.agent import Agent, install_signal_handlers
        from cosmos_core.fleet_agent import RemoteBeat, join
        from cosmos_core.runtime import Runtime

        settings = replace(settings, events=agent_default(plugins, "event_sources", settings.events, "events"),
                           reloader=agent_default(plugins, "reloaders", settings.reloader, "reloader"))
        if settings.runtime_api is None and settings.reloader == "docker-exec":
            # churn without reload: a stats socket on the HAProxy container's own loopback, reached by docker exec
            settings = replace(settings, runtime_api="ipv4@127.0.0.1:9999")
        start_metrics = _metrics_enable(settings.metrics_port)
        runtime = Runtime(settings, plugins)
        member = None
        server = None
        try:
            runtime.strategy.check()  # fail fast: a local store that cannot be reached
            if getattr(runtime.reloader, "check_bundle", None) is None:  # the agent checks with haproxy_bin
                from cosmos_core.quarantine import haproxy_bin_found

                haproxy_bin_found(str(settings.options.get("haproxy_bin") or "haproxy"))  # a wrong one set: exit 2
            source, member = join(runtime, runtime.event_source(), once=once)
            agent = Agent(runtime, source, runtime.reloader)
            if isinstance(member, RemoteBeat):
                member.paused = lambda: agent.failing  # a failing agent's own retry catches up
            if runtime.settings.options.get("acme_directory") or runtime.settings.options.get("certs_dir"):
                from cosmos_core.tls_agent import attach

                attach(runtime, agent)  # https (issue 12): certificate files; ACME, installed without a reload
            if start_metrics is not None:
                server = start_metrics(settings.metrics_host, lambda: not agent.failing)
            install_signal_handlers(agent)
            stats = agent.run(once=once)
        finally:
            if member is not None:
                member.stop()
            if server is not None:
                server.shutdown()
            runtime.close()
    if once and stats.failures:
        typer.echo(f"cosmos: error: {stats.last_error}", err=True)
        raise typer.Exit(stats.last_exit_code or 1)
    if stats.source_failed:  # the source ended with an error (a bug, or an unreadable payload)
        typer.echo(f"cosmos: error: {stats.last_error}", err=True)
        raise typer.Exit(stats.last_exit_code or 1)


#: What ``cosmos watch`` uses when nothing is configured, and the plugin that provides it.
AGENT_DEFAULTS = {
    "event_sources": ("docker", "cosmos-events-docker", "--events payload --payload FILE"),
    "reloaders": ("docker-exec", "cosmos-reload-docker-exec", "--reloader host or --reloader none"),
}


def agent_default(plugins: "Plugins", family: str, configured: str | None, setting: str) -> str:
    """The configured name, else the agent's default if its plugin is installed, else a clear error."""
    if configured:
        return configured
    name, distribution, alternative = AGENT_DEFAULTS[family]
    if name in plugins.registry(family):
        return name
    from cosmos_core.errors import ValidationError

    raise ValidationError(setting, None, f"cosmos watch uses {name!r} by default, which is not installed: "
                          f"pip install {distribution}, or choose {alternative}")


def _metrics_enable(port: int | None):  # type: ignore[no-untyped-def]
    """Turn metrics on (before the store is built, so its calls are counted); return a starter or ``None``."""
    if port is None:
        return None
    from cosmos_core import metrics
    from cosmos_core.errors import CosmosError, ValidationError
    from cosmos_core.logs import get_logger

    if not 0 <= port <= 65535:
        raise ValidationError("--metrics-port", port, "must be between 0 and 65535")
    metrics.enable()

    def start(host: str, healthy):  # type: ignore[no-untyped-def]
        try:
            server = metrics.serve(host, port, healthy)
        except OSError as exc:
            raise CosmosError(f"--metrics-port {port}: cannot listen on {host} ({exc.strerror})") from None
        get_logger("cosmos.metrics").info("metrics_listening", host=host, port=server.server_address[1])
        return server

    return start
