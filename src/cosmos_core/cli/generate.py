"""``cosmos generate``: the original Cosmos request -> stored state -> haproxy.cfg."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from cosmos_core.cli import common

if TYPE_CHECKING:
    from cosmos_core.bundle import Bundle


def generate(
    ctx: typer.Context,
    payload: Annotated[
        Optional[str],
        typer.Argument(help="The request JSON (either dialect); '-' (the default) reads stdin.", show_default=False),
    ] = None,
    store: common.StoreOpt = None,
    output: Annotated[
        Optional[Path],
        typer.Option("--output", "-o", help="Write the config to this file (and its auxiliary files beside it) atomically instead of stdout."),
    ] = None,
    template: Annotated[
        Optional[str], typer.Option("--template", envvar="COSMOS_TEMPLATE", help="Your own jinja2 template.")
    ] = None,
    emitter: Annotated[
        Optional[str], typer.Option("--emitter", envvar="COSMOS_EMITTER", help="Config emitter name (default: haproxy).")
    ] = None,
    certs_dir: common.CertsDirOpt = None,
    https_bind: common.HttpsBindOpt = None,
    stats_bind: common.StatsBindOpt = None,
) -> None:
    """Merge a request with the stored services, store the result and print the config."""
    settings, plugins = common.settings_and_plugins(ctx, store=store, payload=payload, template=template,
                                                    emitter=emitter, certs_dir=certs_dir, https_bind=https_bind,
                                                    stats_bind=stats_bind)
    with common.errors(settings.debug):
        from cosmos_core.runtime import Runtime

        runtime = Runtime(settings, plugins)
        from cosmos_core.passes import LocalPass

        if output is None and isinstance(runtime.strategy, LocalPass) and hasattr(runtime.emitter, "use_maps"):
            runtime.emitter.use_maps = False  # stdout holds one file: the stand-alone (ACL) form, no map files
        try:
            source = runtime.event_source("payload")
            for snapshot in source.snapshots():
                result = runtime.strategy.run(snapshot)
                if output is None:
                    common.write_stdout(result.config)
                else:
                    write_output(result.bundle, output)
        finally:
            runtime.close()


def write_output(bundle: "Bundle", output: Path) -> None:
    """The main file at ``output``, auxiliary files beside it; each atomic, all or none."""
    from cosmos_core.bundle import install
    from cosmos_core.errors import CosmosError

    try:
        install(bundle, output)
    except OSError as exc:
        raise CosmosError(f"--output {output}: cannot write ({exc.strerror or exc}); the store is updated, "
                          "run again once the path is writable") from None
