"""``cosmos generate``: the original Cosmos request -> stored state -> haproxy.cfg."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from cosmos_core.cli import common


def generate(
    ctx: typer.Context,
    payload: Annotated[
        Optional[str],
        typer.Argument(help="The request JSON (either dialect); '-' (the default) reads stdin.", show_default=False),
    ] = None,
    store: common.StoreOpt = None,
    output: Annotated[
        Optional[Path],
        typer.Option("--output", "-o", help="Write the config to this file atomically instead of stdout."),
    ] = None,
    template: Annotated[
        Optional[str], typer.Option("--template", envvar="COSMOS_TEMPLATE", help="Your own jinja2 template.")
    ] = None,
    emitter: Annotated[
        Optional[str], typer.Option("--emitter", envvar="COSMOS_EMITTER", help="Config emitter name (default: haproxy).")
    ] = None,
) -> None:
    """Merge a request with the stored services, store the result and print the config."""
    settings = common.settings(ctx, store=store, payload=payload, template=template, emitter=emitter)
    with common.errors(settings.debug):
        from cosmos_core import pipeline
        from cosmos_core.errors import CosmosError
        from cosmos_core.runtime import Runtime

        runtime = Runtime(settings)
        try:
            source = runtime.event_source("payload")
            for snapshot in source.snapshots():
                result = pipeline.generate(runtime, snapshot)
                if output is None:
                    common.write_stdout(result.config)
                else:
                    from cosmos_core.files import atomic_write

                    try:
                        atomic_write(output, result.config)
                    except OSError as exc:
                        raise CosmosError(f"--output {output}: cannot write ({exc.strerror}); the store is updated, "
                                          "run again once the path is writable") from None
        finally:
            runtime.close()
