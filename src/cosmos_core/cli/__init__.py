"""The ``cosmos`` command line (Typer).  Commands are thin: parse, resolve settings, call the core."""

from typing import Annotated, Optional

import typer

from cosmos_core.cli import certs, fleet, generate, plugins, serve, status, watch
from cosmos_core.cli.common import CosmosCommand, CosmosGroup, GlobalOptions

app = typer.Typer(
    name="cosmos",
    cls=CosmosGroup,
    help="Keep HAProxy in step with the containers running on your hosts.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def main_options(
    ctx: typer.Context,
    config: Annotated[
        Optional[str],
        typer.Option("--config", envvar="COSMOS_CONFIG", help="Settings file (default: ./cosmos.toml if present)."),
    ] = None,
    log_format: Annotated[
        Optional[str],
        typer.Option("--log-format", envvar="COSMOS_LOG_FORMAT", help="auto (console on a TTY, else json), console or json."),
    ] = None,
    log_level: Annotated[
        Optional[str], typer.Option("--log-level", envvar="COSMOS_LOG_LEVEL", help="debug, info, warning or error.")
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", envvar="COSMOS_DEBUG", help="Show tracebacks on errors.")] = False,
) -> None:
    ctx.obj = GlobalOptions(config=config, log_format=log_format, log_level=log_level, debug=debug)


app.command("generate", cls=CosmosCommand)(generate.generate)
app.command("status", cls=CosmosCommand)(status.status)
app.command("plugins", cls=CosmosCommand)(plugins.plugins)
app.command("serve", cls=CosmosCommand)(serve.serve)
app.command("watch", cls=CosmosCommand)(watch.watch)
app.command("certs", cls=CosmosCommand)(certs.certs)
app.add_typer(fleet.app, name="fleet")


def main() -> None:
    app()
