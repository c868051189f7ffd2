"""What every command shares: option types, settings resolution, error mapping."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Iterator, Optional

import typer

from cosmos_core.errors import CosmosError
from cosmos_core.settings import Settings

if TYPE_CHECKING:
    from cosmos_core.plugins import Plugins


@dataclass
class GlobalOptions:
    config: str | None = None
    log_format: str | None = None
    log_level: str | None = None
    debug: bool | None = None


StoreOpt = Annotated[
    Optional[str],
    typer.Option(
        "--store",
        envvar="COSMOS_STORE",
        help="State store URL: sqlite:///PATH (default under ~/.local/state/cosmos) or dynamodb://TABLE.",
        show_default=False,
    ),
]
# https (issue 12)
CertsDirOpt = Annotated[
    Optional[str],
    typer.Option("--certs-dir", envvar="COSMOS_CERTS_DIR", show_default=False,
                 help="Directory of PEM files (certificate chain + private key) to serve over HTTPS."),
]
HttpsBindOpt = Annotated[
    Optional[str],
    typer.Option("--https-bind", envvar="COSMOS_HTTPS_BIND", show_default=False,
                 help="Address:port of the HTTPS frontend (default :443; on when --certs-dir or --acme-directory)."),
]
AcmeDirectoryOpt = Annotated[
    Optional[str],
    typer.Option("--acme-directory", envvar="COSMOS_ACME_DIRECTORY", show_default=False,
                 help="ACME directory URL; turns automatic certificates (HTTP-01) on."),
]
AcmeEmailOpt = Annotated[
    Optional[str],
    typer.Option("--acme-email", envvar="COSMOS_ACME_EMAIL", show_default=False,
                 help="Contact e-mail of the ACME account."),
]
AcmeCABundleOpt = Annotated[
    Optional[str],
    typer.Option("--acme-ca-bundle", envvar="COSMOS_ACME_CA_BUNDLE", show_default=False,
                 help="CA file for a private ACME server's own TLS."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
StatsBindOpt = Annotated[
    Optional[str],
    typer.Option("--stats-bind", help="Add a frontend serving HAProxy's Prometheus exporter on /metrics (and the stats "
                 "page with stats_auth): PORT (loopback) or ADDRESS:PORT. (default: off)", show_default=False),
]


def settings(ctx: typer.Context, **overrides: Any) -> Settings:
    """Resolve settings (flags > env > cosmos.toml > defaults) and configure logging.

    A bad setting is reported like any other error: one line, exit 2.
    """
    return settings_and_plugins(ctx, **overrides)[0]


def settings_and_plugins(ctx: typer.Context, **overrides: Any) -> tuple[Settings, "Plugins"]:
    """:func:`settings`, and the installed plugins whose settings were resolved (reuse them)."""
    from cosmos_core import logs
    from cosmos_core.plugins import Plugins
    from cosmos_core.settings import load

    glob: GlobalOptions = ctx.obj or GlobalOptions()
    flags = {"log_format": glob.log_format, "log_level": glob.log_level, "debug": glob.debug or None}
    # Plugin discovery may warn (a plugin failed to load): log to stderr already, with the flags' format.
    logs.configure(glob.log_format if glob.log_format in logs.FORMATS else "auto",
                   glob.log_level if glob.log_level in logs.LEVELS else "info")
    with errors(debug=bool(glob.debug)):
        plugins = Plugins.discover()
        resolved = load({**flags, **overrides}, glob.config, plugins=plugins)
        if resolved.log_format not in logs.FORMATS:
            _fail(f"log_format: must be one of {', '.join(logs.FORMATS)} (got {resolved.log_format!r})", 2)
        if resolved.log_level not in logs.LEVELS:
            _fail(f"log_level: must be one of {', '.join(logs.LEVELS)} (got {resolved.log_level!r})", 2)
    logs.configure(resolved.log_format, resolved.log_level)
    return resolved, plugins


@contextmanager
def errors(debug: bool = False) -> Iterator[None]:
    """Map exceptions to one stderr line and an exit code (traceback only with --debug)."""
    try:
        yield
    except typer.Exit:
        raise
    except CosmosError as exc:
        if debug:
            raise
        _fail(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    except Exception as exc:  # noqa: BLE001 - the CLI's last line of defence
        if debug:
            raise
        _fail(f"unexpected {type(exc).__name__}: {exc} (run with --debug for a traceback)", 1)


def _fail(message: str, code: int) -> None:
    typer.echo(f"cosmos: error: {message}", err=True)
    raise typer.Exit(code)


def write_stdout(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()
